"""Chaos Toolkit actions for the drills: each takes the experiment's `configuration` (the region)
and returns what it did, so the journal shows it. Targets come from the model and the live system
(the current primary, the LB holding the VIP), never from the experiment file."""

from __future__ import annotations

import threading
import time
from typing import Any

from dr.drills.context import dedicated_line, region_of, run_context
from dr.failover import service
from dr.failover.manager import Manager
from dr.failover.plan import build_plan
from dr.failover.rejoin import rejoin
from dr.failover.runbook import execute, wait_applied
from dr.failover.topology import current_primary, mysql_service, observe, remote
from infra.lab import control
from inventories.errors import HcopsError
from inventories.model import Region
from inventories.schema import Canary, Nginx

Config = dict[str, Any] | None


def _mark(region: Region, what: str) -> None:
    run_context(region).marks.append({"t": time.time(), "what": what})


def _nginx(region: Region) -> Nginx:
    for svc in region.services.values():
        if isinstance(svc, Nginx) and svc.vip:
            return svc
    raise HcopsError(f"region {region.name} has no nginx service with a VIP", "add vip: to the nginx service")


def vip_holder(region: Region) -> str | None:
    svc = _nginx(region)
    for h in svc.hosts:
        if control.host_state(region, h) != "running":
            continue
        out = remote(region, h, "ip -4 -o addr show", timeout=15).stdout
        if f" {svc.vip}/" in out:
            return h
    return None


# ----------------------------------------------------------------- database
def start_failover_manager(configuration: Config = None) -> dict[str, Any]:
    region = region_of(configuration)
    if service.pause(region.name):  # the installed manager steps aside; the drill's own judges
        run_context(region).targets["paused_service"] = True
        _mark(region, f"{service.unit(region.name)} paused for the drill")
    mgr = Manager(region)
    run_context(region).targets["manager"] = mgr
    mgr.start_thread(max_seconds=600)
    _mark(region, "failover manager watching")
    return {"watching": mgr.primary}


def stop_failover_manager(configuration: Config = None) -> list[dict[str, Any]]:
    region = region_of(configuration)
    mgr = run_context(region).targets.pop("manager", None)
    if mgr is not None:
        mgr.stop_event.set()
        mgr.wait_stopped()
    if run_context(region).targets.pop("paused_service", False):
        service.resume(region.name)
        _mark(region, f"{service.unit(region.name)} started again")
    if mgr is None:
        return []
    run_context(region).targets["manager_decisions"] = [d.as_dict() for d in mgr.decisions]
    return [d.as_dict() for d in mgr.decisions if d.action not in ("ok",)]


def power_off_primary(configuration: Config = None) -> dict[str, Any]:
    region = region_of(configuration)
    _n, _s, states = observe(region)
    primary = current_primary(states)
    if primary is None:
        raise HcopsError("no single writable primary to power off", "run the drill on a healthy system")
    run_context(region).targets["old_primary"] = primary
    _mark(region, f"power off {primary}")
    control.stop_host(region, primary)
    return {"powered_off": primary}


def wait_for_new_primary(timeout_s: float = 60, configuration: Config = None) -> str:
    region = region_of(configuration)
    old = run_context(region).targets.get("old_primary")
    deadline = time.monotonic() + float(timeout_s)
    while time.monotonic() < deadline:
        _n, _s, states = observe(region)
        new = current_primary(states)
        if new and new != old:
            run_context(region).targets["new_primary"] = new
            _mark(region, f"{new} is primary")
            return new
        time.sleep(0.5)
    raise HcopsError(f"no replica was promoted within {timeout_s} s", "see the manager's decisions in the journal")


def switchover(to: str | None = None, configuration: Config = None) -> dict[str, Any]:
    """A planned, lossless switch: block writes, wait for catch-up, switch, unblock."""
    region = region_of(configuration)
    name, svc, states = observe(region)
    target = to or run_context(region).targets.get("switch_to")
    plan = build_plan(region, name, svc, states, to=target)
    if plan.kind != "switchover" or not plan.runnable:
        raise HcopsError(f"switchover refused: {'; '.join(plan.refusals) or plan.kind}", "fix the topology first")
    run_context(region).targets.setdefault("switched_from", plan.old_primary)
    _mark(region, f"switchover {plan.old_primary} -> {plan.candidate}")
    res = execute(region, plan, svc)
    if not res.ok:
        raise HcopsError(f"switchover failed: {res.error}", "see the failover journal")
    return res.as_dict()


def switch_back(configuration: Config = None) -> dict[str, Any] | str:
    """Make the model's primary the primary again (planned), if it is not."""
    region = region_of(configuration)
    if run_context(region).targets.get("refused"):
        return "skipped: the drill did not start"
    _name, svc = mysql_service(region)
    _n, _s, states = observe(region)
    if current_primary(states) == svc.primary:
        return f"{svc.primary} is primary already"
    return switchover(to=svc.primary, configuration=configuration)


def rejoin_old_primary(configuration: Config = None) -> dict[str, Any] | str:
    region = region_of(configuration)
    old = run_context(region).targets.get("old_primary")
    if old is None:
        return "nothing to rejoin"
    _n, _s, states = observe(region)
    if states[old].is_replica and states[old].reachable:
        return f"{old} replicates already"
    _mark(region, f"rejoin {old}")
    res = rejoin(region, old).as_dict()
    _name, svc = mysql_service(region)
    _n, _s, states = observe(region)
    wait_applied(region, svc, old, states[res["primary"]].binlog_pos, timeout=120)  # before any switch back
    _mark(region, f"{old} caught up")
    return res


# ----------------------------------------------------------------- hosts, services, links
def stop_app_node(configuration: Config = None) -> dict[str, Any]:
    """Power off an app node that does not hold the VIP (so only the app tier loses a node)."""
    region = region_of(configuration)
    canary = next(s for s in region.services.values() if isinstance(s, Canary))
    holder = vip_holder(region)
    node = next((h for h in reversed(canary.hosts) if h != holder), canary.hosts[-1])
    run_context(region).targets["app_node"] = node
    _mark(region, f"power off app node {node}")
    control.stop_host(region, node)
    return {"powered_off": node, "vip_on": holder}


def start_app_node(configuration: Config = None) -> str:
    region = region_of(configuration)
    node = run_context(region).targets.get("app_node")
    if node is None or control.host_state(region, node) == "running":
        return "nothing to start"
    _mark(region, f"power on {node}")
    return control.start_host(region, node)


def stop_active_lb(configuration: Config = None) -> dict[str, Any]:
    region = region_of(configuration)
    holder = vip_holder(region)
    if holder is None:
        raise HcopsError("no nginx host holds the VIP", "run the drill on a healthy system")
    run_context(region).targets["lb_node"] = holder
    _mark(region, f"stop nginx on {holder}")
    remote(region, holder, "systemctl stop nginx", timeout=30, check=True)
    return {"stopped_nginx_on": holder}


def wait_vip_moved(timeout_s: float = 30, configuration: Config = None) -> str:
    region = region_of(configuration)
    old = run_context(region).targets.get("lb_node")
    deadline = time.monotonic() + float(timeout_s)
    while time.monotonic() < deadline:
        h = vip_holder(region)
        if h and h != old:
            _mark(region, f"VIP on {h}")
            return h
        time.sleep(0.5)
    raise HcopsError(f"the VIP did not leave {old} within {timeout_s} s", "check keepalived on the nginx hosts")


def start_lb(configuration: Config = None) -> str:
    region = region_of(configuration)
    node = run_context(region).targets.get("lb_node")
    if node is None:
        return "nothing to start"
    remote(region, node, "systemctl start nginx", timeout=30, check=True)
    _mark(region, f"nginx started on {node}")
    return f"nginx started on {node}"


FRONT_OUTAGE_MAX_S = 300  # a front-outage drill spends real error budget: bounded whatever the file says


def stop_front(configuration: Config = None) -> list[str]:
    """Stop nginx on every host of the front (the whole platform stops answering): the outage the
    availability report and Zabbix's SLA must both count."""
    region = region_of(configuration)
    hosts = list(_nginx(region).hosts)
    run_context(region).targets["front_hosts"] = hosts
    _mark(region, f"stop nginx on {', '.join(hosts)}")
    for h in hosts:
        remote(region, h, "systemctl stop nginx", timeout=30, check=True)
    return hosts


def hold_outage(seconds: float = 75, configuration: Config = None) -> float:
    """Keep the front down `seconds` (at most FRONT_OUTAGE_MAX_S): long enough for Zabbix's
    once-a-minute checks to see it."""
    if not 0 < float(seconds) <= FRONT_OUTAGE_MAX_S:
        raise HcopsError(f"hold_outage seconds={seconds} is out of range",
                         f"use 1 to {FRONT_OUTAGE_MAX_S} s in the experiment file")
    return wait(seconds, configuration)


def start_front(configuration: Config = None) -> list[str]:
    region = region_of(configuration)
    hosts = run_context(region).targets.get("front_hosts") or list(_nginx(region).hosts)
    for h in hosts:
        if control.host_state(region, h) == "running":
            remote(region, h, "systemctl start nginx", timeout=30, check=True)
    _mark(region, f"nginx started on {', '.join(hosts)}")
    return hosts


def cut_line(configuration: Config = None) -> str:
    region = region_of(configuration)
    line = dedicated_line(region)
    control.cut_link(region, line)
    _mark(region, f"{line} cut")  # after: setting the router's legs down takes a moment on a busy host
    return line


def restore_line(configuration: Config = None) -> str:
    region = region_of(configuration)
    line = dedicated_line(region)
    if control.link_is_cut(region, line):
        control.restore_link(region, line)
        _mark(region, f"{line} restored")
    return line


def wait(seconds: float = 5, configuration: Config = None) -> float:
    threading.Event().wait(float(seconds))
    return float(seconds)


LOCAL_WRITER = r"""end=$(( $(date +%s) + {seconds} )); n=0
while [ "$(date +%s)" -lt "$end" ]; do n=$((n+1)); a=$(date +%s.%N)
  if mariadb -e "INSERT INTO canary.canary_seq (writer, seq, written_at) VALUES ('local-{host}', $(date +%s%N), NOW(6))"
  then echo "$a $(date +%s.%N) ok"; else echo "$a $(date +%s.%N) fail"; fi
  sleep 0.2; done"""


def local_writer(seconds: float = 20, configuration: Config = None) -> dict[str, Any]:
    """Write on the primary from its own site for `seconds` (run in the background): the longest
    commit is the write stall a cut line causes while semi-sync waits for the far replica."""
    region = region_of(configuration)
    _n, _s, states = observe(region)
    primary = current_primary(states)
    if primary is None:
        raise HcopsError("no single writable primary", "run the drill on a healthy system")
    out = remote(region, primary, LOCAL_WRITER.format(seconds=int(seconds), host=primary),
                      timeout=float(seconds) + 60).stdout
    commits = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            commits.append((float(parts[0]), float(parts[1]), parts[2] == "ok"))
    stall = max((b - a for a, b, _ok in commits), default=0.0)
    result = {"host": primary, "commits": len(commits), "failed": sum(1 for c in commits if not c[2]),
              "max_commit_s": round(stall, 3)}
    run_context(region).targets["local_writer"] = result
    return result
