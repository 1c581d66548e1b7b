"""Load and observation that run for the whole drill, in threads of the drill's own process.

- `RequestLoad`: HTTP requests through the real app path (the nginx VIP, then the canary on an
  app host, which writes through the current primary), a few a second, bounded in count and time.
- `WritableSampler`: once a second, which database servers accept writes (split brain shows as two).
- canary events (`canary_events`): every write each canary attempted, read from its /events.
Only the region's own lab or cloud addresses are contacted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from dr.failover.topology import mysql_service, observe_host
from inventories.model import Region
from inventories.schema import Canary, Nginx

MAX_SECONDS = 900.0  # no drill load runs longer than this, whatever happens to the drill


def vip_url(region: Region) -> str | None:
    for svc in region.services.values():
        if isinstance(svc, Nginx) and svc.vip:
            http = [lst.port for lst in svc.listeners if lst.protocol == "http"]
            if http:
                return f"http://{svc.vip}:{http[0]}/health"
    return None


def canary_urls(region: Region) -> dict[str, str]:
    out = {}
    for svc in region.services.values():
        if isinstance(svc, Canary):
            for h in svc.hosts:
                out[h] = f"http://{region.hosts[h].primary_address}:{svc.port}"
    return out


def get_json(url: str, timeout: float = 3.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (lab/cloud address from the model)
        return json.loads(resp.read())


@dataclass
class RequestLoad:
    url: str
    interval_s: float = 0.25
    timeout_s: float = 5.0
    results: list[tuple[float, bool, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hcops-request-load", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline:
            t = time.time()
            try:
                with urllib.request.urlopen(self.url, timeout=self.timeout_s) as resp:  # noqa: S310
                    ok, why = resp.status == 200, str(resp.status)
            except urllib.error.HTTPError as exc:
                ok, why = False, str(exc.code)
            except (OSError, urllib.error.URLError) as exc:
                ok, why = False, type(exc).__name__
            self.results.append((t, ok, why))
            self._stop.wait(max(0.0, self.interval_s - (time.time() - t)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.timeout_s + 2)


@dataclass
class WritableSampler:
    region: Region
    interval_s: float = 1.0
    samples: list[tuple[float, list[str]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hcops-writable-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        _name, svc = mysql_service(self.region)
        members = [svc.primary, *svc.replicas]
        deadline = time.monotonic() + MAX_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline:
            t = time.time()
            writable = []
            for h in members:
                try:
                    if observe_host(self.region, svc, h).writable:
                        writable.append(h)
                except Exception as exc:  # a failed sample is no sample, never the end of the drill
                    logging.getLogger(__name__).debug("sample of %s failed: %s", h, exc)
            self.samples.append((t, writable))
            self._stop.wait(max(0.0, self.interval_s - (time.time() - t)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)


@dataclass
class CanaryCollector:
    """Polls each canary's /events every few seconds, so a canary that dies keeps what it said."""

    region: Region
    since: float
    interval_s: float = 2.0
    events: dict[str, dict[tuple[float, int | None], dict[str, Any]]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hcops-canary-collector", daemon=True)
        self._thread.start()

    def poll(self) -> None:
        for host, base in canary_urls(self.region).items():
            got = self.events.setdefault(host, {})
            last = max((k[0] for k in got), default=self.since)
            try:
                for e in get_json(f"{base}/events?since={last:.3f}", timeout=3)["events"]:
                    got[(float(e["t"]), e.get("seq"))] = e
            except (OSError, ValueError, KeyError):
                continue  # down right now (a drill may have stopped it): the next poll catches up

    def _run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.poll()
            self._stop.wait(self.interval_s)

    def stop(self) -> dict[str, list[dict[str, Any]]]:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=15)
        self.poll()
        return {h: [got[k] for k in sorted(got, key=lambda k: k[0])] for h, got in self.events.items()}
