"""A county's acceptance checklist: one item per thing the city bureau signs off, each with an ID
that stays the same while the model keeps the subject (a host, a collector, a backup policy).

IDs are `<KIND>-<subject>` (`PORT-db1`, `TUN-frontline`, `BAK-appdb-nightly`): derived from
names, never from positions, so adding a host does not renumber the others and a board can
compare results across runs and model revisions.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.openstack.topology import ZABBIX_AGENT_PORT
from inventories.errors import HcopsError
from inventories.model import Region
from inventories.schema import Collector, Zabbix

KINDS = {
    "HW": "hardware as specified",
    "PORT": "only declared ports open",
    "TIME": "time in sync",
    "AGENT": "monitoring agent running",
    "ZBX": "registered and available in Zabbix",
    "BASE": "level-3 baseline controls in place",
    "TUN": "cloud reachable through the tunnel, and only through it",
    "BAK": "backup job present, last backup verified",
}


@dataclass(frozen=True)
class CheckItem:
    id: str
    kind: str
    title: str
    subject: str  # host, collector service or backup policy
    host: str  # the host the check runs on
    expect: str  # what passing means, in the model's terms

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "kind": self.kind, "title": self.title, "subject": self.subject,
                "host": self.host, "expect": self.expect}


def require_county(region: Region, county: str) -> list[str]:
    sites = region.county_sites(county)
    if not sites:
        known = ", ".join(region.counties) or "(none: no site of this region names a county)"
        raise HcopsError(f"region {region.name!r} has no county {county!r}",
                         f"use one of: {known}")
    return sites


def county_hosts(region: Region, county: str) -> list[str]:
    sites = set(require_county(region, county))
    return [h for h, ref in region.hosts.items() if ref.site_name in sites]


def county_collectors(region: Region, county: str) -> list[tuple[str, Collector]]:
    hosts = set(county_hosts(region, county))
    return [(n, s) for n, s in region.services.items() if isinstance(s, Collector) and s.host in hosts]


def county_backup_policies(region: Region, county: str) -> list[str]:
    """Policies that protect a service running in the county, or that write to a county host."""
    hosts = set(county_hosts(region, county))
    out = []
    for name, pol in region.backup_policies.items():
        svc_hosts = set(region.service_hosts(pol.service)) if pol.service in region.services else set()
        if svc_hosts & hosts or pol.local_target.host in hosts:
            out.append(name)
    return out


def has_zabbix(region: Region) -> bool:
    return any(isinstance(s, Zabbix) for s in region.services.values())


def checklist(region: Region, county: str) -> list[CheckItem]:
    items: list[CheckItem] = []
    zabbix = has_zabbix(region)
    for host in county_hosts(region, county):
        spec = region.hosts[host].spec
        if spec.size:
            items.append(CheckItem(f"HW-{host}", "HW", f"{host}: {KINDS['HW']}", host, host,
                                   f"at least {spec.size.vcpu} CPU(s) and {spec.size.ram_gb} GB RAM"))
        items.append(CheckItem(f"PORT-{host}", "PORT", f"{host}: {KINDS['PORT']}", host, host,
                               "listeners only on the ports the model declares for its services, "
                               "the agent and administration"))
        items.append(CheckItem(f"TIME-{host}", "TIME", f"{host}: {KINDS['TIME']}", host, host,
                               "chrony running with the site's time server; clock within 1 s of the "
                               "operator's"))
        items.append(CheckItem(f"AGENT-{host}", "AGENT", f"{host}: {KINDS['AGENT']}", host, host,
                               f"zabbix-agent2 active and enabled, listening on {ZABBIX_AGENT_PORT}"))
        if zabbix:
            items.append(CheckItem(f"ZBX-{host}", "ZBX", f"{host}: {KINDS['ZBX']}", host, host,
                                   "host present in the region's Zabbix with its agent interface available"))
        items.append(CheckItem(f"BASE-{host}", "BASE", f"{host}: {KINDS['BASE']}", host, host,
                               "key-only SSH, password policy, lockout, idle timeout, audit rules, "
                               "no unwanted packages, sudo logging"))
    for name, svc in county_collectors(region, county):
        items.append(CheckItem(f"TUN-{name}", "TUN", f"{name}: {KINDS['TUN']}", name, svc.host,
                               f"{svc.host} reaches {svc.peer} inside the tunnel; in clear over "
                               f"{svc.link} the far site is refused"))
    for pol in county_backup_policies(region, county):
        target = region.backup_policies[pol].local_target.host
        items.append(CheckItem(f"BAK-{pol}", "BAK", f"{pol}: {KINDS['BAK']}", pol, target,
                               f"timer hcops-backup@{pol}.timer enabled on {target}; the last backup "
                               "verified by the backup engine"))
    return items
