"""A region as plain data (for `inventory show --output json`) and as a diagram (Mermaid, DOT)."""

from __future__ import annotations

from typing import Any

from inventories.checks import parse_source
from inventories.model import LOG_PORT, Region
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
                                 "vip_mechanism": region.vip_mechanism(name),
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
        "automation_account": region.spec.region.automation_account,
        "admins": {n: a.model_dump() for n, a in region.spec.admins.items()},
        "log_host": region.spec.region.log_host,
        "log_port": LOG_PORT,
        "log_retention_days": region.spec.region.log_retention_days,
        "time_source": region.spec.region.time_source,
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


def graph_data(region: Region) -> dict[str, Any]:
    """The drawing as data (`inventory graph -o json`): sites, networks and hosts as nodes;
    attachments (host to network, with the address) and links (site to site) as edges."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for site_name, site in region.sites.items():
        nodes.append({"id": f"site:{site_name}", "type": "site", "name": site_name, "kind": site.kind,
                      "provider": site.provider, "county": site.county})
        for net_name, net in site.networks.items():
            nodes.append({"id": f"net:{site_name}.{net_name}", "type": "network", "name": net_name,
                          "site": site_name, "cidr": str(net.cidr), "purpose": net.purpose})
        for host_name, host in site.hosts.items():
            nodes.append({"id": f"host:{host_name}", "type": "host", "name": host_name, "site": site_name,
                          "roles": region.host_roles(host_name)})
            for net_name, addr in host.addresses.items():
                edges.append({"type": "attachment", "from": f"host:{host_name}",
                              "to": f"net:{site_name}.{net_name}", "address": str(addr)})
    for name, link in region.links.items():
        a, b = link.between
        edges.append({"type": "link", "name": name, "from": f"site:{a}", "to": f"site:{b}", "kind": link.kind,
                      "bandwidth_mbit": link.bandwidth_mbit, "encryption": link.encryption})
    return {"region": region.name, "nodes": nodes, "edges": edges}


LABELLED_LINKS = 4  # more links than this: alike spoke lines are drawn as one bundle
GRID_COLUMNS = 6  # spoke sites of a bundle are laid out in rows of this many


def _spoke_bundles(region: Region) -> dict[tuple[str, str, int, str], list[tuple[str, str]]]:
    """Sites with a single line, grouped by where the line goes and what it is.

    Key: (hub site, link kind, bandwidth, encryption); value: [(spoke site, link name)].
    """
    degree: dict[str, int] = {name: 0 for name in region.sites}
    for link in region.links.values():
        for end in link.between:
            degree[end] = degree.get(end, 0) + 1
    bundles: dict[tuple[str, str, int, str], list[tuple[str, str]]] = {}
    for name, link in region.links.items():
        a, b = link.between
        for spoke, hub in ((a, b), (b, a)):
            if degree[spoke] == 1 and degree[hub] > 1:
                key = (hub, link.kind, link.bandwidth_mbit, link.encryption)
                bundles.setdefault(key, []).append((spoke, name))
                break
    return {k: v for k, v in bundles.items() if len(v) > 1}


def _q(text: str) -> str:
    return text.replace('"', '\\"')


def _site_cluster(region: Region, site_name: str, extra_title: str, indent: str) -> tuple[list[str], str]:
    """A site's box: its title, its hosts (and networks when it has several); returns lines and an
    inner node that lines to this site can start from."""
    site = region.sites[site_name]
    sid = _ident(site_name)
    title = f"{site_name} ({site.kind.replace('_', ' ')}, {site.provider})"
    single = len(site.networks) == 1
    if single:
        net_name, net = next(iter(site.networks.items()))
        title += f"\\n{net_name} {net.cidr}"
    title += extra_title
    colour = "#e8f0fb" if site.kind == "public_cloud" else "#eef7ee" if site.kind == "county_hospital" else "#f6f1e4"
    left = _q(title).replace("\\n", "\\l") + "\\l"  # every title line left-aligned
    out = [f"{indent}subgraph cluster_{sid} {{",
           f'{indent}  label="{left}"; style="rounded,filled"; fillcolor="{colour}"; color="#888888";']
    first = ""
    if not single:
        for net_name, net in site.networks.items():
            nid = _ident(f"{site_name}.{net_name}")
            out.append(f'{indent}  {nid} [shape=ellipse, style=filled, fillcolor=white, '
                       f'label="{net_name}\\n{net.cidr}"];')
    for host_name, host in site.hosts.items():
        roles = ", ".join(region.host_roles(host_name)) or "host"
        hid = _ident(host_name)
        first = first or hid
        if single:
            addrs = ", ".join(str(a) for a in host.addresses.values())
            out.append(f'{indent}  {hid} [label="{host_name}\\n{roles}\\n{addrs}"];')
        else:
            out.append(f'{indent}  {hid} [label="{host_name}\\n{roles}"];')
            for net_name, addr in host.addresses.items():
                out.append(f'{indent}  {hid} -- {_ident(f"{site_name}.{net_name}")} [label="{addr}"];')
    if not first:  # a site with no host still needs a node for its lines
        first = f"{sid}__anchor"
        out.append(f"{indent}  {first} [shape=point, style=invis];")
    out.append(f"{indent}}}")
    return out, first


def _bottom(region: Region, site_name: str, anchor: str) -> str:
    """The node drawn lowest in a site's box (a network when hosts attach to several)."""
    site = region.sites[site_name]
    if len(site.networks) > 1:
        return _ident(f"{site_name}.{next(iter(site.networks))}")
    return anchor


def dot(region: Region) -> str:
    """A Graphviz drawing that stays readable at city scale.

    Every site is a box; lines run between box edges (`compound`, `ltail`, `lhead`). A site with
    one network names it in its title and gives each host its address; a site with several draws
    each network as an ellipse its hosts attach to. When a region has many lines, the county
    sites whose single line is alike (same far end, kind, bandwidth, encryption) are laid out in
    a grid inside one box, each naming its own line in its title, and the bundle is drawn as one
    line, labelled with how many lines it stands for: no curve crosses a county box and no label
    lies over a title.
    """
    bundles = _spoke_bundles(region) if len(region.links) > LABELLED_LINKS else {}
    bundled = {spoke: link for members in bundles.values() for spoke, link in members}
    lines = ["graph region {",
             "  graph [rankdir=TB, compound=true, newrank=true, nodesep=0.3, ranksep=0.9, "
             "fontname=Helvetica, fontsize=12, labeljust=l, pad=0.3];",
             '  node [shape=box, style="rounded,filled", fillcolor=white, fontname=Helvetica, fontsize=10];',
             '  edge [fontname=Helvetica, fontsize=10, color="#555555"];']
    anchors: dict[str, str] = {}
    for site_name in region.sites:
        if site_name not in bundled:
            body, anchors[site_name] = _site_cluster(region, site_name, "", "  ")
            lines += body
    bundle_edges = []
    for n, ((hub, kind, mbit, enc), members) in enumerate(sorted(bundles.items())):
        gid = f"cluster_bundle{n}"
        label = f"{len(members)} {region.sites[members[0][0]].kind.replace('_', ' ')} sites"
        lines += [f"  subgraph {gid} {{", f'    label="{label}"; style=dashed; color="#888888";']
        for spoke, link_name in sorted(members):
            body, anchors[spoke] = _site_cluster(region, spoke, f"\\n{link_name} to {hub}", "    ")
            lines += body
        order = [anchors[s] for s, _ in sorted(members)]
        for i in range(GRID_COLUMNS, len(order)):  # rows of GRID_COLUMNS: each below the one above
            lines.append(f"    {order[i - GRID_COLUMNS]} -- {order[i]} [style=invis];")
        lines.append("  }")
        middle = order[min(len(order), GRID_COLUMNS) // 2]
        below = _bottom(region, hub, anchors[hub])
        bundle_edges += [f"  {below} -- {first_row} [style=invis];" for first_row in order[:GRID_COLUMNS]]
        bundle_edges.append(f'  {anchors[hub]} -- {middle} [label="{len(members)} {kind.replace("_", " ")}s, '
                            f'{mbit} Mbit/s {enc} each", penwidth=3, ltail=cluster_{_ident(hub)}, lhead={gid}];')
    for name, link in region.links.items():
        a, b = link.between
        if a in bundled or b in bundled:
            continue
        lines.append(f'  {anchors[a]} -- {anchors[b]} [label="{name}\\n{link.bandwidth_mbit} Mbit/s '
                     f'{link.encryption}", penwidth=2, constraint=false, '
                     f'ltail=cluster_{_ident(a)}, lhead=cluster_{_ident(b)}];')
    lines += bundle_edges
    lines.append("}")
    return "\n".join(lines) + "\n"
