"""The Chaos Toolkit control every hcops drill declares: what runs around the experiment.

Before: refuse an unhealthy system, open a Zabbix maintenance window, start the request load, the
split-brain sampler and the canary collector. After (also after a failure or Ctrl-C): stop them,
close the window, measure RTO/RPO/failed requests, check the steady state after the rollbacks,
and add it all to the journal under "hcops"; write the journal and the reports to the run's dir.
Because this is a control declared in the experiment file, `chaos run <file>` does the same.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoslib.exceptions import InterruptExecution

from dr.drills import probes, report, store
from dr.drills.context import region_of, reset, run_context
from dr.drills.load import CanaryCollector, RequestLoad, WritableSampler, vip_url
from dr.drills.measure import Interval, iso, measure
from dr.drills.monitoring_actions import BEFORE_S
from dr.failover.topology import mysql_service
from inventories.errors import HcopsError
from inventories.model import Region
from inventories.schema import Zabbix

_state: dict[str, Any] = {}


def _ext(experiment: dict[str, Any]) -> dict[str, Any]:
    return next((e for e in experiment.get("extensions", []) if e.get("name") == "hcops"), {})


def _maintenance(region: Region, start: bool, reason: str = "") -> str:
    if not any(isinstance(s, Zabbix) for s in region.services.values()):
        return "no zabbix service in the model: no window"
    from monitoring import maintenance  # noqa: PLC0415 (only drills that reach Zabbix need it)
    from monitoring.client import ZabbixClient, resolve_connection  # noqa: PLC0415

    client = ZabbixClient.connect(resolve_connection(region, timeout=10, retries=1))
    hosts = sorted(region.hosts)
    if start:
        w = maintenance.start(client, region, hosts, reason=reason, minutes=60)
        return f"opened {w.name}"
    touched = maintenance.stop(client, region, hosts)
    return "closed " + ", ".join(w.name for w in touched) if touched else "no window to close"


def before_experiment_control(context: dict[str, Any], configuration: dict[str, Any] | None = None,
                              **_kwargs: Any) -> None:
    region = region_of(configuration)
    ext = _ext(context)
    ctx = reset(region)
    started = time.time()
    _state.clear()
    _state.update(region=region, drill=ext.get("drill", "drill"), started=started, errors=[])
    problems = []
    if not probes.single_writable_primary(configuration):
        problems.append("the database is not one writable primary with healthy replicas")
    if not probes.canaries_writing(5, configuration):
        problems.append("a canary is not writing")
    if not probes.vip_serves(5, configuration):
        problems.append("the VIP does not answer")
    if problems:
        ctx.targets["refused"] = "; ".join(problems)
        _state["refused"] = ctx.targets["refused"]
        raise InterruptExecution("refusing to start on an unhealthy system: " + ctx.targets["refused"])
    try:
        _state["maintenance_open"] = _maintenance(region, True, f"hcops drill {_state['drill']}")
    except HcopsError as exc:
        ctx.targets["refused"] = f"could not open a Zabbix maintenance window: {exc.message}"
        _state["refused"] = ctx.targets["refused"]
        raise InterruptExecution(ctx.targets["refused"]) from None
    url = vip_url(region)
    _state["load"] = RequestLoad(url) if url else None
    _state["sampler"] = WritableSampler(region)
    _state["canaries"] = CanaryCollector(region, since=started - 1)
    for k in ("load", "sampler", "canaries"):
        if _state[k] is not None:
            _state[k].start()


def _method_end(journal: dict[str, Any]) -> float:
    ends = [r.get("end") for r in journal.get("run", []) if r.get("end")]
    if not ends:
        return time.time()
    return max(datetime.fromisoformat(str(e)).replace(tzinfo=UTC).timestamp() for e in ends)


def _verdict(drill: str, h: dict[str, Any], status: str, deviated: bool) -> dict[str, Any]:
    t = h["targets"]
    checks: list[tuple[str, bool]] = [
        ("experiment completed without deviation", status == "completed" and not deviated),
        ("steady state after the rollbacks", bool(h["steady_after_rollback"])),
        ("every rollback succeeded", all(r == "succeeded" for r in h.get("rollback_status", []))),
        (f"the model's primary is primary again ({h.get('model_primary')})",
         h.get("final_primary") == h.get("model_primary")),
        ("never two writable databases", h["max_writable"] <= 1),
        (f"RPO {h['rpo_lost_writes']} <= {t['rpo_target_writes']} lost writes",
         h["rpo_lost_writes"] <= t["rpo_target_writes"]),
    ]
    if drill in ("db-primary-loss", "db-switchover"):
        checks.append((f"RTO {h['rto_s']} s <= {t['rto_target_s']} s",
                       h["rto_s"] is not None and h["rto_s"] <= t["rto_target_s"]))
    if drill == "app-node-loss":
        checks.append((f"{h['failed_requests']} failed requests <= {t['max_failed_requests']}",
                       h["failed_requests"] <= t["max_failed_requests"]))
    if drill == "link-cut":
        lw = h.get("local_writer") or {}
        stall = lw.get("max_commit_s")
        checks.append((f"write stall {stall} s <= {t['max_write_stall_s']} s",
                       stall is not None and stall <= t["max_write_stall_s"]))
        promoted = [d for d in h.get("manager", []) if d.get("action") == "failover"]
        checks.append(("no promotion across the cut line", not promoted))
        fm = h.get("far_monitoring") or {}
        checks.append((f"far-side monitoring kept through the cut (proxy {fm.get('proxy')}: {fm.get('before_cut')} "
                       f"values in the {BEFORE_S // 60} min before, {fm.get('during')} held during the cut, "
                       f"{fm.get('after')} after it)",
                       bool(fm) and (fm.get("before_cut") or 0) > 0 and fm.get("during") == 0
                       and (fm.get("after") or 0) > 0))
    if drill == "front-outage":
        cut = [o for o in h.get("outages", []) if "request" in str(o.get("what", ""))]
        checks.append((f"the load saw the front down ({h['failed_requests']} of {h.get('requests', 0)} requests "
                       "failed)", h["failed_requests"] > 0 and bool(cut)))
        last = (h.get("series") or {}).get("requests") or [[0, False]]
        checks.append(("the front answered again after nginx started", bool(last[-1][1])))
    if drill == "object-store-outage":
        ob = h.get("offsite_backup") or {}
        checks.append(("the object store was stopped while the backup ran", bool(ob.get("stopped_during_backup"))))
        checks.append((f"backup {ob.get('backup_id')} is good after the outage (offsite confirmed)",
                       ob.get("state") == "good"))
        checks.append(("its offsite copy restores (scratch server, canary rows)", bool(ob.get("verified_offsite"))))
    return {"passed": all(ok for _n, ok in checks), "checks": [{"check": n, "ok": ok} for n, ok in checks]}


def after_experiment_control(context: dict[str, Any], state: dict[str, Any],
                             configuration: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    region: Region = _state.get("region") or region_of(configuration)
    drill = _state.get("drill", _ext(context).get("drill", "drill"))
    started = float(_state.get("started", time.time()))
    loaded = {k: _state.get(k) for k in ("load", "sampler", "canaries")}
    if loaded["load"]:
        loaded["load"].stop()
    if loaded["sampler"]:
        loaded["sampler"].stop()
    events = loaded["canaries"].stop() if loaded["canaries"] else {}
    maint_close = ""
    if "maintenance_open" in _state:
        try:
            maint_close = _maintenance(region, False)
        except HcopsError as exc:
            maint_close = f"FAILED to close: {exc.message} (close it: hcops monitor maintenance stop)"
    ended = time.time()
    ctx = run_context(region)
    _name, svc = mysql_service(region)
    pol = svc.failover
    h: dict[str, Any] = {"drill": drill, "run_id": "", "region": region.name, "started": iso(started),
                         "ended": iso(ended), "refused": _state.get("refused")}
    if _state.get("refused"):
        h.update(outages=[], rto_s=None, rpo_lost_writes=0, failed_requests=0, max_writable=0,
                 steady_after_rollback=False)
    else:
        m = measure(region, events, loaded["load"].results if loaded["load"] else [],
                    loaded["sampler"].samples if loaded["sampler"] else [],
                    method_end=_method_end(state), end=ended)
        h.update(outages=[iv.as_dict() for iv in m.write_outages + m.request_outages],
                 rto_s=m.rto_s, rpo_lost_writes=m.rpo_lost_writes, lost_writes=m.lost,
                 failed_requests=m.failed_requests, requests=m.requests, acked_writes=m.acked_writes,
                 failed_writes=m.failed_writes, max_writable=m.max_writable, final_primary=m.final_primary,
                 steady_after_rollback=probes.single_writable_primary(configuration)
                 and probes.canaries_writing(30, configuration))
        h["series"] = {
            "requests": [[round(t, 3), ok] for t, ok, _w in (loaded["load"].results if loaded["load"] else [])],
            "writes": {host: [[e["t"], e["ok"]] for e in evs] for host, evs in events.items()},
            "writable": [[round(t, 3), w] for t, w in (loaded["sampler"].samples if loaded["sampler"] else [])],
        }
    h["rollback_status"] = [str(r.get("status")) for r in state.get("rollbacks", []) or []]
    h["model_primary"] = svc.primary
    h["targets"] = {"rto_target_s": pol.rto_target_s, "rpo_target_writes": pol.rpo_target_writes,
                    "max_failed_requests": pol.max_failed_requests, "max_write_stall_s": pol.max_write_stall_s}
    h["marks"] = [{"at": iso(m_["t"]), "what": m_["what"]} for m_ in ctx.marks]
    mgr = ctx.targets.get("manager")
    if mgr is not None:  # a method that failed before its rollback stopped it
        mgr.stop_event.set()
        mgr.wait_stopped()  # frees the region's manager lock before the next drill or service
        ctx.targets["manager_decisions"] = [d.as_dict() for d in mgr.decisions]
    h["manager"] = ctx.targets.get("manager_decisions", [])
    h["local_writer"] = ctx.targets.get("local_writer")
    h["offsite_backup"] = ctx.targets.get("offsite_backup")
    far = ctx.targets.get("far_monitoring")
    h["far_monitoring"] = {k: v for k, v in far.items() if not k.startswith("_")} if far else None
    h["maintenance"] = {"open": _state.get("maintenance_open"), "close": maint_close}
    h["verdict"] = _verdict(drill, h, str(state.get("status")), bool(state.get("deviated")))
    if _state.get("refused"):
        h["verdict"] = {"passed": False,
                        "checks": [{"check": "steady state before: " + _state["refused"], "ok": False}]}
    run_id, run_dir = store.new_run_dir(region.name, drill, datetime.fromtimestamp(started, UTC))
    h["run_id"] = run_id
    state["hcops"] = h
    write_run(run_dir, state)
    _state["last_run_dir"] = run_dir


def write_run(run_dir: Path, journal: dict[str, Any]) -> None:
    (run_dir / "journal.json").write_text(json.dumps(journal, indent=2, default=str) + "\n", encoding="utf-8")
    with contextlib.suppress(OSError):
        (run_dir / "report.md").write_text(report.markdown(journal), encoding="utf-8")
        (run_dir / "report.html").write_text(report.html(journal), encoding="utf-8")


def last_run_dir() -> Path | None:
    p = _state.get("last_run_dir")
    return Path(p) if p else None


__all__ = ["Interval", "after_experiment_control", "before_experiment_control", "last_run_dir"]
