"""Quota preflight: before `up` creates anything, check each side's project has room for it.

A half-built region (the database up, its replica refused for lack of cores, the nineteenth
county's router refused by Neutron) is worse than none, so the program asks the clouds first
and stops with the whole list of shortfalls:

- Nova (`compute.get_limits_v2`): limits and usage of instances, cores, RAM, server groups.
- Neutron (`networking.get_quota_v2`): routers, networks, subnets, ports, security groups and
  rules, floating IPs. Neutron publishes limits only, so the whole demand is held against them.
- Cinder (`blockstorage.get_quotaset_v3`): volumes and gigabytes, limits only as well.

Every quota data source needs the project id: it comes from the side's auth scope
(`identity.get_auth_scope`), i.e. the project the provider is logged in to, which is exactly the
project `up` is about to fill. Usage Nova reports includes what this stack already owns; a
second `up` of an unchanged region must not count its own servers twice, so the stack's own
resources (`owned`, read from the stack's state by `hcops infra up`) are given back first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_openstack as openstack

from infra.openstack.config import SideConfig
from infra.openstack.topology import Demand, Side, demand
from inventories.model import Region

AUTH_SCOPE = "hcops-preflight"
INSTANCE = "openstack:compute/instance:Instance"
VOLUME = "openstack:blockstorage/volume:Volume"
# Stack resource type -> the Demand field it uses up.
OWNED_KINDS = {
    INSTANCE: "instances",
    VOLUME: "volumes",
    "openstack:compute/serverGroup:ServerGroup": "server_groups",
    "openstack:networking/router:Router": "routers",
    "openstack:networking/network:Network": "networks",
    "openstack:networking/subnet:Subnet": "subnets",
    "openstack:networking/port:Port": "ports",
    "openstack:networking/secGroup:SecGroup": "security_groups",
    "openstack:networking/secGroupRule:SecGroupRule": "security_group_rules",
    "openstack:networking/floatingIp:FloatingIp": "floating_ips",
}


class QuotaExceeded(pulumi.RunError):
    """The project cannot hold what the region asks for; nothing has been created."""


@dataclass(frozen=True)
class Shortfall:
    what: str
    needed: int
    free: int

    def __str__(self) -> str:
        return f"{self.what}: need {self.needed}, {self.free} free"


def _free(limit: float | None, used: float | None = 0, owned: int = 0) -> int | None:
    if limit is None or limit < 0:  # -1: unlimited
        return None
    return int(limit) - max(0, int(used or 0) - owned)


def owned_from_deployment(region: Region, deployment: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """What the stack already holds, per side, in Demand's terms (from `pulumi stack export`).

    Resources are placed on a side by the provider they were created through
    (`...::pulumi:providers:openstack::<side>-cloud::<id>`); an instance counts the vCPU and RAM
    its host has in the model, a volume the size recorded in the state."""
    out: dict[str, dict[str, int]] = {}
    for res in deployment.get("resources") or []:
        field_name = OWNED_KINDS.get(str(res.get("type")))
        provider = str(res.get("provider") or "")
        side = next((s for s in ("private", "public") if f"::{s}-cloud::" in provider), None)
        if field_name is None or side is None or res.get("delete"):
            continue
        counts = out.setdefault(side, {})
        counts[field_name] = counts.get(field_name, 0) + 1
        inputs = res.get("inputs") or {}
        if res["type"] == INSTANCE:
            ref = region.hosts.get(str(inputs.get("name")))
            if ref is not None and ref.spec.size:
                counts["vcpu"] = counts.get("vcpu", 0) + ref.spec.size.vcpu
                counts["ram_mb"] = counts.get("ram_mb", 0) + ref.spec.size.ram_gb * 1024
        elif res["type"] == VOLUME:
            counts["volume_gb"] = counts.get("volume_gb", 0) + int(inputs.get("size") or 0)
    return out


def shortfalls(need: Demand, limits: Any, owned: Mapping[str, int] | None = None) -> list[Shortfall]:
    """Nova limits against the demand; usage minus what the stack already owns is taken."""
    own = dict(owned or {})
    checks = [
        ("instances", need.instances,
         _free(limits.max_total_instances, limits.total_instances_used, own.get("instances", 0))),
        ("vCPU", need.vcpu, _free(limits.max_total_cores, limits.total_cores_used, own.get("vcpu", 0))),
        ("RAM (MB)", need.ram_mb, _free(limits.max_total_ram_size, limits.total_ram_used, own.get("ram_mb", 0))),
        ("server groups", need.server_groups,
         _free(limits.max_server_groups, limits.total_server_groups_used, own.get("server_groups", 0))),
    ]
    return [Shortfall(what, n, free) for what, n, free in checks if free is not None and n > free]


def network_shortfalls(need: Demand, quota: Any) -> list[Shortfall]:
    checks = [
        ("routers", need.routers, quota.router), ("networks", need.networks, quota.network),
        ("subnets", need.subnets, quota.subnet), ("ports", need.ports, quota.port),
        ("security groups", need.security_groups, quota.security_group),
        ("security group rules", need.security_group_rules, quota.security_group_rule),
        ("floating IPs", need.floating_ips, quota.floatingip),
    ]
    return [Shortfall(f"{what} (Neutron limit)", n, free) for what, n, limit in checks
            if (free := _free(limit)) is not None and n > free]


def volume_shortfalls(need: Demand, quota: Any) -> list[Shortfall]:
    checks = [("volumes", need.volumes, quota.volumes), ("volume GB", need.volume_gb, quota.gigabytes)]
    return [Shortfall(f"{what} (Cinder limit)", n, free) for what, n, limit in checks
            if (free := _free(limit)) is not None and n > free]


def flavor_demand(region: Region, side: Side, need: Demand,
                  provider: pulumi.ProviderResource) -> Demand:
    """Add the vCPU and RAM of hosts given only a flavor name, as the cloud defines the flavor."""
    vcpu, ram = need.vcpu, need.ram_mb
    for host in need.unsized:
        flavor = region.hosts[host].spec.flavor
        found = openstack.compute.get_flavor(name=flavor, opts=pulumi.InvokeOptions(provider=provider))
        vcpu += int(found.vcpus or 0)
        ram += int(found.ram or 0)
    return need.with_compute(vcpu, ram)


def project_id(provider: pulumi.ProviderResource) -> str:
    """The project the side's provider is scoped to: what every quota lookup must name."""
    scope = openstack.identity.get_auth_scope(name=AUTH_SCOPE, opts=pulumi.InvokeOptions(provider=provider))
    if not scope.project_id:
        raise QuotaExceeded("the cloud login is not scoped to a project, so its quota cannot be read; "
                            "set tenantName/projectName (or OS_PROJECT_NAME) for the side")
    return str(scope.project_id)


def preflight(region: Region, side: Side, provider: pulumi.ProviderResource,
              owned: Mapping[str, int] | None = None, side_cfg: SideConfig | None = None) -> Demand:
    """Raise QuotaExceeded listing every shortfall of `side`; return the demand checked."""
    cfg = side_cfg or SideConfig()
    dns, ntp = cfg.resolvers()
    need = flavor_demand(region, side, demand(region, side, dns, ntp, cfg.link_gateways), provider)
    invoke = pulumi.InvokeOptions(provider=provider)
    project = project_id(provider)
    short = shortfalls(need, openstack.compute.get_limits_v2(project_id=project, opts=invoke), owned)
    short += network_shortfalls(need, openstack.networking.get_quota_v2(project_id=project, opts=invoke))
    short += volume_shortfalls(need, openstack.blockstorage.get_quotaset_v3(project_id=project, opts=invoke))
    if short:
        raise QuotaExceeded(f"the {side} cloud's project quota is too small for region {region.name}: "
                            + "; ".join(str(s) for s in short)
                            + ". Ask the cloud for more quota or shrink the model; nothing was created.")
    return need
