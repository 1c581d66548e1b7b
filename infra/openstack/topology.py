"""What the OpenStack program needs to know about a region, derived once from the model.

Plain Python over the validated `Region`, with no Pulumi import: which sites the program
builds, which cloud side each belongs to, which hosts must be kept apart (HA pairs), which
ingress flows each service group allows, and how much compute each side asks for. The
components and the policy checks both read these facts, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network, collapse_addresses
from typing import Literal

from inventories.checks import parse_source
from inventories.model import PATIENT_DATA_KINDS, ZABBIX_PROXY_PORT, Region
from inventories.schema import Collector, Nginx, ObjectStorage, Retention, Site

Side = Literal["private", "public"]
SIDES: tuple[Side, ...] = ("private", "public")
INTERNET = IPv4Network("0.0.0.0/0")
# Ports no level-3 system may expose to the internet whatever the model says: databases and
# remote administration (MySQL, Oracle, PostgreSQL, SQL Server, MongoDB, Redis, SSH, RDP).
WELL_KNOWN_SENSITIVE = frozenset({3306, 1521, 5432, 1433, 27017, 6379, 22, 3389})
ZABBIX_AGENT_PORT = 10050
PROXY_GROUP = "zabbix-proxy"
"""Security group of a remote site's Zabbix proxy host (its agents' active checks)."""


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
        # Named after the alphabetically first member, not the service list: a service added to
        # the pair later must not rename (= replace) the group and with it every member server.
        out.append(AntiAffinityGroup(f"{region.name}-ha-{min(hosts)}", side, ordered, tuple(services)))
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
    """Ports that must never be open to 0.0.0.0/0: the model's DB, PACS and admin ports, and the usual ones."""
    ports = set(WELL_KNOWN_SENSITIVE) | set(region.spec.region.admin_ports)
    for name, svc in region.services.items():
        if svc.kind in PATIENT_DATA_KINDS:
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
    """Nginx services whose VIP Octavia holds and whose hosts live in `site`: each gets an Octavia
    load balancer. (A service whose VIP keepalived holds gets address pairs and a VRRP rule.)"""
    out = {}
    for name, svc in region.services.items():
        if isinstance(svc, Nginx) and svc.vip is not None and svc.hosts \
                and region.vip_mechanism(name) == "octavia" \
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
    """What a side asks of its project's quotas (Nova, Neutron, Cinder)."""

    instances: int = 0
    vcpu: int = 0
    ram_mb: int = 0
    volumes: int = 0
    volume_gb: int = 0
    server_groups: int = 0
    unsized: tuple[str, ...] = ()
    routers: int = 0
    networks: int = 0
    subnets: int = 0
    ports: int = 0
    security_groups: int = 0
    security_group_rules: int = 0
    floating_ips: int = 0

    def with_compute(self, vcpu: int, ram_mb: int) -> Demand:
        return replace(self, vcpu=vcpu, ram_mb=ram_mb, unsized=())

    def as_dict(self) -> dict[str, object]:
        return {"instances": self.instances, "vcpu": self.vcpu, "ram_gb": self.ram_mb // 1024,
                "volumes": self.volumes, "volume_gb": self.volume_gb,
                "server_groups": self.server_groups, "flavor_only_hosts": list(self.unsized),
                "routers": self.routers, "networks": self.networks, "subnets": self.subnets,
                "ports": self.ports, "security_groups": self.security_groups,
                "security_group_rules": self.security_group_rules, "floating_ips": self.floating_ips}


@dataclass(frozen=True)
class RuleSpec:
    """One security-group rule, as plain data: what `security.py` creates and the quota counts."""

    key: str
    direction: Literal["ingress", "egress"]
    protocol: Literal["tcp", "udp", "vrrp"] | None
    port: int | None
    cidr: IPv4Network
    description: str


def keepalived_on_openstack(region: Region, service: str) -> bool:
    svc = region.services[service]
    return (isinstance(svc, Nginx) and region.vip_mechanism(service) == "keepalived"
            and bool(svc.hosts) and all(region.hosts[h].site.provider == "openstack" for h in svc.hosts))


def vrrp_address_pairs(region: Region, host: str) -> dict[str, list[str]]:
    """Network -> VIPs a host's port must be allowed to answer for: keepalived moves the VIP
    between ports, and Neutron's port security drops traffic from an address not on the port."""
    out: dict[str, list[str]] = {}
    for name in region.host_services(host):
        svc = region.services[name]
        if isinstance(svc, Nginx) and svc.vip is not None and keepalived_on_openstack(region, name):
            net = region.service_network(name, host)
            out.setdefault(net, []).append(f"{svc.vip}/32")
    return out


def vrrp_rules(region: Region, service: str) -> list[RuleSpec]:
    """keepalived's VRRP adverts (IP protocol 112) between the pair, on OpenStack only."""
    if not keepalived_on_openstack(region, service):
        return []
    return [RuleSpec(f"{service}-vrrp-{cidr_label(IPv4Network(f'{addr}/32'))}", "ingress", "vrrp", None,
                     IPv4Network(f"{addr}/32"), f"VRRP from {host} (keepalived holds the VIP)")
            for host in region.service_hosts(service)
            for addr in [region.service_address(service, host)]]


def cidr_label(net: IPv4Network) -> str:
    return "any" if net.prefixlen == 0 else str(net).replace("/", "_").replace(".", "-")


def octavia_rules(region: Region, service: str) -> list[IngressRule]:
    """Octavia's health checks and proxied requests reach the members from addresses Octavia
    takes in the VIP subnet (amphora or OVN ports): allow the member ports from that subnet, or
    every member of a private-VIP pool stays DOWN."""
    svc = region.services[service]
    if not isinstance(svc, Nginx) or svc.vip is None or not svc.hosts \
            or region.vip_mechanism(service) != "octavia":
        return []
    site = region.hosts[svc.hosts[0]].site
    if site.provider != "openstack":
        return []
    nets = [n.cidr for n in site.networks.values() if svc.vip in n.cidr]
    return [IngressRule("octavia", service, "tcp", lst.port, net) for lst in svc.listeners for net in nets]


def transit_rules(region: Region, site: str, link_gateways: dict[str, str] | None = None) -> list[RuleSpec]:
    """A host that forwards between sites receives packets addressed to other hosts: from its own
    site's networks (going out) and from the remote networks it routes (coming in). Only such
    hosts carry the `transit` group; what each destination accepts is still its own groups'."""
    routes, _ = site_routes(region, site, link_gateways)
    if not transit_hosts(region, routes):
        return []
    own = [n.cidr for n in region.sites[site].networks.values()]
    nets = collapse_addresses([*(r.destination for r in routes), *own])
    return [RuleSpec(f"transit-{cidr_label(net)}", "ingress", None, None, net,
                     f"traffic forwarded between sites, from {net}") for net in nets]


def site_rules(region: Region, site: str, link_gateways: dict[str, str] | None = None) -> dict[str, list[RuleSpec]]:
    """Per service with hosts in `site`: its group's rules (model flows, then Octavia's and VRRP);
    `transit` for the hosts that forward between sites."""
    hosts = set(region.sites[site].hosts)
    out: dict[str, list[RuleSpec]] = {}
    transit = transit_rules(region, site, link_gateways)
    if transit:
        out["transit"] = transit
    for svc in region.services:
        if not hosts & set(region.service_hosts(svc)):
            continue
        out[svc] = [RuleSpec(f"{svc}-{r.flow}-{r.port}-{cidr_label(r.cidr)}", "ingress", r.protocol, r.port, r.cidr,
                             f"flow {r.flow}: {r.cidr} -> {svc}:{r.port}/{r.protocol}")
                    for r in [*ingress_rules(region, svc), *octavia_rules(region, svc)]]
        out[svc] += vrrp_rules(region, svc)
    proxy = region.zabbix_proxies.get(site)
    if proxy is not None:  # the site's agents send active checks to the proxy host only
        out[PROXY_GROUP] = [RuleSpec(f"{PROXY_GROUP}-{ZABBIX_PROXY_PORT}-{cidr_label(net.cidr)}", "ingress", "tcp",
                                     ZABBIX_PROXY_PORT, net.cidr, f"agents of {site} -> its Zabbix proxy")
                            for net in region.sites[site].networks.values()]
    return out


EGRESS_TO_INTERNET = (80, 443)  # package mirrors and the S3 endpoint
DNS_PORT, NTP_PORT = 53, 123


def baseline_rules(region: Region, dns: Sequence[IPv4Address] = (),
                   ntp: Sequence[IPv4Address] = ()) -> dict[str, list[RuleSpec]]:
    """The `admin` and `baseline` groups every host of a side carries.

    Egress: the region's own networks, HTTP(S) out, and DNS/NTP to the cloud's resolvers and
    time servers where they sit outside the region (inside, the region egress covers them)."""
    admin = [RuleSpec(f"admin-{port}-{cidr_label(net)}", "ingress", "tcp", port, net,
                      f"admin access {net} -> {port}/tcp")
             for net in admin_networks(region) for port in region.spec.region.admin_ports]
    base = [RuleSpec(f"baseline-zabbix-agent-{cidr_label(net)}", "ingress", "tcp", ZABBIX_AGENT_PORT, net,
                     "Zabbix server polls the agent") for net in zabbix_sources(region)]
    own = list(collapse_addresses(region_networks(region)))
    base += [RuleSpec(f"baseline-egress-region-{cidr_label(net)}", "egress", None, None, net,
                      "egress to the region's own networks") for net in own]
    base += [RuleSpec(f"baseline-egress-internet-{port}", "egress", "tcp", port, INTERNET,
                      "package mirrors and object storage over HTTP(S)") for port in EGRESS_TO_INTERNET]
    outside = [(a, what) for what, addrs in (("dns", dns), ("ntp", ntp)) for a in addrs
               if not any(a in net for net in own)]
    for addr, what in outside:
        net = IPv4Network(f"{addr}/32")
        if what == "dns":
            base += [RuleSpec(f"baseline-egress-dns-{proto}-{cidr_label(net)}", "egress", proto, DNS_PORT, net,
                              f"name resolution at {addr}") for proto in ("udp", "tcp")]
        else:
            base.append(RuleSpec(f"baseline-egress-ntp-{cidr_label(net)}", "egress", "udp", NTP_PORT, net,
                                 f"time from {addr}"))
    return {"admin": admin, "baseline": base}


def demand(region: Region, side: Side, dns: Sequence[IPv4Address] = (),
           ntp: Sequence[IPv4Address] = (), link_gateways: dict[str, str] | None = None) -> Demand:
    """Everything the program creates on `side`, counted as the quotas count it.

    Sized hosts count their vCPU/RAM directly; hosts given only a flavor are listed for a flavor
    lookup. Ports: one per host address, per router interface, per DHCP agent (one a subnet)
    and per load balancer VIP."""
    instances = vcpu = ram = volumes = gb = 0
    unsized = []
    routers = networks = subnets = ports = groups_sg = rules = fips = 0
    for name, site in openstack_sites(region).items():
        if side_of(site) != side:
            continue
        new_nets = [n for n in site.networks.values() if n.existing is None]
        routers += 0 if site.existing_router else 1
        networks += len(new_nets)
        subnets += len(new_nets)
        ports += 2 * len(new_nets)
        per_site = site_rules(region, name, link_gateways)
        groups_sg += len(per_site)
        rules += sum(len(r) for r in per_site.values())
        for svc in nginx_services(region, name).values():
            ports += 1
            fips += 1 if svc.public else 0
    for ref in region.hosts.values():
        if ref.site.provider != "openstack" or side_of(ref.site) != side:
            continue
        instances += 1
        ports += len(ref.spec.addresses)
        if ref.spec.size:
            vcpu += ref.spec.size.vcpu
            ram += ref.spec.size.ram_gb * 1024
            volumes += len(ref.spec.size.disks_gb)
            gb += sum(ref.spec.size.disks_gb)
        else:
            unsized.append(ref.name)
            volumes += 1
    base = baseline_rules(region, dns, ntp)
    groups_sg += len(base)
    rules += sum(len(r) for r in base.values())
    groups = sum(1 for g in anti_affinity_groups(region) if g.side == side)
    return Demand(instances, vcpu, ram, volumes, gb, groups, tuple(unsized), routers, networks, subnets, ports,
                  groups_sg, rules, fips)


@dataclass(frozen=True)
class Route:
    """A static route on a site's router: traffic for another site goes to the link's end here."""

    site: str
    destination: IPv4Network
    next_hop: IPv4Address
    link: str


def link_attachment(region: Region, link: str, site: str,
                    link_gateways: dict[str, str] | None = None) -> IPv4Address | None:
    """Where `link` ends inside `site`: the collector (or its peer) that terminates the tunnel,
    else the site's `gateway` host, else the cloud's gateway named in the side's settings."""
    for svc in region.services.values():
        if isinstance(svc, Collector) and svc.link == link:
            for host in (svc.host, svc.peer):
                ref = region.hosts.get(host)
                if ref is not None and ref.site_name == site:
                    return ref.primary_address
    for hname, hspec in region.sites[site].hosts.items():
        if "gateway" in hspec.roles:
            return region.hosts[hname].primary_address
    configured = (link_gateways or {}).get(link)
    return IPv4Address(configured) if configured else None


def site_routes(region: Region, site: str,
                link_gateways: dict[str, str] | None = None) -> tuple[list[Route], list[str]]:
    """Routes from `site` to every site reachable over the model's links (county to county
    excepted), by the first link of the shortest path; and, for each link with no attachment
    point here, a note saying so.

    Without them each site's router sends other sites' traffic out through SNAT, so admin
    access, replication and Zabbix polling across sites fail."""
    neighbours: dict[str, list[tuple[str, str]]] = {}
    for name, link in region.links.items():
        a, b = link.between
        neighbours.setdefault(a, []).append((b, name))
        neighbours.setdefault(b, []).append((a, name))
    first: dict[str, str] = {}  # site reached -> first link out of `site`
    frontier = [(n, ln) for n, ln in neighbours.get(site, [])]
    seen = {site}
    while frontier:
        nxt: list[tuple[str, str]] = []
        for other, via in frontier:
            if other in seen:
                continue
            seen.add(other)
            first[other] = via
            nxt.extend((n, via) for n, _ in neighbours.get(other, []))
        frontier = nxt
    routes: list[Route] = []
    notes: list[str] = []
    hops: dict[str, IPv4Address | None] = {}
    leaf_kinds = ("county_hospital", "township_clinic")
    for other, via in first.items():
        if region.sites[site].kind in leaf_kinds and region.sites[other].kind in leaf_kinds:
            continue  # counties talk to the city and the cloud, not to each other
        if via not in hops:
            hops[via] = link_attachment(region, via, site, link_gateways)
            if hops[via] is None:
                notes.append(f"site {site}: link {via} has no attachment point here (no collector, no "
                             f"`gateway` host), so no routes to the sites behind it; set linkGateways.{via} "
                             "for the cloud side to the address of the cloud's VPN/line gateway")
        hop = hops[via]
        if hop is None:
            continue
        routes.extend(Route(site, net.cidr, hop, via) for net in region.sites[other].networks.values())
    merged: list[Route] = []
    by_hop: dict[IPv4Address, list[Route]] = {}
    for r in routes:
        by_hop.setdefault(r.next_hop, []).append(r)
    for hop, rs in by_hop.items():  # one hop carries several links: collapse across them
        links = sorted({r.link for r in rs})
        merged.extend(Route(site, net, hop, ",".join(links) if len(links) < 3 else f"{links[0]} (+{len(links) - 1})")
                      for net in collapse_addresses(r.destination for r in rs))
    return sorted(merged, key=lambda r: (r.destination, r.next_hop)), notes


def transit_hosts(region: Region, routes: list[Route]) -> dict[str, list[IPv4Network]]:
    """Hosts that forward between sites (a route's next hop) -> the remote networks they carry,
    for their ports' allowed address pairs (Neutron drops forwarded packets otherwise)."""
    by_addr = {ref.primary_address: name for name, ref in region.hosts.items()}
    out: dict[str, list[IPv4Network]] = {}
    for r in routes:
        host = by_addr.get(r.next_hop)
        if host is not None and r.destination not in out.setdefault(host, []):
            out[host].append(r.destination)
    return out
