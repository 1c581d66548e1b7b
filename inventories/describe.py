"""A region as plain data (for `inventory show --output json`) and as a diagram (Mermaid, DOT)."""

from __future__ import annotations

from typing import Any

from inventories.checks import parse_source
from inventories.model import Region
from inventories.schema import ObjectStorage


def summary(region: Region) -> dict[str, Any]:
    """Everything a reader wants from a region, derived facts included."""
    sites: dict[str, Any] = {}
    for site_name, site in region.sites.items():
        sites[site_name] = {
            "kind": site.kind,
            "provider": site.provider,
            "county": site.county,
            "networks": {n: {"cidr": str(net.cidr), "purpose": net.purpose, "vlan": net.vlan,
                             "gateway": str(region.gateway(net))} for n, net in site.networks.items()},
            "hosts": {
                h: {
                    "roles": region.host_roles(h),
                    "services": region.host_services(h),
                    "addresses": {n: str(a) for n, a in host.addresses.items()},
                    "size": host.size.model_dump() if host.size else None,
                    "flavor": host.flavor,
                    "os": host.os,
                }
                for h, host in site.hosts.items()
            },
            "totals": region.totals(site_name),
        }
    services: dict[str, Any] = {}
    for name, svc in region.services.items():
        entry: dict[str, Any] = {"kind": svc.kind, "ports": region.service_ports(name),
                                 "hosts": {h: str(region.service_address(name, h))
                                           for h in region.service_hosts(name)},
                                 "spec": svc.model_dump(mode="json", by_alias=True),
                                 "allowed_from": _allowed_from(region, name)}
        if isinstance(svc, ObjectStorage):
            entry["buckets"] = {b: spec.model_dump() for b, spec in svc.buckets.items()}
        services[name] = entry
    return {
        "region": region.name,
        "kind": region.spec.region.kind,
        "description": region.spec.region.description,
        "counties": region.counties,
        "admin": {"sources": sorted({str(n) for src in region.spec.region.admin_sources
                                     for n in parse_source(region, src) or []}),
                  "ports": region.spec.region.admin_ports},
        "totals": region.totals(),
        "sites": sites,
        "links": {n: link.model_dump() for n, link in region.links.items()},
        "services": services,
        "mysql_server_ids": region.mysql_server_ids,
        "rules": {n: r.model_dump(by_alias=True) for n, r in region.spec.rules.items()},
        "backup_policies": {n: p.model_dump() for n, p in region.backup_policies.items()},
        "slos": {n: {**s.model_dump(), "allowed_downtime_minutes": region.allowed_downtime_minutes(n)}
                 for n, s in region.slos.items()},
    }


def _allowed_from(region: Region, service: str) -> list[str]:
    """CIDRs the rules let reach a service (firewalls and database grants read this)."""
    nets = {str(net) for rule in region.spec.rules.values() if rule.to == service
            for net in parse_source(region, rule.source) or []}
    return sorted(nets)


def _ident(name: str) -> str:
    return name.replace("-", "_").replace(".", "__")


def mermaid(region: Region) -> str:
    lines = ["flowchart LR"]
    for site_name, site in region.sites.items():
        lines.append(f'  subgraph {_ident(site_name)}["{site_name} ({site.kind}, {site.provider})"]')
        for net_name, net in site.networks.items():
            nid = _ident(f"{site_name}.{net_name}")
            lines.append(f'    {nid}(["{net_name} {net.cidr}"])')
        for host_name, host in site.hosts.items():
            roles = ", ".join(region.host_roles(host_name))
            lines.append(f'    {_ident(host_name)}["{host_name}<br/>{roles}"]')
            for net_name, addr in host.addresses.items():
                lines.append(f"    {_ident(host_name)} ---|{addr}| {_ident(f'{site_name}.{net_name}')}")
        lines.append("  end")
    for name, link in region.links.items():
        a, b = link.between
        lines.append(f"  {_ident(a)} <==>|{name}: {link.bandwidth_mbit} Mbit/s, {link.encryption}| {_ident(b)}")
    return "\n".join(lines) + "\n"


def dot(region: Region) -> str:
    lines = ["graph region {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
    for site_name, site in region.sites.items():
        lines.append(f'  subgraph cluster_{_ident(site_name)} {{')
        lines.append(f'    label="{site_name} ({site.kind}, {site.provider})";')
        lines.append(f'    {_ident(site_name)} [shape=point, style=invis];')
        for net_name, net in site.networks.items():
            lines.append(f'    {_ident(f"{site_name}.{net_name}")} [shape=ellipse, label="{net_name}\\n{net.cidr}"];')
        for host_name, host in site.hosts.items():
            roles = ", ".join(region.host_roles(host_name))
            lines.append(f'    {_ident(host_name)} [label="{host_name}\\n{roles}"];')
            for net_name, addr in host.addresses.items():
                lines.append(f'    {_ident(host_name)} -- {_ident(f"{site_name}.{net_name}")} [label="{addr}"];')
        lines.append("  }")
    for name, link in region.links.items():
        a, b = link.between
        lines.append(f'  {_ident(a)} -- {_ident(b)} [style=bold, label="{name}\\n{link.bandwidth_mbit} '
                     f'Mbit/s {link.encryption}", ltail=cluster_{_ident(a)}, lhead=cluster_{_ident(b)}];')
    lines.append("}")
    return "\n".join(lines) + "\n"
