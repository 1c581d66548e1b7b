"""Property tests for the availability algebra, and the design model on both shipped regions."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from dr.availability import algebra
from dr.availability.design import design
from dr.availability.drills import DrillRuns, parse_journal
from inventories.loader import load_region

avail = st.floats(min_value=0.5, max_value=1.0, allow_nan=False)


@given(a=avail, n=st.integers(min_value=1, max_value=12))
def test_series_of_n_equal_parts_is_the_power(a: float, n: int) -> None:
    assert math.isclose(algebra.series([a] * n), a ** n, rel_tol=1e-9)


@given(a=avail, n=st.integers(min_value=1, max_value=6))
def test_parallel_of_n_equal_parts(a: float, n: int) -> None:
    assert math.isclose(algebra.parallel([a] * n), 1 - (1 - a) ** n, rel_tol=1e-9, abs_tol=1e-12)


@given(parts=st.lists(avail, min_size=1, max_size=8))
def test_series_below_weakest_and_parallel_above_strongest(parts: list[float]) -> None:
    assert algebra.series(parts) <= min(parts) + 1e-12
    assert algebra.parallel(parts) >= max(parts) - 1e-12


@given(parts=st.lists(avail, min_size=1, max_size=6), extra=avail)
def test_redundancy_never_hurts_and_a_series_part_never_helps(parts: list[float], extra: float) -> None:
    assert algebra.parallel([*parts, extra]) >= algebra.parallel(parts) - 1e-12
    assert algebra.series([*parts, extra]) <= algebra.series(parts) + 1e-12


@given(a=avail, b=avail, c=avail)
def test_monotone_in_each_part(a: float, b: float, c: float) -> None:
    lo, hi = sorted((a, c))
    assert algebra.series([lo, b]) <= algebra.series([hi, b]) + 1e-12
    assert algebra.parallel([lo, b]) <= algebra.parallel([hi, b]) + 1e-12


@given(mtbf=st.floats(min_value=1, max_value=1e6), mttr=st.floats(min_value=0.01, max_value=1e3),
       fail_s=st.floats(min_value=0, max_value=3600))
def test_failover_time_only_costs(mtbf: float, mttr: float, fail_s: float) -> None:
    a = algebra.steady(mtbf, mttr)
    pair = algebra.redundant([a, a], algebra.failures_per_year(mtbf, mttr), fail_s)
    assert pair <= algebra.parallel([a, a]) + 1e-12
    longer = algebra.redundant([a, a], algebra.failures_per_year(mtbf, mttr), fail_s * 2 + 1)
    assert longer <= pair + 1e-12


def test_target_arithmetic() -> None:
    assert math.isclose(algebra.downtime_minutes_per_year(0.9995), 262.8, rel_tol=1e-9)
    assert math.isclose(algebra.steady(8760, 4), 8760 / 8764)


def test_design_of_both_shipped_regions_names_a_weakest_link() -> None:
    lab = design(load_region("lab"))
    by_slo = {s.slo: s for s in lab.services}
    platform = by_slo["platform"]
    # front -> canary (same hosts, counted once) -> appdb over the 100 Mbit/s line to db1
    assert [t.service for t in platform.tiers] == ["front", "canary", "appdb"]
    assert platform.tiers[1].shared_with == "front"
    assert "line dedicated-line" in {p.name for p in platform.parts}
    assert platform.weakest == "failover appdb"  # 1800 s manual failover, ~5 times a year (line + db1)
    assert 100 < platform.downtime_min_year < 262.8 and platform.meets
    city = design(load_region("example-city"))
    line = next(p for s in city.services for p in s.parts if p.name == "line city-cloud-line")
    assert line.availability > 0.99999  # dual uplinks 1+1: two routes of 99.82%
    assert all(s.weakest for s in city.services)


def test_measured_failover_from_a_drill_replaces_the_default_and_a_miss_gets_a_fix() -> None:
    region = load_region("lab")
    journal = {"hcops": {"drill": "db-failover", "run_id": "r1", "started": "2026-12-01T09:00:00+00:00",
                         "ended": "2026-12-01T09:05:00+00:00", "outages": [], "rto_s": 14.2,
                         "rpo_lost_writes": 0, "failed_requests": 3, "targets": ["appdb"]}}
    runs = DrillRuns([parse_journal(journal)])
    measured = {s.slo: s for s in design(region, runs).services}["platform"]
    assert measured.tiers[2].failover_s == 14.2 and "r1" in measured.tiers[2].failover_source
    assert measured.downtime_min_year < 40
    slow = DrillRuns([parse_journal({"hcops": {**journal["hcops"], "rto_s": 4 * 3600.0}})])
    missed = {s.slo: s for s in design(region, slow).services}["platform"]
    assert not missed.meets and missed.suggestion is not None and missed.suggestion.meets
    # the drills' own journals name RTO/RPO targets (a dict) and the primary they failed over
    real = DrillRuns([parse_journal({"hcops": {**journal["hcops"], "targets": {"rto_target_s": 60},
                                               "model_primary": "db1", "rto_s": 9.5}})])
    assert {s.slo: s for s in design(region, real).services}["platform"].tiers[2].failover_s == 9.5
    assert "failover" in missed.suggestion.what
