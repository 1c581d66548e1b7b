"""`hcops summary` reads what the engines recorded and says where each figure came from: a
missing source is `missing`, a failed drill or acceptance item is `FAIL`, never a pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import summary
from inventories.loader import load_region


@pytest.fixture
def region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "state"))
    # Host and database rows need live hosts; they are covered by the lab job. Here: the artefacts.
    monkeypatch.setattr(summary, "_hosts", lambda r: summary.Row("hosts up", summary.OK, "7/7 running"))
    monkeypatch.setattr(summary, "_database", lambda r: summary.Row("database appdb", summary.OK, "primary db1"))
    monkeypatch.setattr(summary, "_backups", lambda r: [])
    return load_region("lab")


def _drill(state: Path, run_id: str, passed: bool, rto: float) -> None:
    d = state / "lab" / "drills" / run_id
    d.mkdir(parents=True)
    (d / "journal.json").write_text(json.dumps({"status": "completed", "hcops": {
        "drill": "db-primary-loss", "run_id": run_id, "started": "2026-12-01T10:00:00+00:00",
        "ended": "2026-12-01T10:01:00+00:00", "outages": [], "rto_s": rto, "rpo_lost_writes": 0,
        "failed_requests": 3, "targets": {"rto_target_s": 15, "rpo_target_writes": 0},
        "verdict": {"passed": passed}}}))
    (d / "report.html").write_text("<html>drill</html>")


def test_missing_sources_are_missing_not_ok(region, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = summary.build(region, tmp_path / "out")
    states = {r.what: r.state for r in s.rows}
    assert states["drills"] == "missing" and states["availability"] == "missing"
    assert states["county ruijin acceptance"] == "missing"
    assert not s.ok


def test_newest_drill_counts_and_index_links_its_report(region, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state, out = tmp_path / "state", tmp_path / "out"
    _drill(state, "20261201T100000000Z-db-primary-loss", passed=True, rto=8.5)
    _drill(state, "20261201T110000000Z-db-primary-loss", passed=False, rto=21.0)
    out.mkdir()
    (out / "availability.json").write_text(json.dumps({"slos": [{
        "slo": "platform", "target": 99.95, "period": "month", "budget_min": 21.9, "observed": "4.0% observed",
        "budget_exhausted": False, "paging": False,
        "probes": {"availability_pct": 99.99, "budget_left_min": 21.5}}]}))
    (out / "availability.html").write_text("<html>availability</html>")
    s = summary.build(region, out)
    rows = {r.what: r for r in s.rows}
    drill = rows["drill db-primary-loss"]
    assert drill.state == "FAIL" and "RTO 21.00 s (target 15 s)" in drill.detail  # the newest run, not the best
    assert rows["availability platform"].state == "ok" and "99.990%" in rows["availability platform"].detail
    index = summary.write_index(s, out).read_text()
    assert 'href="drills/20261201T110000000Z-db-primary-loss.html"' in index
    assert (out / "drills" / "20261201T110000000Z-db-primary-loss.html").exists()
    assert 'href="availability.html"' in index and "something needs a look" in index
    assert "http://" not in index and "https://" not in index  # offline: nothing fetched


@pytest.mark.parametrize(("exhausted", "paging", "state"), [(False, True, "warn"), (True, True, "FAIL"),
                                                          (False, False, "ok")])
def test_a_burn_rate_page_warns_an_exhausted_budget_fails(region, tmp_path: Path, exhausted: bool, paging: bool,  # type: ignore[no-untyped-def]
                                                          state: str) -> None:
    """Right after a drill the fast-burn page fires while most of the month's budget is left: the
    SLO (the budget over the window) has not failed. Only a spent budget fails the summary."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "availability.json").write_text(json.dumps({"slos": [{
        "slo": "platform", "target": 99.95, "period": "month", "budget_min": 21.9, "observed": "1.8% observed",
        "budget_exhausted": exhausted, "paging": paging,
        "burn": [{"rule": "6h/30m at 6x", "severity": "page", "firing": paging}],
        "probes": {"availability_pct": 97.03, "budget_left_min": 0.0 if exhausted else 21.5}}]}))
    row = next(r for r in summary.build(region, out).rows if r.what == "availability platform")
    assert row.state == state
    assert ("burn-rate page firing (6h/30m at 6x)" in row.detail) == paging
