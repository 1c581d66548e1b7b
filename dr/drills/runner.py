"""`hcops drill plan|run`: a drill's steps as data, and a run through chaostoolkit-lib.

The experiment file is the drill; `chaos run dr/drills/experiments/<name>.json` (with
HCOPS_REGION set) runs the same file with the same control, so both write the same run dir.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from chaoslib.experiment import run_experiment

from dr.drills import catalog, control, store
from dr.failover.topology import mysql_service
from inventories.errors import HcopsError
from inventories.model import Region


@dataclass
class DrillPlan:
    drill: str
    title: str
    region: str
    production: bool
    ready: bool
    missing: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    targets: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _activity(phase: str, a: dict[str, Any]) -> dict[str, Any]:
    p = a.get("provider", {})
    return {"phase": phase, "type": a.get("type"), "name": a.get("name"),
            "call": f"{p.get('module')}.{p.get('func')}", "arguments": p.get("arguments", {}),
            "background": bool(a.get("background")), "tolerance": a.get("tolerance")}


def plan_drill(region: Region, name: str) -> DrillPlan:
    d = catalog.get(name)
    exp = d.experiment()
    _svc_name, svc = mysql_service(region)
    pol = svc.failover
    steps = [{"phase": "control", "type": "control", "name": "open maintenance, start canary load and samplers",
              "call": "dr.drills.control.before_experiment_control", "arguments": {}, "background": False,
              "tolerance": None}]
    steps += [_activity("steady-state", p) for p in exp.get("steady-state-hypothesis", {}).get("probes", [])]
    steps += [_activity("method", a) for a in exp.get("method", [])]
    steps += [_activity("steady-state", p) for p in exp.get("steady-state-hypothesis", {}).get("probes", [])]
    steps += [_activity("rollback", a) for a in exp.get("rollbacks", [])]
    steps.append({"phase": "control", "type": "control", "name": "measure, close maintenance, journal and reports",
                  "call": "dr.drills.control.after_experiment_control", "arguments": {}, "background": False,
                  "tolerance": None})
    return DrillPlan(name, d.title, region.name, region.spec.region.production, d.ready, d.missing, steps,
                     {"rto_target_s": pol.rto_target_s, "rpo_target_writes": pol.rpo_target_writes,
                      "max_failed_requests": pol.max_failed_requests, "max_write_stall_s": pol.max_write_stall_s})


def run_drill(region: Region, region_arg: str, name: str, *, production_ok: bool = False) -> store.DrillRun:
    d = catalog.get(name)
    if not d.ready:
        raise HcopsError(f"drill {name} cannot run yet: {d.missing}", "see `hcops drill list`")
    if region.spec.region.production and not production_ok:
        raise HcopsError(f"region {region.name} is marked production: a drill there disturbs real users",
                         "pass --production as well as --yes if that is what you mean")
    exp = copy.deepcopy(d.experiment())
    exp.setdefault("configuration", {})["hcops_region"] = region_arg
    run_experiment(exp, settings={})
    run_dir = control.last_run_dir()
    run = store.read_run(run_dir) if run_dir else None
    if run is None:
        raise HcopsError(f"drill {name} wrote no journal", "rerun with -v to see Chaos Toolkit's log")
    return run
