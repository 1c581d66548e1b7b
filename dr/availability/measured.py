"""The SLI of one SLO from its probe history: downtime, incidents, gaps, budget spent.

Each probe stands for the interval that follows it (`interval_s`). Consecutive failed probes
form an incident, from the first failure to the first success after it. A silence longer than
three intervals is a gap: time nobody observed, counted neither up nor down and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dr.availability.history import Probe

GAP_FACTOR = 3.0


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    detail: str = ""

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Measured:
    probes: int
    observed_s: float
    down_s: float
    first: float | None
    last: float | None
    incidents: list[Span] = field(default_factory=list)
    gaps: list[Span] = field(default_factory=list)

    @property
    def availability(self) -> float | None:
        return None if self.observed_s <= 0 else 1.0 - self.down_s / self.observed_s

    def as_dict(self) -> dict[str, Any]:
        return {"probes": self.probes, "observed_min": round(self.observed_s / 60, 2),
                "downtime_min": round(self.down_s / 60, 2),
                "availability_pct": None if self.availability is None else round(self.availability * 100, 4),
                "incidents": [{"start": i.start, "end": i.end, "seconds": round(i.seconds, 1), "detail": i.detail}
                              for i in self.incidents],
                "gaps_min": round(sum(g.seconds for g in self.gaps) / 60, 2)}


def measure(probes: list[Probe], interval_s: float, start: float, end: float) -> Measured:
    inside = [p for p in probes if start <= p.t < end]
    out = Measured(len(inside), 0.0, 0.0, inside[0].t if inside else None, inside[-1].t if inside else None)
    open_since: float | None = None
    detail = ""
    for index, probe in enumerate(inside):
        following = inside[index + 1].t if index + 1 < len(inside) else min(end, probe.t + interval_s)
        silent = following - probe.t
        weight = min(silent, interval_s) if silent <= GAP_FACTOR * interval_s else interval_s
        if silent > GAP_FACTOR * interval_s:
            out.gaps.append(Span(probe.t + interval_s, following))
        out.observed_s += weight
        if not probe.ok:
            out.down_s += weight
            if open_since is None:
                open_since, detail = probe.t, probe.detail
        elif open_since is not None:
            out.incidents.append(Span(open_since, probe.t, detail))
            open_since = None
        if open_since is not None and silent > GAP_FACTOR * interval_s:  # an outage the gap cut short
            out.incidents.append(Span(open_since, probe.t + weight, detail))
            open_since = None
    if open_since is not None and out.last is not None:
        out.incidents.append(Span(open_since, min(end, out.last + interval_s), detail))
    return out


def budget_spent(measured: Measured, start: float) -> list[tuple[float, float]]:
    """Cumulative downtime (seconds) after each incident: the steps of the budget chart."""
    total, out = 0.0, [(start, 0.0)]
    for inc in measured.incidents:
        out.append((inc.start, total))
        total += inc.seconds
        out.append((inc.end, total))
    return out
