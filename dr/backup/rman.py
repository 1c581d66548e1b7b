"""Oracle RMAN scripts from the model: level 0, level 1 and archivelog backups per policy.

Oracle cannot run on these machines, so the scripts are rendered from the oracle role's own
templates (`playbooks/roles/oracle/templates/rman/`, one source for the playbook and for this)
and unit-tested; the role installs them with their schedule where Oracle exists. RMAN writes
backup pieces to the policy's local target; the same pipeline then seals and copies them offsite.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from inventories.errors import HcopsError
from inventories.model import Region
from inventories.schema import Oracle

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "playbooks" / "roles" / "oracle" / "templates" / "rman"
SCRIPTS = ("level0", "level1", "archivelog")


def rman_vars(region: Region, policy: str, channels: int = 2) -> dict[str, object]:
    pol = region.backup_policies.get(policy)
    if pol is None:
        raise HcopsError(f"region {region.name} has no backup policy {policy!r}", "see the region's backup_policies")
    svc = region.services.get(pol.service)
    if not isinstance(svc, Oracle):
        raise HcopsError(f"policy {policy} backs up {pol.service}, which is not an Oracle service",
                         "RMAN scripts are for Oracle policies only")
    r = pol.retention
    window = max(1, r.daily, r.weekly * 7, r.monthly * 31 if r.monthly else 0)
    return {"rman_sid": svc.sid, "rman_policy": policy, "rman_dest": f"{pol.local_target.path}/rman",
            "rman_recovery_window_days": window, "rman_channels": channels,
            "rman_tag": policy.upper().replace("-", "_")[:20], "rman_archivelog_keep_days": max(1, r.daily)}


def render(region: Region, policy: str, channels: int = 2) -> dict[str, str]:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)  # noqa: S701 (RMAN, not HTML)
    values = rman_vars(region, policy, channels)
    return {name: env.get_template(f"{name}.rman.j2").render(**values) for name in SCRIPTS}
