"""Retention from the policy (daily/weekly/monthly/yearly), as a plan of what would go.

Selection works on chains (a full and the incrementals/file backups built on it): a chain is
kept when its full is the newest of a day, ISO week, month or year that the policy keeps, or
when it is the last verified full's chain. Everything a kept backup needs (its parents, and
binlogs from the oldest kept full's GTID onwards) is kept with it. Only good backups count
toward the quotas; failed ones go. `prune --dry-run` shows the plan; `prune` carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dr.backup.catalog import Entry
from inventories.schema import Retention

CHAIN_KINDS = ("full", "files", "logical")


@dataclass(frozen=True)
class Change:
    backup_id: str
    action: str  # keep | delete
    reason: str


@dataclass
class PrunePlan:
    policy: str
    changes: list[Change] = field(default_factory=list)

    @property
    def deletes(self) -> list[Change]:
        return [c for c in self.changes if c.action == "delete"]

    @property
    def keeps(self) -> list[Change]:
        return [c for c in self.changes if c.action == "keep"]


def _root(e: Entry, by_id: dict[str, Entry]) -> Entry:
    seen = set()
    while e.parent and e.parent in by_id and e.id not in seen:
        seen.add(e.id)
        e = by_id[e.parent]
    return e


def _buckets(t: datetime) -> dict[str, str]:
    iso = t.isocalendar()
    return {"daily": t.strftime("%Y-%m-%d"), "weekly": f"{iso.year}-W{iso.week:02d}",
            "monthly": t.strftime("%Y-%m"), "yearly": t.strftime("%Y")}


def plan(policy: str, entries: list[Entry], retention: Retention) -> PrunePlan:
    by_id = {e.id: e for e in entries}
    good_roots = sorted((e for e in entries if e.state == "good" and e.parent is None and e.kind != "binlog"),
                        key=lambda e: e.started_at, reverse=True)
    keep: dict[str, str] = {}
    for period in ("daily", "weekly", "monthly", "yearly"):
        quota = getattr(retention, period)
        seen: list[str] = []
        for e in good_roots:
            b = _buckets(e.started)[period]
            if b in seen:
                continue
            if len(seen) >= quota:
                break
            seen.append(b)
            keep.setdefault(e.id, f"{period} {b}")
    verified = [e for e in good_roots if e.verified and any(ok for _p, _a, ok, _d in e.verified)]
    last_full = verified[0] if verified else (good_roots[0] if good_roots else None)
    if last_full:
        keep.setdefault(last_full.id, "last verified full" if verified else "newest good full")
    # members of kept chains stay with their root; a running backup is never touched
    for e in entries:
        if e.id in keep:
            continue
        if e.state == "running":
            keep[e.id] = "running"
        elif e.kind != "binlog" and e.parent and e.state != "failed":
            root = _root(e, by_id)
            if root.id in keep:
                keep[e.id] = f"in the chain of {root.id}"
    kept_roots = [by_id[i] for i in keep if by_id[i].parent is None and by_id[i].kind != "binlog"]
    oldest = min((e.started_at for e in kept_roots), default=None)
    for e in entries:
        if e.kind == "binlog" and e.id not in keep and e.state in ("good", "partial") and (
                oldest is None or (e.finished_at or e.started_at) >= oldest):
            keep[e.id] = "binlogs a kept full needs for point in time"
    out = PrunePlan(policy=policy)
    for e in sorted(entries, key=lambda x: x.started_at):
        if e.state == "expired":
            continue
        if e.id in keep:
            out.changes.append(Change(e.id, "keep", keep[e.id]))
        else:
            out.changes.append(Change(e.id, "delete", "failed" if e.state == "failed" else "outside retention"))
    return out
