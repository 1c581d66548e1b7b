"""How fresh each policy's last verified backup is: what county checks, `backup list -o json`
and the backup host's Zabbix item read.

A backup counts as verified where its checksums were confirmed by the store holding it (local,
offsite) and no later restore check failed there; `last_verified_at` is the newest such backup
of the policy, `verified_where` the places that confirmed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from dr.backup.catalog import Catalog, catalog_path
from inventories.freshness import STATUS_DIR, freshness_checks, schedule_interval_s
from inventories.model import Region

__all__ = ["STATUS_DIR", "PolicyStatus", "freshness_checks", "policy_status", "schedule_interval_s", "statuses_from"]


@dataclass(frozen=True)
class PolicyStatus:
    policy: str
    last_verified_at: datetime | None  # UTC
    verified_where: tuple[str, ...]  # e.g. ("local", "offsite")
    age_s: float | None


def _places_ok(places: dict[str, str], verified: list[tuple[str, str, bool, str]]) -> dict[str, str]:
    ok = dict(places)
    for place, at, good, _d in verified:
        if not good and place in ok and at >= ok[place]:
            ok.pop(place)
    return ok


def statuses_from(catalog: Catalog, policies: list[str], now: datetime | None = None) -> list[PolicyStatus]:
    now = now or datetime.now(UTC)
    out = []
    for policy in policies:
        best: tuple[datetime, tuple[str, ...]] | None = None
        for e in catalog.entries(policy):
            if e.state != "good":
                continue
            places = _places_ok(e.places, e.verified)
            if not places:
                continue
            at = datetime.fromisoformat(e.finished_at or e.started_at)
            if best is None or at > best[0]:
                best = (at, tuple(sorted(places)))
        if best is None:
            out.append(PolicyStatus(policy, None, (), None))
        else:
            out.append(PolicyStatus(policy, best[0].astimezone(UTC), best[1], (now - best[0]).total_seconds()))
    return out


def policy_status(region: Region) -> list[PolicyStatus]:
    policies = sorted(region.backup_policies)
    if not catalog_path(region.name).exists():
        return [PolicyStatus(p, None, (), None) for p in policies]
    cat = Catalog.for_region(region.name)
    try:
        return statuses_from(cat, policies)
    finally:
        cat.close()
