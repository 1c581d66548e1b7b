"""The algebra of availability: steady state of one part, series, parallel, failover cost.

Availabilities are fractions in [0, 1]. Parts are assumed to fail independently; a redundant
group is up while any member is up, less the switch-over time each failure of the active
member costs (a pair that fails over is down for that time even though a member is up).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

HOURS_PER_YEAR = 8760.0
MINUTES_PER_YEAR = HOURS_PER_YEAR * 60


def steady(mtbf_h: float, mttr_h: float) -> float:
    """Steady-state availability of a repairable part: MTBF / (MTBF + MTTR)."""
    if mtbf_h <= 0 or mttr_h < 0:
        raise ValueError("MTBF must be positive and MTTR non-negative")
    return mtbf_h / (mtbf_h + mttr_h)


def series(parts: Iterable[float]) -> float:
    """Every part is needed: the product."""
    return math.prod(parts)


def parallel(parts: Iterable[float]) -> float:
    """Any part suffices: one minus the product of the unavailabilities."""
    return 1.0 - math.prod(1.0 - a for a in parts)


def failover_cost(failures_per_year: float, failover_s: float) -> float:
    """Unavailability (fraction of a year) spent switching over after failures of the active member."""
    return min(1.0, failures_per_year * failover_s / (HOURS_PER_YEAR * 3600))


def redundant(parts: list[float], active_failures_per_year: float, failover_s: float) -> float:
    """A redundant group that fails over: parallel, less the time spent switching."""
    if len(parts) == 1:
        return parts[0]
    return max(0.0, parallel(parts) - failover_cost(active_failures_per_year, failover_s))


def downtime_minutes_per_year(availability: float) -> float:
    return (1.0 - availability) * MINUTES_PER_YEAR


def failures_per_year(mtbf_h: float, mttr_h: float) -> float:
    """Failures a year of a repairable part (one per MTBF + MTTR cycle)."""
    return HOURS_PER_YEAR / (mtbf_h + mttr_h)
