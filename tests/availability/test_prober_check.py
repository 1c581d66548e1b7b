"""The on-host SLO check (hcops_prober.py --check, installed by the playbooks) agrees with
`hcops availability report` on the same history, and uses the same alert windows."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

from dr.availability import burn
from dr.availability.history import parse
from dr.availability.report import build
from inventories.loader import load_region
from inventories.probes import probe_targets

SCRIPT = Path(__file__).resolve().parents[2] / "playbooks/roles/canary/files/hcops_prober.py"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hcops_prober", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_windows_agree() -> None:
    assert tuple((w.severity, w.long_s, w.short_s, w.factor) for w in burn.WINDOWS) == _script().WINDOWS


def test_check_matches_the_report(tmp_path: Path) -> None:
    prober = _script()
    region = load_region("lab")
    targets = [t.as_dict() for t in probe_targets(region)]
    cfg = {"interval_s": 10.0, "state_dir": str(tmp_path), "history_dir": str(tmp_path / "history"),
           "targets": targets}
    start = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    outage = (NOW.timestamp() - 200, NOW.timestamp() - 20)  # 3 minutes, just now: a page burn
    text = []
    for slo in ("platform", "records-db"):
        files: dict[str, list[str]] = {}
        t = start
        while t < NOW.timestamp():
            day = datetime.fromtimestamp(t, UTC).date().isoformat()
            bad = slo == "platform" and outage[0] <= t < outage[1]
            files.setdefault(day, []).append(f"{t:.3f}\t{0 if bad else 1}\t2.0\t\n")
            t += 10
        folder = tmp_path / "history" / slo
        folder.mkdir(parents=True)
        for day, lines in files.items():
            (folder / f"{day}.tsv").write_text("".join(lines))
    for slo in ("platform", "records-db"):
        for f in sorted((tmp_path / "history" / slo).iterdir()):
            text.append(f"#{slo}/{f.name}\n{f.read_text()}")
    first = prober.check(cfg, NOW)
    again = prober.check(cfg, NOW)  # the second run reads yesterday's summaries from the cache
    assert first == again and (tmp_path / "summary" / "platform" / "2026-12-01.json").exists()
    report = build(region, parse("".join(text), "test", 10), "month", NOW)
    mine = next(s for s in report.slos if s.slo == "platform")
    theirs = first["slos"]["platform"]
    assert theirs["downtime_min"] == round(mine.probes.down_s / 60, 2) == 3.0
    assert theirs["budget_left_min"] == mine.probe_budget_left_min
    for alert, row in zip(mine.alerts, theirs["burn"], strict=True):
        assert row["firing"] == alert.firing
        assert abs(row["long"] - (alert.long.burn or 0)) < 1e-6
    assert first["failing"] and first["exit"] == 3 and report.failing
    assert prober.run_check(cfg) in (0, 3)
    assert json.loads((tmp_path / "check.json").read_text())["t"] > 0
    assert prober.window_start("quarter", NOW - timedelta(days=40)) == datetime(2026, 10, 1, tzinfo=UTC)
