"""`availability report`: each SLO from two independent sources side by side.

Source 1 is the canary's probe history (kept by hcops' prober on the host the model names);
source 2 is Zabbix's SLA for the SLO (`monitoring/sla.py`). When their downtimes disagree by
more than a probe interval and a Zabbix poll, the report says why, from what the data show
(unobserved gaps, different observation spans, incidents shorter than a Zabbix poll). Burn
rates come from the probe history, whose resolution is the probe interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dr.availability import burn
from dr.availability.drills import DrillRun, DrillRuns
from dr.availability.history import History
from dr.availability.measured import Measured, budget_spent, measure
from inventories.errors import HcopsError
from inventories.model import Region, allowed_downtime
from monitoring.sla import SPAN, Period, SliRow, period_start

ZABBIX_POLL_S = 60.0  # the official templates poll availability items once a minute


@dataclass
class SloReport:
    slo: str
    service: str
    target: float
    period: Period
    start: datetime
    end: datetime
    budget_min: float
    probes: Measured
    alerts: list[burn.AlertStatus]
    burn_timeline: list[tuple[float, float | None]]
    spent_timeline: list[tuple[float, float]]
    zabbix: SliRow | None
    zabbix_error: str | None
    interval_s: float = 10.0
    explanation: list[str] = field(default_factory=list)
    drills: list[DrillRun] = field(default_factory=list)

    @property
    def period_s(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def observed_fraction(self) -> float:
        return min(1.0, self.probes.observed_s / self.period_s) if self.period_s > 0 else 0.0

    @property
    def probe_budget_left_min(self) -> float:
        return round(self.budget_min - self.probes.down_s / 60, 2)

    @property
    def exhausted(self) -> bool:
        zbx = self.zabbix is not None and self.zabbix.downtime_min > self.zabbix.budget_min
        return self.probe_budget_left_min < 0 or zbx

    @property
    def paging(self) -> list[burn.AlertStatus]:
        return [a for a in self.alerts if a.firing and a.window.severity == "page"]

    def observed_note(self) -> str:
        return (f"{self.probes.observed_s / 60:.1f} of {self.period_s / 60:.1f} min of this {self.period} observed "
                f"({self.observed_fraction * 100:.1f}%)")

    def as_dict(self) -> dict[str, Any]:
        return {
            "slo": self.slo, "service": self.service, "target": self.target, "period": self.period,
            "from": self.start.isoformat(), "to": self.end.isoformat(), "budget_min": self.budget_min,
            "observed": self.observed_note(), "observed_pct": round(self.observed_fraction * 100, 2),
            "probes": {**self.probes.as_dict(), "budget_left_min": self.probe_budget_left_min},
            "zabbix": self.zabbix.as_dict() if self.zabbix else None, "zabbix_error": self.zabbix_error,
            "explanation": self.explanation,
            "burn": [a.as_dict() for a in self.alerts],
            "budget_exhausted": self.exhausted, "paging": bool(self.paging),
            "drills": [d.as_dict() for d in self.drills],
        }


@dataclass
class AvailabilityReport:
    region: str
    generated: datetime
    history_source: str
    interval_s: float
    bad_lines: int
    slos: list[SloReport]
    skipped_journals: list[str] = field(default_factory=list)

    @property
    def failing(self) -> bool:
        return any(s.exhausted or s.paging for s in self.slos)

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "generated": self.generated.isoformat(),
                "probe_history": self.history_source, "probe_interval_s": self.interval_s,
                "unparsed_history_lines": self.bad_lines, "failing": self.failing,
                "slos": [s.as_dict() for s in self.slos], "skipped_drill_journals": self.skipped_journals}


def explain(rep: SloReport) -> list[str]:
    """Why the two sources' downtimes differ, from what the data show; empty when they agree."""
    if rep.zabbix is None:
        return []
    probe_min = rep.probes.down_s / 60
    diff = rep.zabbix.downtime_min - probe_min
    tolerance = (ZABBIX_POLL_S + 2 * rep.interval_s) / 60
    if abs(diff) <= tolerance:
        return []
    out = [f"Zabbix counts {rep.zabbix.downtime_min:.2f} min, the probes {probe_min:.2f} min "
           f"({'+' if diff > 0 else ''}{diff:.2f} min)."]
    gaps = sum(g.seconds for g in rep.probes.gaps) / 60
    if gaps > 0:
        out.append(f"The prober observed nothing for {gaps:.1f} min (gaps in its history); "
                   "Zabbix judged that time by its own data.")
    if rep.probes.first is not None:
        late = (rep.probes.first - rep.start.timestamp()) / 60
        if late > 1:
            out.append(f"The probe history starts {late:.1f} min after the period does; only Zabbix saw that time.")
    elif rep.probes.probes == 0:
        out.append("The prober has no history in this period.")
    short = [i for i in rep.probes.incidents if i.seconds < 2 * ZABBIX_POLL_S]
    if short and diff < 0:
        out.append(f"{len(short)} probe incident(s) lasted under {2 * ZABBIX_POLL_S:.0f} s "
                   f"({sum(i.seconds for i in short) / 60:.2f} min): Zabbix polls availability once a minute "
                   "and raises a problem only on a failed poll, so it misses or shortens them.")
    if diff > 0:
        out.append("Zabbix counts a problem from the failed poll to the poll that clears it (a minute's "
                   "resolution each side), and counts a tier down when every host in it has an availability "
                   "problem, even if the user path (what the probe follows) still answered.")
    if diff < 0:
        out.append("The probe follows the users' path (VIP, proxy, application, database write); a failure "
                   "there without an availability problem on the hosts (a wrong route, an application "
                   "error, a VIP that did not move) spends budget only in the probe's count.")
    return out


def build(region: Region, history: History, period: Period, now: datetime | None = None, *,
          zabbix: Callable[[Period, datetime], list[SliRow]] | None = None,
          drills: DrillRuns | None = None) -> AvailabilityReport:
    if not region.slos:
        raise HcopsError(f"region {region.name!r} declares no SLOs", "add an `slos:` section to the region")
    moment = now or datetime.now(UTC)
    zbx_rows: dict[str, SliRow] = {}
    zbx_error: str | None = None
    if zabbix is not None:
        try:
            zbx_rows = {row.slo: row for row in zabbix(period, moment)}
        except HcopsError as exc:
            zbx_error = exc.message
    else:
        zbx_error = "not asked (--no-zabbix)"
    runs = drills or DrillRuns()
    out: list[SloReport] = []
    for slo_name, slo in region.slos.items():
        effective: Period = period if SPAN[slo.window] <= SPAN[period] else slo.window
        start = period_start(effective, moment)
        probes = history.probes.get(slo_name, [])
        measured = measure(probes, history.interval_s, start.timestamp(), moment.timestamp())
        series = burn.Series([p for p in probes if p.t <= moment.timestamp()], history.interval_s)
        rep = SloReport(
            slo=slo_name, service=slo.service, target=slo.target, period=effective, start=start, end=moment,
            budget_min=allowed_downtime(slo.target, effective), probes=measured,
            alerts=burn.status(series, slo.target, moment.timestamp()),
            burn_timeline=burn.timeline(series, slo.target, start.timestamp(), moment.timestamp()),
            spent_timeline=budget_spent(measured, start.timestamp()),
            zabbix=zbx_rows.get(slo_name),
            zabbix_error=zbx_error if zbx_error or slo_name in zbx_rows else "Zabbix returned no row",
            interval_s=history.interval_s,
            drills=[d for d in runs.runs if (d.ended or moment) >= start and d.started <= moment],
        )
        rep.explanation = explain(rep)
        out.append(rep)
    return AvailabilityReport(region.name, moment, history.source, history.interval_s, history.bad_lines, out,
                              runs.skipped)
