"""The offline plan as a reader wants it: a tree by site, counts by type, key properties.

Stated plainly at the top (table) or in `offline`/`notice` (JSON): the plan comes from the mock
runtime, no cloud was contacted, ids and public addresses are placeholders.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from infra.openstack.graph import PlannedResource, ResourceGraph
from infra.openstack.mocks import OfflinePlan
from infra.openstack.policy import Finding
from infra.openstack.topology import demand, sides_used
from inventories.model import Region

NOTICE = ("OFFLINE PREVIEW: the program ran under Pulumi's mock runtime; no cloud was contacted. "
          "Every resource is shown as to be created; ids and public addresses are placeholders.")
KIND_ORDER = ("Provider", "Keypair", "ServerGroup", "SecGroup", "SecGroupRule", "Router", "Network", "Subnet",
              "RouterInterface", "RouterRoute", "Port", "Volume", "Instance", "VolumeAttach",
              "LoadBalancer", "Listener", "Pool", "Members",
              "Monitor", "FloatingIp", "s3-bucket", "Container")


def _n(value: Any) -> str:
    """Numbers come back from the mock runtime as floats: print 22, not 22.0."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _port(res: PlannedResource) -> str:
    low, high = res.inputs.get("portRangeMin"), res.inputs.get("portRangeMax")
    if low is None:
        return "all"
    return _n(low) if low == high else f"{_n(low)}-{_n(high)}"


def key_properties(res: PlannedResource, region: Region) -> str:
    """One line of what matters about a resource (what a reviewer checks before `up`)."""
    i = res.inputs
    k = res.kind
    if k == "SecGroupRule":
        return f"{i.get('direction')} {i.get('protocol') or 'any'}/{_port(res)} {i.get('remoteIpPrefix')}"
    if k == "RouterRoute":
        return f"{i.get('destinationCidr')} via {i.get('nextHop')}"
    if k == "Port" and i.get("allowedAddressPairs"):
        pairs = ", ".join(p.get("ipAddress", "?") for p in i["allowedAddressPairs"])
        return ", ".join(ip.get("ipAddress", "?") for ip in i.get("fixedIps") or []) + f" (may send for {pairs})"
    if k == "Subnet":
        return f"{i.get('cidr')} gw {i.get('gatewayIp')}"
    if k == "Port":
        return ", ".join(ip.get("ipAddress", "?") for ip in i.get("fixedIps") or [])
    if k == "Volume":
        return f"{_n(i.get('size'))} GB {i.get('volumeType')}"
    if k == "Instance":
        ref = region.hosts.get(str(i.get("name")))
        size = (f"{ref.spec.size.vcpu} vCPU/{ref.spec.size.ram_gb} GB" if ref and ref.spec.size
                else f"flavor {i.get('flavorName')}")
        grouped = (" anti-affinity" if i.get("schedulerHints") else "") + (
            f" {i['availabilityZone']}" if i.get("availabilityZone") else "")
        addrs = ", ".join(str(a) for a in ref.spec.addresses.values()) if ref else ""
        return f"{size} {addrs}{grouped}"
    if k == "ServerGroup":
        return str(i.get("policies"))
    if k == "LoadBalancer":
        return f"VIP {i.get('vipAddress')}"
    if k == "Listener":
        return f"{i.get('protocol')}:{_n(i.get('protocolPort'))}" + (
            f" from {', '.join(i['allowedCidrs'])}" if i.get("allowedCidrs") else "")
    if k == "Pool":
        return f"{i.get('protocol')} {i.get('lbMethod')}"
    if k == "Members":
        return ", ".join(f"{m.get('address')}:{_n(m.get('protocolPort'))}" for m in i.get("members") or [])
    if k == "Monitor":
        return (f"{i.get('type')} every {_n(i.get('delay'))}s, timeout {_n(i.get('timeout'))}s, "
                f"down after {_n(i.get('maxRetriesDown'))} failures")
    if k == "FloatingIp":
        return f"pool {i.get('pool')} -> VIP port"
    if k == "s3-bucket":
        life = i.get("lifecycle") or {}
        lock = f", object lock {_n(i.get('objectLockDays'))} d" if i.get("objectLock") else ""
        keep = f"expire {_n(life.get('expirationDays'))} d" if life.get("expirationDays") else "no expiry"
        return (f"{i.get('bucket')} versioning={i.get('versioning')} {keep}, "
                f"noncurrent {_n(life.get('noncurrentDays'))} d, {i.get('encryption')}{lock}")
    if k == "Container":
        return f"{i.get('name')} versioning={i.get('versioning')}"
    return str(i.get("name", ""))


def _order(res: PlannedResource) -> tuple[int, str]:
    kind = res.kind
    return (KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), res.name)


def by_placement(graph: ResourceGraph) -> dict[str, list[PlannedResource]]:
    out: dict[str, list[PlannedResource]] = {}
    for res in graph.custom_resources():
        out.setdefault(graph.placement(res), []).append(res)
    return {k: sorted(v, key=_order) for k, v in sorted(out.items(), key=lambda kv: (kv[0].startswith("site"), kv[0]))}


def as_json(plan: OfflinePlan, region: Region, findings: list[Finding]) -> dict[str, Any]:
    graph = plan.graph
    placements: dict[str, Any] = {}
    for place, items in by_placement(graph).items():
        counts: dict[str, int] = {}
        for r in items:
            counts[r.kind] = counts.get(r.kind, 0) + 1
        placements[place] = {"counts": counts, "resources": [
            {"kind": r.kind, "name": r.name, "urn": r.urn, "summary": key_properties(r, region),
             "depends_on": list(r.depends_on)} for r in items]}
    return {
        "offline": True,
        "notice": NOTICE,
        "region": region.name,
        "total": len(graph.custom_resources()),
        "counts": graph.counts(),
        "demand": {side: demand(region, side).as_dict() for side in sides_used(region)},
        "placements": placements,
        "outputs": plan.outputs,
        "findings": [f.as_dict() for f in findings],
    }


def render(console: Console, plan: OfflinePlan, region: Region, findings: list[Finding]) -> None:
    console.print(f"[bold yellow]{NOTICE}[/]", soft_wrap=True)
    graph = plan.graph
    tree = Tree(f"[bold]region {region.name}[/]: {len(graph.custom_resources())} resources to create")
    for place, items in by_placement(graph).items():
        kind, _, name = place.partition(":")
        site = region.sites.get(name)
        label = f"[bold cyan]{kind} {name}[/]"
        if site:
            label += f" ({site.kind}, {len(site.hosts)} host{'' if len(site.hosts) == 1 else 's'})"
        node = tree.add(f"{label}: {len(items)} resources")
        for res in items:
            node.add(f"{res.kind} [green]{res.name}[/]  {key_properties(res, region)}", highlight=False)
    console.print(tree)
    counts = Table(title="resources by type", show_edge=False)
    counts.add_column("type")
    counts.add_column("count", justify="right")
    for kind, n in graph.counts().items():
        counts.add_row(kind, str(n))
    console.print(counts)
    sides = Table(title="compute asked of each cloud side", show_edge=False)
    for col in ("side", "instances", "vCPU", "RAM GB", "volumes", "volume GB", "server groups"):
        sides.add_column(col, justify="right" if col != "side" else "left")
    for side in sides_used(region):
        d = demand(region, side)
        sides.add_row(side, str(d.instances), str(d.vcpu), str(d.ram_mb // 1024), str(d.volumes),
                      str(d.volume_gb), str(d.server_groups))
    console.print(sides)
    net = Table(title="network asked of each cloud side (Neutron limits)", show_edge=False)
    for col in ("side", "routers", "networks", "ports", "security groups", "rules", "floating IPs"):
        net.add_column(col, justify="right" if col != "side" else "left")
    for side in sides_used(region):
        d = demand(region, side)
        net.add_row(side, str(d.routers), str(d.networks), str(d.ports), str(d.security_groups),
                    str(d.security_group_rules), str(d.floating_ips))
    console.print(net)
    if findings:
        console.print(f"[bold red]{len(findings)} policy finding(s):[/]")
        for f in findings:
            console.print(f"  {f}", markup=False, highlight=False)
    else:
        console.print("[green]policy checks: no findings[/]")
