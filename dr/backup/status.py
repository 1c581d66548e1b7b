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
from inventories.model import Region

# Where the backup host publishes each policy's last verified time for its Zabbix agent (the
# backup_store role's `backup_store_status_dir` default says the same).
STATUS_DIR = "/var/lib/hcops-backup"


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


@dataclass(frozen=True)
class FreshnessCheck:
    """What Zabbix needs to know a policy's backups are fresh (item on the backup host + trigger)."""

    policy: str
    host: str
    item_key: str
    max_age_s: int
    trigger_expression: str
    trigger_name: str


def schedule_interval_s(cron: str) -> int:
    """How often a five-field cron schedule fires, roughly (hourly, daily, weekly, monthly)."""
    _minute, hour, dom, _month, dow = cron.split()
    if dow != "*":
        return 7 * 86400
    if dom != "*":
        return 31 * 86400
    if "*" in hour:
        return 3600 if "/" not in hour else 3600 * int(hour.split("/")[1])
    return 86400 if "," not in hour else 86400 // (hour.count(",") + 1)


def freshness_checks(region: Region) -> list[FreshnessCheck]:
    """One per policy: the age of its last verified backup may reach two schedule intervals
    (one missed run) before the trigger fires. Read by monitoring's desired state."""
    out = []
    for name, pol in sorted(region.backup_policies.items()):
        host = pol.local_target.host
        key = f"vfs.file.contents[{STATUS_DIR}/{name}.last-verified]"
        max_age = 2 * schedule_interval_s(pol.schedule)
        out.append(FreshnessCheck(
            policy=name, host=host, item_key=key, max_age_s=max_age,
            trigger_expression=f"now()-last(/{host}/{key})>{max_age}",
            trigger_name=f"hcops backup {name}: last verified backup older than {max_age // 3600} h"))
    return out
