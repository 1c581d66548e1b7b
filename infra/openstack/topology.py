"""What the OpenStack program needs to know about a region, derived once from the model.

Plain Python over the validated `Region`, with no Pulumi import: which sites the program
builds, which cloud side each belongs to, which hosts must be kept apart (HA pairs), which
ingress flows each service group allows, and how much compute each side asks for. The
components and the policy checks both read these facts, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Literal

from inventories.checks import parse_source
from inventories.model import DB_KINDS, Region
from inventories.schema import Collector, Nginx, ObjectStorage, Retention, Site

Side = Literal["private", "public"]
SIDES: tuple[Side, ...] = ("private", "public")
INTERNET = IPv4Network("0.0.0.0/0")
# Ports no level-3 system may expose to the internet whatever the model says: databases and
# remote administration (MySQL, Oracle, PostgreSQL, SQL Server, MongoDB, Redis, SSH, RDP).
WELL_KNOWN_SENSITIVE = frozenset({3306, 1521, 5432, 1433, 27017, 6379, 22, 3389})
ZABBIX_AGENT_PORT = 10050


def side_of(site: Site) -> Side:
    """Public-cloud sites form the public side; city/provincial DCs and counties the private one."""
    return "public" if site.kind == "public_cloud" else "private"


def openstack_sites(region: Region) -> dict[str, Site]:
    return {name: site for name, site in region.sites.items() if site.provider == "openstack"}


def sides_used(region: Region) -> list[Side]:
    used = {side_of(site) for site in openstack_sites(region).values()}
    return [s for s in SIDES if s in used]


def host_side(region: Region, host: str) -> Side | None:
    ref = region.hosts.get(host)
    if ref is None or ref.site.provider != "openstack":
        return None
    return side_of(ref.site)


def service_protocol(region: Region, service: str) -> Literal["tcp", "udp"]:
    """Collectors talk WireGuard (UDP); every other service in the model is TCP."""
    return "udp" if isinstance(region.services[service], Collector) else "tcp"


@dataclass(frozen=True)
class HaSet:
    """Hosts of one service on one cloud side that must never share a hypervisor."""

    service: str
    side: Side
    hosts: tuple[str, ...]


def ha_sets(region: Region) -> list[HaSet]:
    """Every service with two or more hosts on the same OpenStack side is an HA set.

    MySQL primary and replicas count together when they are on the same side (a replica in
    another cloud is already apart); nginx, canary and oracle hosts likewise.
    """
    out: list[HaSet] = []
    for name, svc in region.services.items():
        if svc.kind not in ("mysql", "oracle", "nginx", "canary"):
            continue
        by_side: dict[Side, list[str]] = {}
        for host in region.service_hosts(name):
            side = host_side(region, host)
            if side is not None:
                by_side.setdefault(side, []).append(host)
        for side, hosts in by_side.items():
            if len(hosts) >= 2:
                out.append(HaSet(name, side, tuple(hosts)))
    return out


@dataclass(frozen=True)
class AntiAffinityGroup:
    """One Nova server group: the union of overlapping HA sets on a side.

    Nova lets an instance join one server group only, so HA sets sharing a host (nginx and
    the app on the same pair) merge; anti-affinity over the union still separates each pair.
    """

    name: str
    side: Side
    hosts: tuple[str, ...]
    services: tuple[str, ...]


def anti_affinity_groups(region: Region) -> list[AntiAffinityGroup]:
    groups: list[tuple[Side, set[str], list[str]]] = []
    for ha in ha_sets(region):
        merged_hosts, merged_services = set(ha.hosts), [ha.service]
        keep = []
        for side, hosts, services in groups:
            if side == ha.side and hosts & merged_hosts:
                merged_hosts |= hosts
                merged_services = services + merged_services
            else:
                keep.append((side, hosts, services))
        groups = [*keep, (ha.side, merged_hosts, merged_services)]
    order = {h: i for i, h in enumerate(region.hosts)}
    out = []
    for side, hosts, services in groups:
        ordered = tuple(sorted(hosts, key=order.__getitem__))
        out.append(AntiAffinityGroup(f"{region.name}-{'-'.join(services)}", side, ordered, tuple(services)))
    return sorted(out, key=lambda g: (g.side, g.name))


@dataclass(frozen=True)
class IngressRule:
    """One allowed flow on one port from one network: one security-group rule."""

    flow: str
    service: str
    protocol: Literal["tcp", "udp"]
    port: int
    cidr: IPv4Network


def ingress_rules(region: Region, service: str) -> list[IngressRule]:
    """The model's rules to `service`, expanded to one rule per source network and port."""
    out: list[IngressRule] = []
    proto = service_protocol(region, service)
    for flow, rule in region.spec.rules.items():
        if rule.to != service:
            continue
        nets = parse_source(region, rule.source) or []
        for port in rule.ports or region.service_ports(service):
            out.extend(IngressRule(flow, service, proto, port, net) for net in nets)
    return out


def admin_networks(region: Region) -> list[IPv4Network]:
    nets: list[IPv4Network] = []
    for source in region.spec.region.admin_sources:
        for net in parse_source(region, source) or []:
            if net not in nets:
                nets.append(net)
    return nets


def sensitive_ports(region: Region) -> frozenset[int]:
    """Ports that must never be open to 0.0.0.0/0: the model's DB and admin ports, and the usual ones."""
    ports = set(WELL_KNOWN_SENSITIVE) | set(region.spec.region.admin_ports)
    for name, svc in region.services.items():
        if svc.kind in DB_KINDS:
            ports.update(region.service_ports(name))
    return frozenset(ports)


def region_networks(region: Region) -> list[IPv4Network]:
    return [net.cidr for _, _, net in region.networks().values()]


def zabbix_sources(region: Region) -> list[IPv4Network]:
    """Addresses of Zabbix servers, which poll every host's agent (passive checks)."""
    out = []
    for name, svc in region.services.items():
        if svc.kind == "zabbix":
            for host in region.service_hosts(name):
                for addr in region.hosts[host].spec.addresses.values():
                    out.append(IPv4Network(f"{addr}/32"))
    return out


def nginx_services(region: Region, site: str) -> dict[str, Nginx]:
    """Nginx services with a VIP whose hosts live in `site`: each gets an Octavia load balancer."""
    out = {}
    for name, svc in region.services.items():
        if isinstance(svc, Nginx) and svc.vip is not None and svc.hosts \
                and all(region.hosts[h].site_name == site for h in svc.hosts):
            out[name] = svc
    return out


def object_stores(region: Region, site: str) -> dict[str, ObjectStorage]:
    return {n: s for n, s in region.services.items() if isinstance(s, ObjectStorage) and s.site == site}


def retention_days(retention: Retention) -> int:
    """How long the oldest kept copy lives: the horizon a bucket's lifecycle must not cut short."""
    horizons = [retention.daily, retention.weekly * 7, retention.monthly * 31, retention.yearly * 366]
    return max(horizons)


def bucket_retention(region: Region, bucket: str) -> Retention | None:
    """The longest retention of the backup policies that write to `bucket` offsite, if any."""
    best: Retention | None = None
    for pol in region.backup_policies.values():
        if pol.offsite_target and pol.offsite_target.bucket == bucket and (
                best is None or retention_days(pol.retention) > retention_days(best)):
            best = pol.retention
    return best


@dataclass(frozen=True)
class Demand:
    """Compute a side asks of its project's quota."""

    instances: int = 0
    vcpu: int = 0
    ram_mb: int = 0
    volumes: int = 0
    volume_gb: int = 0
    server_groups: int = 0
    unsized: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {"instances": self.instances, "vcpu": self.vcpu, "ram_gb": self.ram_mb // 1024,
                "volumes": self.volumes, "volume_gb": self.volume_gb,
                "server_groups": self.server_groups, "flavor_only_hosts": list(self.unsized)}


def demand(region: Region, side: Side) -> Demand:
    """Sized hosts count directly; hosts given only a flavor are listed for a flavor lookup."""
    instances = vcpu = ram = volumes = gb = 0
    unsized = []
    for ref in region.hosts.values():
        if ref.site.provider != "openstack" or side_of(ref.site) != side:
            continue
        instances += 1
        if ref.spec.size:
            vcpu += ref.spec.size.vcpu
            ram += ref.spec.size.ram_gb * 1024
            volumes += len(ref.spec.size.disks_gb)
            gb += sum(ref.spec.size.disks_gb)
        else:
            unsized.append(ref.name)
    groups = sum(1 for g in anti_affinity_groups(region) if g.side == side)
    return Demand(instances, vcpu, ram, volumes, gb, groups, tuple(unsized))
