"""Drills without a lab: the catalog is valid Chaos Toolkit, measurements, reports, store, CLI errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from chaoslib.experiment import ensure_experiment_is_valid

from dr.drills import catalog, report, store
from dr.drills.measure import failure_runs, merge, write_outages
from dr.drills.runner import plan_drill, run_drill
from inventories.errors import HcopsError
from inventories.loader import load_region


def test_every_experiment_is_valid_chaos_toolkit() -> None:
    found = catalog.drills()
    assert set(found) == {"db-primary-loss", "db-switchover", "app-node-loss", "lb-node-loss", "link-cut",
                          "object-store-outage", "front-outage"}
    for d in found.values():
        if d.ready:
            ensure_experiment_is_valid(d.experiment())
        exp = d.experiment()
        assert exp["controls"][0]["provider"]["module"] == "dr.drills.control"
        assert exp["configuration"]["hcops_region"]["key"] == "HCOPS_REGION"


def test_outages_rto_from_canary_events() -> None:
    events = {"app1": [{"t": 10.0, "ok": True}, {"t": 11.0, "ok": False}, {"t": 12.0, "ok": False},
                       {"t": 17.5, "ok": True}],
              "app2": [{"t": 10.5, "ok": True}, {"t": 11.5, "ok": False}, {"t": 18.0, "ok": True},
                       {"t": 30.0, "ok": False}]}
    outs = write_outages(events, end=40.0)
    assert [(o.start, o.end) for o in outs] == [(11.0, 18.0), (30.0, 40.0)]
    assert failure_runs([(1, True), (2, False)], 5, "x")[0].what == "x (not recovered)"
    assert merge([], "y") == []


def _journal(passed: bool = True) -> dict[str, Any]:
    return {"status": "completed", "deviated": False, "run": [
        {"activity": {"name": "power-off-primary", "type": "action"}, "status": "succeeded", "output": {},
         "start": "2026-12-01T09:00:03.000", "end": "2026-12-01T09:00:04.000"}], "rollbacks": [],
        "hcops": {"drill": "db-primary-loss", "run_id": "20261201T090000000Z-db-primary-loss", "region": "lab",
                  "started": "2026-12-01T09:00:00.000+00:00", "ended": "2026-12-01T09:00:30.000+00:00",
                  "outages": [{"start": "2026-12-01T09:00:04.000+00:00", "end": "2026-12-01T09:00:12.000+00:00",
                               "what": "canary writes failing", "seconds": 8.0}],
                  "rto_s": 8.0, "rpo_lost_writes": 0, "failed_requests": 3, "requests": 100, "max_writable": 1,
                  "targets": {"rto_target_s": 15, "rpo_target_writes": 0, "max_failed_requests": 0,
                              "max_write_stall_s": 30},
                  "marks": [{"at": "2026-12-01T09:00:04.000+00:00", "what": "power off db1"}],
                  "series": {"requests": [[1764579601.0, True], [1764579606.0, False]],
                             "writes": {"app1": [[1764579601.0, True], [1764579605.0, False]]},
                             "writable": [[1764579601.0, ["db1"]], [1764579612.0, ["db2"]]]},
                  "verdict": {"passed": passed, "checks": [{"check": "RTO 8.0 s <= 15 s", "ok": True}]},
                  "maintenance": {"open": "opened w", "close": "closed w"}}}


def test_reports_are_offline_and_say_the_figures() -> None:
    j = _journal()
    page = report.html(j)
    assert "<svg" in page and "RTO" in page and "8.0 s" in page and "PASSED" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the report must fetch nothing"
    assert "<script" not in page
    md = report.markdown(j)
    assert "| RPO (acknowledged writes lost) | 0 | 0 |" in md and "power off db1" in md


def test_store_lists_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path))
    run_id, d = store.new_run_dir("lab", "db-primary-loss")
    j = _journal()
    j["hcops"]["run_id"] = run_id
    (d / "journal.json").write_text(json.dumps(j))
    (store.drills_dir("lab") / "torn").mkdir()
    (store.drills_dir("lab") / "torn" / "journal.json").write_text("{")
    runs = store.list_runs("lab")
    assert [r.run_id for r in runs] == [run_id]
    assert runs[0].passed and runs[0].outages[0]["what"] == "canary writes failing"
    assert runs[0].report_html == d / "report.html"


def test_plan_is_data_and_production_needs_a_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    region = load_region("lab")
    p = plan_drill(region, "db-switchover")
    assert next(s["phase"] for s in p.steps) == "control" and p.targets["rto_target_s"] == 15
    assert any(s["call"] == "dr.drills.actions.switchover" for s in p.steps)
    with pytest.raises(HcopsError, match="no drill named"):
        plan_drill(region, "nope")
    assert catalog.get("object-store-outage").ready
    unready = tmp_path / "experiments"
    unready.mkdir()
    exp = catalog.get("db-switchover").experiment()
    next(e for e in exp["extensions"] if e["name"] == "hcops")["missing"] = "a lever the lab lacks"
    (unready / "half-built.json").write_text(json.dumps(exp))
    with monkeypatch.context() as mp:
        mp.setattr(catalog, "EXPERIMENTS", unready)
        with pytest.raises(HcopsError, match="cannot run yet"):
            run_drill(region, "lab", "half-built")
    src = Path(region.root)
    prod = tmp_path / "prodlab"
    prod.mkdir()
    for f in src.glob("*.yml"):
        text = f.read_text()
        if f.name == "region.yml":
            text = text.replace("  name: lab\n", "  name: prodlab\n  production: true\n")
        (prod / f.name).write_text(text)
    with pytest.raises(HcopsError, match="marked production"):
        run_drill(load_region(str(prod)), str(prod), "db-switchover")


def test_drill_cli_errors(hcops: Any) -> None:
    res = hcops("drill", "run", "db-switchover", "--region", "lab")
    assert res.code == 64 and "--yes" in res.stderr
    res = hcops("drill", "plan", "bogus", "--region", "lab")
    assert res.code == 1 and "no drill named 'bogus'" in res.stderr and "Traceback" not in res.stderr
    res = hcops("-o", "json", "drill", "list")
    assert res.code == 0 and {d["name"] for d in json.loads(res.stdout)} >= {"db-primary-loss", "link-cut"}
    res = hcops("drill", "plan", "link-cut", "--region", "lab")
    assert res.code == 2 and "local-writer" in res.stdout


def test_failover_cli_on_unprovisioned_region(hcops: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path))
    res = hcops("failover", "db", "--region", "lab")
    assert res.code == 1 and "has not been provisioned" in res.stderr and "Traceback" not in res.stderr
    res = hcops("failover", "db", "--region", "lab", "--service", "nope")
    assert res.code == 1 and "no mysql service 'nope'" in res.stderr


def test_front_outage_is_bounded_and_judged_on_what_the_load_saw() -> None:
    from dr.drills import actions
    from dr.drills.control import _verdict

    for bad in (0, actions.FRONT_OUTAGE_MAX_S + 1):
        with pytest.raises(HcopsError, match="out of range"):
            actions.hold_outage(bad)
    base = {"targets": {"rto_target_s": 15, "rpo_target_writes": 0, "max_failed_requests": 0,
                        "max_write_stall_s": 30}, "steady_after_rollback": True, "rollback_status": ["succeeded"],
            "model_primary": "db1", "final_primary": "db1", "max_writable": 1, "rpo_lost_writes": 0,
            "requests": 400}
    seen = {**base, "failed_requests": 300, "outages": [{"what": "requests through the VIP failing", "seconds": 76}],
            "series": {"requests": [[1.0, True], [2.0, False], [80.0, True]]}}
    assert _verdict("front-outage", seen, "completed", False)["passed"]
    # nginx stopped but something else answered: the drill tested nothing and says so
    unseen = {**seen, "failed_requests": 0, "outages": []}
    assert not _verdict("front-outage", unseen, "completed", False)["passed"]
    down = {**seen, "series": {"requests": [[1.0, True], [2.0, False]]}}  # never answered again
    failed = [c["check"] for c in _verdict("front-outage", down, "completed", False)["checks"] if not c["ok"]]
    assert failed == ["the front answered again after nginx started"]


def test_backup_faults_are_named_and_an_unknown_one_is_refused() -> None:
    from dr.drills import backup_actions
    from dr.drills.context import dedicated_line

    region = load_region("lab")
    assert dedicated_line(region) == "dedicated-line"
    assert (backup_actions._fault(region, "line").broken, backup_actions._fault(region, "line").mended) == (
        "dedicated-line cut", "dedicated-line restored")
    # the object-store-outage drill's journal marks stay what its test and report read
    assert backup_actions._fault(region, "object-store").mended == "object store started again"
    with pytest.raises(HcopsError, match="not one a backup drill knows") as bad:
        backup_actions._fault(region, "power")
    assert bad.value.hint == "use one of: object-store, line"
