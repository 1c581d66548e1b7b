"""How fresh a policy's backups must be, from the model: the contract between the backup engine,
which publishes each policy's last verified time on the backup host, and monitoring, whose
Zabbix item reads it there and whose trigger fires when it is too old."""

from __future__ import annotations

from dataclasses import dataclass

from inventories.model import Region

# Where the backup host publishes each policy's last verified time (Unix seconds, 0 for never)
# for its Zabbix agent; the backup_store role's `backup_store_status_dir` default says the same.
STATUS_DIR = "/var/lib/hcops-backup"


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
