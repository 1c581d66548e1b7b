"""One county's plan as plain data: what the templates (HTML, Markdown, PDF) lay out.

Everything is derived from the validated model; nothing is typed here that the model already
says. Lists keep the model's order, so the same model gives the same document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from infra.openstack.topology import ZABBIX_AGENT_PORT
from infra.plans.checklist import (
    CheckItem,
    checklist,
    county_collectors,
    county_hosts,
    require_county,
)
from infra.plans.revision import ModelRevision
from infra.plans.topology import county_svg
from inventories.checks import parse_source
from inventories.model import ZABBIX_PROXY_PORT, Region, service_ports


@dataclass(frozen=True)
class BomLine:
    line: str  # the name in the model (host or equipment)
    site: str
    model_id: str
    kind: str
    model: str
    specs: str
    quantity: int
    rack_units: int  # per unit
    power_w: int  # per unit
    unit_price: float | None
    purpose: str

    @property
    def total_price(self) -> float | None:
        return None if self.unit_price is None else self.unit_price * self.quantity


@dataclass(frozen=True)
class HostRow:
    name: str
    site: str
    roles: str
    services: str
    os: str
    size: str
    addresses: list[tuple[str, str]]  # (network, address)


@dataclass(frozen=True)
class NetworkRow:
    site: str
    name: str
    cidr: str
    purpose: str
    vlan: str
    gateway: str
    usable: str  # addresses left for hosts: after the gateway, up to the last
    assigned: list[tuple[str, str]]  # (address, host)


@dataclass(frozen=True)
class LinkRow:
    name: str
    kind: str
    ends: str
    bandwidth_mbit: int
    latency_ms: float
    encryption: str
    tunnel: str  # collector tunnel facts carried over the link, if any


@dataclass(frozen=True)
class FlowRow:
    rule: str
    source: str
    source_nets: str
    to: str
    hosts: str
    ports: str
    protocol: str
    description: str


@dataclass
class CountyPlan:
    region: str
    region_description: str
    county: str
    sites: list[str]
    site_descriptions: list[tuple[str, str]]
    revision: ModelRevision
    version: str
    currency: str
    bom: list[BomLine]
    totals: dict[str, float | int | None]
    hosts: list[HostRow]
    networks: list[NetworkRow]
    links: list[LinkRow]
    flows: list[FlowRow]
    routes: list[tuple[str, str, str]]  # (destination, via, why)
    reserved: list[tuple[str, str]]  # (range, why the county must not use it)
    steps: list[tuple[str, list[str]]]  # (heading, instructions)
    checklist: list[CheckItem]
    svg: str
    warnings: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.county.capitalize()} county: hardware and network deployment plan"


def _specs_text(specs: dict[str, object]) -> str:
    def text(v: object) -> str:
        return ("yes" if v else "no") if isinstance(v, bool) else str(v)

    return "; ".join(f"{k.replace('_', ' ')} {text(v)}" for k, v in specs.items())


def _bom(region: Region, sites: list[str]) -> list[BomLine]:
    lines: list[BomLine] = []
    for site in sites:
        for line, item in region.spec.equipment.get(site, {}).items():
            hw = region.spec.hardware[item.model]
            purpose = item.purpose
            for h in item.hosts:
                size = region.sites[site].hosts[h].size
                need = f": {size.vcpu} vCPU, {size.ram_gb} GB RAM, disks {size.disks_gb} GB" if size else ""
                purpose += f"{'; ' if purpose else ''}host {h} ({', '.join(region.host_roles(h))}){need}"
            lines.append(BomLine(line, site, item.model, hw.kind, hw.model, _specs_text(dict(hw.specs)), item.count,
                                 hw.rack_units, hw.power_w, hw.unit_price, purpose))
    return lines


def _totals(region: Region, sites: list[str], bom: list[BomLine]) -> dict[str, float | int | None]:
    load = {"rack_units": 0, "power_w": 0, "capacity_u": 0, "capacity_w": 0}
    for site in sites:
        for k, v in region.site_load(site).items():
            load[k] += v
    priced = [b.total_price for b in bom]
    return {
        "items": sum(b.quantity for b in bom),
        "lines": len(bom),
        **load,
        "price": sum(p for p in priced if p is not None) if priced and all(p is not None for p in priced) else None,
    }


def _hosts(region: Region, hosts: list[str]) -> list[HostRow]:
    rows = []
    for h in hosts:
        ref = region.hosts[h]
        size = ref.spec.size
        size_text = (f"{size.vcpu} vCPU, {size.ram_gb} GB, disks {', '.join(str(d) for d in size.disks_gb)} GB"
                     if size else f"flavor {ref.spec.flavor}")
        rows.append(HostRow(h, ref.site_name, ", ".join(region.host_roles(h)), ", ".join(region.host_services(h)),
                            ref.spec.os, size_text, [(n, str(a)) for n, a in ref.spec.addresses.items()]))
    return rows


def _networks(region: Region, sites: list[str]) -> list[NetworkRow]:
    rows = []
    for site in sites:
        for net_name, net in region.sites[site].networks.items():
            assigned = sorted(((str(ref.spec.addresses[net_name]), h) for h, ref in region.hosts.items()
                               if ref.site_name == site and net_name in ref.spec.addresses),
                              key=lambda x: IPv4Address(x[0]))
            hosts_ = list(net.cidr.hosts())
            free = f"{hosts_[1]} – {hosts_[-1]}" if len(hosts_) > 2 else "—"
            rows.append(NetworkRow(site, net_name, str(net.cidr), net.purpose, str(net.vlan or "untagged"),
                                   str(region.gateway(net)), free, assigned))
    return rows


def _links(region: Region, sites: list[str]) -> list[LinkRow]:
    rows = []
    collectors = {svc.link: (n, svc) for n, svc in region.services.items()
                  if svc.kind == "collector"}
    for name, link in region.links.items():
        if not set(link.between) & set(sites):
            continue
        tunnel = ""
        if name in collectors:
            cname, svc = collectors[name]
            assert svc.kind == "collector"
            inner = ""
            if svc.tunnel_cidr is not None:
                addrs = list(svc.tunnel_cidr.hosts())
                inner = f", inside {svc.tunnel_cidr} ({svc.peer} {addrs[0]}, {svc.host} {addrs[1]})"
            peer_addr = region.hosts[svc.peer].primary_address
            tunnel = (f"{cname}: {svc.host} ⇄ {svc.peer} ({peer_addr}) udp/{svc.port}{inner}")
        rows.append(LinkRow(name, link.kind.replace("_", " "), " ⇄ ".join(link.between), link.bandwidth_mbit,
                            link.latency_ms, link.encryption, tunnel))
    return rows


def _county_nets(region: Region, sites: list[str]) -> list[IPv4Network]:
    return [net.cidr for s in sites for net in region.sites[s].networks.values()]


def _flows(region: Region, sites: list[str], hosts: list[str]) -> list[FlowRow]:
    """Rules that start in the county or end at a county service (what its firewall must pass)."""
    own = _county_nets(region, sites)
    rows = []
    for name, rule in region.spec.rules.items():
        nets = parse_source(region, rule.source) or []
        svc = region.services.get(rule.to)
        if svc is None:
            continue
        targets = region.service_hosts(rule.to)
        from_county = any(n.overlaps(o) for n in nets for o in own if n.prefixlen > 0)
        to_county = bool(set(targets) & set(hosts))
        if not (from_county or to_county):
            continue
        ports = rule.ports or service_ports(svc)
        proto = "udp" if svc.kind == "collector" else "tcp"
        where = ", ".join(f"{h} {region.service_address(rule.to, h)}" for h in targets) or svc.kind
        rows.append(FlowRow(name, rule.source, ", ".join(str(n) for n in nets), rule.to, where,
                            ", ".join(str(p) for p in ports), proto, rule.description))
    # flows every county host needs whatever the rules say: administration and monitoring
    admin = ", ".join(sorted({str(n) for s in region.spec.region.admin_sources for n in parse_source(region, s) or []}))
    admin_ports = ", ".join(str(p) for p in region.spec.region.admin_ports)
    if admin:
        rows.append(FlowRow("(region.admin_sources)", "administration", admin, "every county host",
                            ", ".join(hosts), admin_ports, "tcp", "SSH for the operators"))
    for zname, zsvc in region.services.items():
        if zsvc.kind != "zabbix":
            continue
        server = region.service_hosts(zname)[0]
        server_addr = str(region.service_address(zname, server))
        proxies = [region.zabbix_proxies[s] for s in sites if s in region.zabbix_proxies]
        polled = [h for h in hosts if region.zabbix_proxy_of(h) is None]
        if polled:
            rows.append(FlowRow(f"({zname} passive checks)", zname, server_addr, "every county host",
                                ", ".join(polled), str(ZABBIX_AGENT_PORT), "tcp",
                                "the Zabbix server polls each agent (PSK-encrypted)"))
        for proxy in proxies:  # a remote site: its agents talk to the proxy, the proxy to the server
            site_nets = ", ".join(str(n.cidr) for n in region.sites[proxy.site].networks.values())
            rows.append(FlowRow(f"({proxy.name} agents)", f"site {proxy.site}", site_nets, "Zabbix proxy",
                                f"{proxy.host} {proxy.address}", str(ZABBIX_PROXY_PORT), "tcp",
                                "the site's agents send active checks to their proxy (PSK); it polls them on "
                                f"{ZABBIX_AGENT_PORT} inside the site"))
            rows.append(FlowRow(f"({proxy.name} to server)", f"{proxy.host}", str(proxy.address), zname,
                                f"{server} {server_addr}", str(zsvc.port), "tcp",
                                f"the proxy sends what it collected (PSK); it keeps {proxy.spec.offline_buffer_h} h "
                                "while the line is down"))
    return rows


def _routes(region: Region, sites: list[str]) -> list[tuple[str, str, str]]:
    routes = []
    for name, svc in county_collectors(region, region.sites[sites[0]].county or ""):
        link = region.links[svc.link]
        far = next(s for s in link.between if s not in sites)
        for net in region.sites[far].networks.values():
            via = f"tunnel on {svc.host}" if svc.tunnel_cidr else f"{svc.host} ({link.encryption} over {svc.link})"
            routes.append((str(net.cidr), via, f"site {far}, over {svc.link} ({name})"))
    for site in sites:
        for net_name, net in region.sites[site].networks.items():
            routes.append(("0.0.0.0/0", str(region.gateway(net)), f"default route of {site}.{net_name} "
                           "(the core switch; the firewall decides what leaves)"))
    return routes


def _reserved(region: Region, sites: list[str]) -> list[tuple[str, str]]:
    out = []
    for site in sites:
        for net_name, net in region.sites[site].networks.items():
            out.append((str(net.cidr.network_address), f"network address of {site}.{net_name}"))
            out.append((str(region.gateway(net)), f"gateway of {site}.{net_name} (core switch)"))
            out.append((str(net.cidr.broadcast_address), f"broadcast of {site}.{net_name}"))
    for ref, (site, _, net) in region.networks().items():
        if site not in sites:
            out.append((str(net.cidr), f"{ref}: another site of the region"))
    for name, svc in region.services.items():
        if svc.kind == "collector" and svc.tunnel_cidr is not None:
            out.append((str(svc.tunnel_cidr), f"tunnel addresses of {name}"))
        vip = getattr(svc, "vip", None)
        if vip is not None:
            out.append((str(vip), f"virtual address of {name}"))
    return out


def _steps(region: Region, county: str, *, sites: list[str], hosts: list[str], bom: list[BomLine],
           items: list[CheckItem]) -> list[tuple[str, list[str]]]:
    kinds = {b.kind for b in bom}
    steps: list[tuple[str, list[str]]] = []
    hw = [f"Check the delivery against the bill of materials: {sum(b.quantity for b in bom)} items on "
          f"{len(bom)} lines, serial numbers recorded."]
    if "rack" in kinds:
        hw.append("Install the rack; mount the UPS at the bottom, then servers, then network devices.")
    if "ups" in kinds:
        hw.append("Connect every device to the UPS-backed PDUs; test a mains cut (the load must stay up).")
    steps.append(("Receive and install the hardware", hw))
    net = []
    for row in _networks(region, sites):
        net.append(f"Core switch: VLAN {row.vlan} for {row.site}.{row.name} ({row.cidr}), gateway {row.gateway}.")
    for link in _links(region, sites):
        net.append(f"Commission {link.name} ({link.kind}, {link.bandwidth_mbit} Mbit/s, {link.encryption}) "
                   f"between {link.ends}.")
    net.append("Firewall: allow exactly the flows of the table \"Allowed flows\"; refuse everything else.")
    steps.append(("Build the network", net))
    hst = [f"Install {h} ({region.hosts[h].spec.os}) with address(es) "
           f"{', '.join(str(a) for a in region.hosts[h].spec.addresses.values())}; put the region's admin "
           "key in place." for h in hosts]
    hst.append(f"The city team provisions and deploys: `hcops deploy --region {region.name} "
               f"--limit {','.join(hosts)}` (second run must change nothing).")
    steps.append(("Install and configure the hosts", hst))
    steps.append(("Run the acceptance checks", [
        f"`hcops plan verify --region {region.name} --county {county}` runs the {len(items)} checklist "
        "items below and writes the acceptance report (HTML and JSON).",
        "Fix every failed item and run it again until all pass; the city bureau accepts from the board "
        f"(`hcops plan board --region {region.name}`).",
    ]))
    return steps


def county_plan(region: Region, county: str, revision: ModelRevision, version: str) -> CountyPlan:
    sites = require_county(region, county)
    hosts = county_hosts(region, county)
    bom = _bom(region, sites)
    items = checklist(region, county)
    warnings = []
    if not bom:
        warnings.append("the model lists no hardware for this county (`equipment.<site>` in the region files)")
    return CountyPlan(
        region=region.name, region_description=region.spec.region.description, county=county, sites=sites,
        site_descriptions=[(s, region.sites[s].description) for s in sites], revision=revision, version=version,
        currency=region.spec.region.currency, bom=bom, totals=_totals(region, sites, bom),
        hosts=_hosts(region, hosts), networks=_networks(region, sites), links=_links(region, sites),
        flows=_flows(region, sites, hosts), routes=_routes(region, sites), reserved=_reserved(region, sites),
        steps=_steps(region, county, sites=sites, hosts=hosts, bom=bom, items=items), checklist=items,
        svg=county_svg(region, county), warnings=warnings,
    )
