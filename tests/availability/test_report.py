"""Measured availability from a probe history: SLI, incidents, gaps, burn rates, the two sources
side by side, exit codes, JSON and the HTML report (looked at in headless Chromium)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dr.availability import burn
from dr.availability.history import Probe, parse
from dr.availability.measured import measure
from dr.availability.report import build
from inventories.loader import load_region
from monitoring.sla import SliRow

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC).timestamp()


def history_text(outages: dict[str, list[tuple[float, float]]], start: float, end: float, step: float = 10,
                 gap: tuple[float, float] | None = None) -> str:
    lines = []
    for slo in ("platform", "records-db"):
        lines.append(f"#{slo}/2026-12-01.tsv")
        t = start
        while t < end:
            if not (gap and gap[0] <= t < gap[1]):
                bad = any(a <= t < b for a, b in outages.get(slo, []))
                lines.append(f"{t:.3f}\t{0 if bad else 1}\t3.2\t{'HTTP 503' if bad else ''}")
            t += step
    return "\n".join(lines) + "\n"


def test_measure_incidents_gaps_and_downtime() -> None:
    probes = [Probe(T0 + 10 * k, ok=not (30 <= k < 36)) for k in range(100) if not (60 <= k < 70)]
    m = measure(probes, 10, T0, T0 + 1000)
    assert m.down_s == 60 and len(m.incidents) == 1 and m.incidents[0].seconds == 60
    assert len(m.gaps) == 1 and m.gaps[0].seconds == 100
    assert m.observed_s == 900
    assert m.availability == pytest.approx(1 - 60 / 900)


def test_burn_windows_and_observed_fraction() -> None:
    end = T0 + 3600
    probes = [Probe(T0 + 10 * k, ok=not (340 <= k < 350)) for k in range(1, 361)]  # 100 s down
    series = burn.Series(probes, 10)
    statuses = {a.window.name: a for a in burn.status(series, 99.95, end)}
    page = statuses["1h/5m at 14.4x"]
    assert page.firing
    assert page.long.burn == pytest.approx((10 / 360) / 0.0005)
    assert page.short.burn == pytest.approx((10 / 30) / 0.0005)
    assert page.long.observed == pytest.approx(1.0)
    ticket = statuses["3d/6h at 1x"]
    assert ticket.long.observed == pytest.approx(3600 / (3 * 86400))  # one hour of a 3-day window
    # after the outage, the short window resets the page even though the hour still burns
    later = [*probes, *(Probe(end + 10 * k, True) for k in range(1, 40))]
    again = {a.window.name: a for a in burn.status(burn.Series(later, 10), 99.95, end + 390)}
    assert not again["1h/5m at 14.4x"].firing and again["1h/5m at 14.4x"].long.burn > 14.4


def _zabbix_rows(downtime: dict[str, float]):  # type: ignore[no-untyped-def]
    def rows(period, moment):  # type: ignore[no-untyped-def]
        out = []
        for slo, target, window, budget in (("platform", 99.95, "month", 21.89), ("records-db", 99.95, "year", 262.8)):
            start = datetime(2026, 12 if window == "month" else 1, 1, tzinfo=UTC)
            total = (moment - start).total_seconds() / 60
            down = downtime.get(slo, 0.0)
            out.append(SliRow(slo, "x", target, window, start, moment, total - down, down,
                              round(100 * (total - down) / total, 4), budget))
        return out
    return rows


def test_sources_side_by_side_and_the_difference_explained() -> None:
    region = load_region("lab")
    text = history_text({"platform": [(T0 + 3600, T0 + 3690), (T0 + 7200, T0 + 7230)]}, T0 + 600, NOW.timestamp(),
                        gap=(T0 + 20000, T0 + 21200))
    history = parse(text, "test", 10)
    report = build(region, history, "month", NOW, zabbix=_zabbix_rows({"platform": 2.0}))
    platform = next(s for s in report.slos if s.slo == "platform")
    assert platform.probes.down_s == 120 and len(platform.probes.incidents) == 2
    assert platform.zabbix is not None and platform.zabbix.downtime_min == 2.0
    assert not platform.explanation  # 2.0 min both ways
    off = build(region, history, "month", NOW, zabbix=_zabbix_rows({"platform": 0.0}))
    why = " ".join(next(s for s in off.slos if s.slo == "platform").explanation)
    assert "under 120 s" in why and "gaps" in why and "starts 10.0 min after" in why
    assert not off.failing
    records = next(s for s in report.slos if s.slo == "records-db")
    assert records.period == "year" and "of this year observed" in records.observed_note()


def _write_history(tmp_path: Path, outages: dict[str, list[tuple[float, float]]]) -> Path:
    path = tmp_path / "probes.tsv"
    path.write_text(history_text(outages, T0, NOW.timestamp()) + "garbage line\n")
    return path


def test_cli_exit_codes_json_and_drill_annotations(hcops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "state"))
    run = tmp_path / "state" / "lab" / "drills" / "run-1"
    run.mkdir(parents=True)
    run.joinpath("journal.json").write_text(json.dumps({"hcops": {
        "drill": "db-failover", "run_id": "run-1", "started": "2026-12-01T08:59:00+00:00",
        "ended": "2026-12-01T09:03:00+00:00",
        "outages": [{"start": "2026-12-01T09:00:00+00:00", "end": "2026-12-01T09:00:40+00:00", "what": "db"}],
        "rto_s": 40, "rpo_lost_writes": 0, "failed_requests": 4, "targets": ["appdb"]}}))
    (tmp_path / "state" / "lab" / "drills" / "broken").mkdir()
    (tmp_path / "state" / "lab" / "drills" / "broken" / "journal.json").write_text("{")
    calm = _write_history(tmp_path, {"platform": [(T0 + 3600, T0 + 3640)]})
    ok = hcops("-o", "json", "availability", "report", "--region", "lab", "--probes", str(calm), "--no-zabbix",
               "--at", NOW.isoformat())
    assert ok.code == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["unparsed_history_lines"] == 1 and not data["failing"]
    platform = data["slos"][0]
    assert platform["probes"]["downtime_min"] == pytest.approx(40 / 60, abs=0.01)
    assert platform["zabbix"] is None and "no-zabbix" in platform["zabbix_error"]
    assert platform["drills"][0]["run_id"] == "run-1" and len(data["skipped_drill_journals"]) == 1
    burning = _write_history(tmp_path, {"platform": [(NOW.timestamp() - 240, NOW.timestamp())]})
    paged = hcops("availability", "report", "--region", "lab", "--probes", str(burning), "--no-zabbix",
                  "--at", NOW.isoformat(), "--html", str(tmp_path / "report.html"))
    assert paged.code == 3, paged.stderr
    assert "FIRING" in paged.stdout and "FAILING" in paged.stdout
    assert hcops("availability", "report", "--region", "lab", "--probes", str(burning), "--no-zabbix",
                 "--at", NOW.isoformat(), "--no-fail").code == 0
    exhausted = _write_history(tmp_path, {"platform": [(T0 + 100, T0 + 100 + 30 * 60)]})
    spent = hcops("-o", "json", "availability", "report", "--region", "lab", "--probes", str(exhausted),
                  "--no-zabbix", "--at", NOW.isoformat())
    assert spent.code == 3 and json.loads(spent.stdout)["slos"][0]["budget_exhausted"]
    page = (tmp_path / "report.html").read_text()
    assert "<svg" in page and "drill db-failover" in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    chromium = shutil.which("chromium")
    assert chromium, "chromium comes with ./run (deps/apt.txt): the screenshot is what a person sees"
    png = tmp_path / "report.png"  # kept for a look
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'chrome'}", f"--screenshot={png}", "--window-size=1280,1600",
                    f"file://{tmp_path / 'report.html'}"], check=True, capture_output=True, timeout=120)
    assert png.stat().st_size > 20_000
    shutil.copy(png, Path("/tmp/hcops-availability-report.png"))


def test_bad_input_is_refused_clearly(hcops, tmp_path: Path) -> None:
    bad = hcops("availability", "report", "--region", "lab", "--period", "week")
    assert bad.code == 64 and "week" in bad.stderr
    missing = hcops("availability", "report", "--region", "lab", "--probes", str(tmp_path / "nope.tsv"), "--no-zabbix")
    assert missing.code == 1 and "fix:" in missing.stderr and "Traceback" not in missing.stderr
    when = hcops("availability", "report", "--region", "lab", "--probes", str(tmp_path), "--at", "yesterday")
    assert when.code == 1 and "ISO" in when.stderr
    wrong = tmp_path / "lab"
    shutil.copytree(Path(__file__).resolve().parents[2] / "inventories" / "lab", wrong)
    services = wrong / "services.yml"
    services.write_text(services.read_text().replace("    prober: zbx1 ", "    prober: zbx9 "))
    refused = hcops("inventory", "validate", str(wrong))
    assert refused.code == 1 and "zbx9" in refused.stderr and "services.yml" in refused.stderr
    services.write_text(services.read_text().replace("    prober: zbx9 ", "    # no prober "))
    none = hcops("availability", "report", "--region", str(wrong), "--no-zabbix")
    assert none.code == 1 and "names no prober host" in none.stderr
