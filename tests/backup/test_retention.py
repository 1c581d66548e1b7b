"""Retention selection (hypothesis): quotas per period, never the last verified full, never a
backup a kept one needs; failed backups go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dr.backup.catalog import Entry
from dr.backup.manifest import Manifest
from dr.backup.retention import plan
from inventories.schema import Retention

T0 = datetime(2026, 1, 1, 1, 30, tzinfo=UTC)


def _entry(i: int, day: int, kind: str, parent: str | None, state: str, verified: bool) -> Entry:
    at = (T0 + timedelta(days=day, minutes=i)).isoformat()
    bid = f"b{i:03d}"
    m = Manifest(backup_id=bid, region="t", policy="p", kind=kind, source="s", started_at=at, parent=parent)
    return Entry(id=bid, policy="p", kind=kind, parent=parent, started_at=at, finished_at=at, state=state,
                 stored_bytes=1, manifest=m, places={"local": at} if state == "good" else {},
                 verified=[("local", at, True, "")] if verified else [])


@st.composite
def histories(draw: st.DrawFn) -> list[Entry]:
    n = draw(st.integers(1, 40))
    out: list[Entry] = []
    day = 0
    last_chain: str | None = None
    for i in range(n):
        day += draw(st.integers(0, 20))
        kind = draw(st.sampled_from(["full", "incremental", "incremental", "binlog"]))
        state = draw(st.sampled_from(["good", "good", "good", "failed"]))
        parent = None
        if kind == "incremental":
            if last_chain is None:
                kind = "full"
            else:
                parent = last_chain
        e = _entry(i, day, kind, parent, state, draw(st.booleans()))
        if kind in ("full", "incremental") and state == "good":
            last_chain = e.id
        out.append(e)
    return out


@settings(max_examples=60, deadline=None)
@given(histories(), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.integers(0, 2))
def test_retention_invariants(entries: list[Entry], d: int, w: int, m: int, y: int) -> None:
    p = plan("p", entries, Retention(daily=d, weekly=w, monthly=m, yearly=y))
    keep = {c.backup_id for c in p.keeps}
    by_id = {e.id: e for e in entries}
    assert keep | {c.backup_id for c in p.deletes} == set(by_id)
    # every kept backup's parent chain is kept
    for bid in keep:
        e = by_id[bid]
        while e.parent:
            assert e.parent in keep, f"{bid} kept but its parent {e.parent} goes"
            e = by_id[e.parent]
    fulls = [e for e in entries if e.kind == "full" and e.state == "good"]
    verified = [e for e in fulls if e.verified]
    if verified:
        assert verified[-1].id in keep  # the last verified full stays, whatever the quotas
    elif fulls:
        assert fulls[-1].id in keep
    for e in entries:
        if e.state == "failed":
            assert e.id not in keep
    kept_fulls = [e for e in fulls if e.id in keep]
    assert len(kept_fulls) <= d + w + m + y + 1


def test_daily_quota_keeps_newest_per_day() -> None:
    es = [_entry(i, i // 2, "full", None, "good", False) for i in range(10)]  # two a day for 5 days
    p = plan("p", es, Retention(daily=2, weekly=0, monthly=0, yearly=0))
    assert sorted(c.backup_id for c in p.keeps) == ["b007", "b009"]
    assert all(c.reason == "outside retention" for c in p.deletes)
