"""Multi-window, multi-burn-rate alerting as the SRE workbook (ch. 5, "Alerting on SLOs") defines it.

The burn rate of a window is its error ratio divided by the error budget ratio (1 - target):
1 means the budget lasts exactly the SLO window. An alert is on when both its long and its
short window burn at least at its factor (the short window makes it reset soon after an
outage ends). Each window also says how much of it was observed: a rate from minutes of data
is not an hour's rate.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Literal

from dr.availability.history import Probe

Severity = Literal["page", "ticket"]


@dataclass(frozen=True)
class AlertWindow:
    severity: Severity
    long_s: int
    short_s: int
    factor: float

    @property
    def name(self) -> str:
        return f"{_span(self.long_s)}/{_span(self.short_s)} at {self.factor:g}x"


WINDOWS = (
    AlertWindow("page", 3600, 300, 14.4),  # 2% of a 30-day budget in an hour
    AlertWindow("page", 6 * 3600, 1800, 6.0),  # 5% in six hours
    AlertWindow("ticket", 3 * 86400, 6 * 3600, 1.0),  # 10% in three days
)


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class Series:
    """Probes of one SLO with prefix sums, so any window's error ratio is two bisections."""

    def __init__(self, probes: list[Probe], interval_s: float) -> None:
        self.times = [p.t for p in probes]
        self.bad = [0]
        for p in probes:
            self.bad.append(self.bad[-1] + (0 if p.ok else 1))
        self.interval_s = interval_s

    def window(self, end: float, seconds: float) -> tuple[float | None, float]:
        """(error ratio or None without data, observed fraction of the window) for (end - seconds, end]."""
        i = bisect.bisect_right(self.times, end - seconds)
        j = bisect.bisect_right(self.times, end)
        count = j - i
        if count == 0:
            return None, 0.0
        observed = min(1.0, count * self.interval_s / seconds)
        return (self.bad[j] - self.bad[i]) / count, observed


@dataclass
class WindowBurn:
    seconds: int
    burn: float | None
    observed: float

    def as_dict(self) -> dict[str, Any]:
        return {"window": _span(self.seconds), "burn_rate": None if self.burn is None else round(self.burn, 3),
                "observed_pct": round(self.observed * 100, 1)}


@dataclass
class AlertStatus:
    window: AlertWindow
    long: WindowBurn
    short: WindowBurn

    @property
    def firing(self) -> bool:
        return all(w.burn is not None and w.burn >= self.window.factor for w in (self.long, self.short))

    def as_dict(self) -> dict[str, Any]:
        return {"severity": self.window.severity, "rule": self.window.name, "factor": self.window.factor,
                "firing": self.firing, "long": self.long.as_dict(), "short": self.short.as_dict()}


def burn_rate(error_ratio: float | None, target: float) -> float | None:
    if error_ratio is None:
        return None
    return error_ratio / ((100.0 - target) / 100.0)


def status(series: Series, target: float, now: float) -> list[AlertStatus]:
    out = []
    for win in WINDOWS:
        parts = []
        for seconds in (win.long_s, win.short_s):
            ratio, observed = series.window(now, seconds)
            parts.append(WindowBurn(seconds, burn_rate(ratio, target), observed))
        out.append(AlertStatus(win, parts[0], parts[1]))
    return out


def timeline(series: Series, target: float, start: float, end: float, *, seconds: int = 3600,
             points: int = 240) -> list[tuple[float, float | None]]:
    """Burn rate of a window (default 1 h) at evenly spaced moments of a period, for the chart."""
    if end <= start:
        return []
    step = (end - start) / points
    return [(start + k * step, burn_rate(series.window(start + k * step, seconds)[0], target))
            for k in range(1, points + 1)]
