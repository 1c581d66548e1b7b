"""Quota preflight: before `up` creates anything, check each side's project has room for it.

A half-built region (the database up, its replica refused for lack of cores) is worse than
none, so the program asks Nova for the project's limits first and stops with the whole list
of shortfalls. The check runs inside the program, through the side's own provider, so it asks
exactly the project that `up` is about to fill.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from infra.openstack.topology import Demand, Side, demand
from inventories.model import Region


class QuotaExceeded(pulumi.RunError):
    """The project cannot hold what the region asks for; nothing has been created."""


@dataclass(frozen=True)
class Shortfall:
    what: str
    needed: int
    free: int

    def __str__(self) -> str:
        return f"{self.what}: need {self.needed}, {self.free} free"


def _free(limit: int | None, used: int | None) -> int | None:
    if limit is None or limit < 0:  # -1: unlimited
        return None
    return limit - (used or 0)


def shortfalls(need: Demand, limits: openstack.compute.GetLimitsV2Result) -> list[Shortfall]:
    checks = [
        ("instances", need.instances, _free(limits.max_total_instances, limits.total_instances_used)),
        ("vCPU", need.vcpu, _free(limits.max_total_cores, limits.total_cores_used)),
        ("RAM (MB)", need.ram_mb, _free(limits.max_total_ram_size, limits.total_ram_used)),
        ("server groups", need.server_groups, _free(limits.max_server_groups, limits.total_server_groups_used)),
    ]
    return [Shortfall(what, n, free) for what, n, free in checks if free is not None and n > free]


def flavor_demand(region: Region, side: Side, need: Demand,
                  provider: pulumi.ProviderResource) -> Demand:
    """Add the vCPU and RAM of hosts given only a flavor name, as the cloud defines the flavor."""
    vcpu, ram = need.vcpu, need.ram_mb
    for host in need.unsized:
        flavor = region.hosts[host].spec.flavor
        found = openstack.compute.get_flavor(name=flavor, opts=pulumi.InvokeOptions(provider=provider))
        vcpu += int(found.vcpus or 0)
        ram += int(found.ram or 0)
    return Demand(need.instances, vcpu, ram, need.volumes, need.volume_gb, need.server_groups, ())


def preflight(region: Region, side: Side, provider: pulumi.ProviderResource) -> Demand:
    """Raise QuotaExceeded listing every shortfall of `side`; return the demand checked."""
    need = flavor_demand(region, side, demand(region, side), provider)
    limits = openstack.compute.get_limits_v2(opts=pulumi.InvokeOptions(provider=provider))
    short = shortfalls(need, limits)
    if short:
        raise QuotaExceeded(f"the {side} cloud's project quota is too small for region {region.name}: "
                            + "; ".join(str(s) for s in short)
                            + ". Ask the cloud for more quota or shrink the model; nothing was created.")
    return need
