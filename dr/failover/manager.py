"""The automatic failover manager: detect primary loss from more than one vantage point, then run
the same runbook as `hcops failover db --yes`.

Who decides, and why there is no split brain across the lab's single line:
- The manager is a witness on a third vantage point (the operations host, which reaches each
  site on its own path, not through the dedicated line). It promotes only when ALL hold:
  its own check of the primary failed `detect_checks` times in a row; at least
  `observers_required - 1` other observers (the canaries on the app hosts, which see the database
  through the application's path) report failed writes too; another host of the primary's site
  still answers it (so the primary itself is gone, not the path to its site); the last state it
  saw of the primary had semi-sync ON (so every acknowledged write is on the replica: AFTER_SYNC
  acknowledges only what a replica has); and the plan passes the lag and anti-flap rules.
- A cut line makes the app-side observers fail while the witness still reaches the primary: the
  observers disagree and nothing is promoted. Writes stall instead (semi-sync waits for the
  replica up to its timeout), which the link-cut drill measures against `max_write_stall_s`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dr.failover.plan import build_plan
from dr.failover.runbook import FailoverResult, execute
from dr.failover.service import ManagerLock
from dr.failover.topology import current_primary, observe, observe_host
from inventories.model import Region
from inventories.schema import Canary

OBSERVER_FRESH_S = 3.0


@dataclass
class Decision:
    at: str
    action: str  # ok | suspect | hold | failover | refused | failed
    reason: str
    observers_down: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _tcp_answers(address: str, port: int = 22, timeout: float = 1.0) -> bool:
    """A SYN answered (accepted or refused) means the host and the path to it are alive."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (an app host of the model)
        return dict(json.loads(resp.read()))


def canary_observers(region: Region) -> dict[str, str]:
    return {h: f"http://{region.hosts[h].primary_address}:{svc.port}/"
            for svc in region.services.values() if isinstance(svc, Canary) for h in svc.hosts}


def observer_says_down(status: dict[str, Any], primary_address: str) -> bool:
    """A canary reports the primary lost: a recent write error, and no acknowledgement since."""
    err = status.get("last_error") or ""
    if not err:
        return False
    try:
        at = datetime.fromisoformat(err.split(" ", 1)[0])
    except ValueError:
        return False
    age = (datetime.now(UTC) - at).total_seconds()
    ack_age = status.get("last_ack_age_s")
    stale = ack_age is None or float(ack_age) > age
    return age <= OBSERVER_FRESH_S and stale and (primary_address in err or "no writable" in err)


@dataclass
class Manager:
    region: Region
    service: str | None = None
    on_decision: Callable[[Decision], None] | None = None
    decisions: list[Decision] = field(default_factory=list)
    primary: str | None = None
    failures: int = 0
    last_semi_sync: bool | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    fetch_status: Callable[[str], dict[str, Any]] | None = None
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.service, self.svc, states = observe(self.region, self.service)
        self.primary = current_primary(states)
        if self.primary:
            self.last_semi_sync = bool(states[self.primary].semi_sync_primary)

    def _decide(self, action: str, reason: str, down: list[str] | None = None,
                result: FailoverResult | None = None) -> Decision:
        d = Decision(_now(), action, reason, down or [], result.as_dict() if result else None)
        if not self.decisions or self.decisions[-1].action != action or action not in ("ok", "hold"):
            self.decisions.append(d)
            if self.on_decision:
                self.on_decision(d)
        return d

    def _observers_down(self, primary: str) -> list[str]:
        fetch = self.fetch_status or _get_json
        addr = str(self.region.hosts[primary].primary_address)
        down = []
        for host, url in canary_observers(self.region).items():
            try:
                if observer_says_down(fetch(url), addr):
                    down.append(host)
            except (OSError, ValueError):
                continue  # an observer we cannot hear is no vote either way
        return down

    def _site_answers(self, primary: str) -> bool:
        site = self.region.hosts[primary].site_name
        others = [h for h, ref in self.region.hosts.items() if ref.site_name == site and h != primary]
        return any(_tcp_answers(str(self.region.hosts[h].primary_address)) for h in others) if others else True

    def step(self) -> Decision:
        policy = self.svc.failover
        if self.primary is None:
            _s, _v, states = observe(self.region, self.service)
            self.primary = current_primary(states)
            if self.primary is None:
                return self._decide("hold", "no single writable primary to watch")
        st = observe_host(self.region, self.svc, self.primary)
        if st.writable:
            self.failures = 0
            self.last_semi_sync = bool(st.semi_sync_primary)
            down = self._observers_down(self.primary)
            if down:
                return self._decide("hold", f"{len(down)} observer(s) report {self.primary} lost, but the witness "
                                            "reaches it writable: the path is at fault, not the primary; "
                                            "no promotion", down)
            return self._decide("ok", f"{self.primary} writable")
        self.failures += 1
        if self.failures < policy.detect_checks:
            return self._decide("suspect", f"{self.primary}: {st.error or 'read-only'} "
                                           f"({self.failures}/{policy.detect_checks})")
        down = self._observers_down(self.primary)
        if 1 + len(down) < policy.observers_required:
            return self._decide("hold", f"{self.primary} fails here but only {len(down)} other observer(s) agree "
                                        f"(need {policy.observers_required - 1})", down)
        if not self._site_answers(self.primary):
            return self._decide("hold", f"no host of {self.primary}'s site answers: the path is cut, "
                                        "not the primary; no promotion across a cut", down)
        if self.last_semi_sync is False:
            return self._decide("refused", f"{self.primary} had fallen back to asynchronous replication; "
                                           "acknowledged writes may be missing: promote by hand (--force)", down)
        if not policy.auto:
            return self._decide("refused", "automatic failover is off (failover.auto: false)", down)
        name, svc, states = observe(self.region, self.service)
        plan = build_plan(self.region, name, svc, states)
        if not plan.runnable:
            return self._decide("refused", "; ".join(plan.refusals), down)
        result = execute(self.region, plan, svc)
        if result.ok:
            self.primary, self.failures = result.new_primary, 0
            return self._decide("failover", f"promoted {result.new_primary}", down, result)
        return self._decide("failed", result.error or "runbook failed", down, result)

    def run(self, max_seconds: float | None = None, *, locked: bool = False) -> list[Decision]:
        """Watch until stopped or `max_seconds`; holds the region's manager lock meanwhile
        (`locked`: the caller took it already)."""
        lock = None if locked else ManagerLock(self.region.name)
        if lock is not None:
            lock.acquire()  # another manager of this region is running: a clear error, no second judge
        try:
            interval = self.svc.failover.check_interval_s
            deadline = time.monotonic() + max_seconds if max_seconds else None
            while not self.stop_event.is_set() and (deadline is None or time.monotonic() < deadline):
                started = time.monotonic()
                self.step()
                self.stop_event.wait(max(0.0, interval - (time.monotonic() - started)))
            return self.decisions
        finally:
            if lock is not None:
                lock.release()

    def start_thread(self, max_seconds: float = 900) -> threading.Thread:
        """Run in a thread; the lock is taken here, so a refusal is the caller's error."""
        lock = ManagerLock(self.region.name)
        lock.acquire()

        def watch() -> None:
            try:
                self.run(max_seconds, locked=True)
            finally:
                lock.release()
        t = threading.Thread(target=watch, name="hcops-failover-manager", daemon=True)
        t.start()
        self._thread = t
        return t

    def wait_stopped(self, timeout: float = 60) -> None:
        """After `stop_event`: wait for the thread to end (a step in progress finishes) and free the lock."""
        if self._thread is not None:
            self._thread.join(timeout)
