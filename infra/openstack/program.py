"""The region program: every `provider: openstack` site of a region, one stack per region.

A hybrid region has two clouds: the private one (city/provincial DC and county sites) and the
public one (`public_cloud` sites). Each side gets its own explicit `openstack.Provider`, and
everything on that side (keypair, anti-affinity server groups, each site's network, security
groups, hosts, load balancers, buckets) is created through it. Importable without running:
`build_region` is called by `__main__.py` (Pulumi CLI), by the Automation API (`hcops infra
up`) and by the mock runtime (`hcops infra preview --offline`, tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_openstack as openstack

from infra.openstack.compute import HostGroup
from infra.openstack.config import ProgramConfig, ProgramSettingsError
from infra.openstack.loadbalancer import LoadBalancer
from infra.openstack.quota import preflight
from infra.openstack.security import BaselineGroups, SecurityGroups
from infra.openstack.storage import ObjectStorageBuckets
from infra.openstack.topology import (
    Side,
    anti_affinity_groups,
    nginx_services,
    object_stores,
    openstack_sites,
    side_of,
    sides_used,
)
from infra.openstack.vpc import Vpc
from inventories.model import Region

OUTPUT_KEY = "hcops"  # the stack output holding the RegionOutputs document
PUBLIC_KEY = "public_addresses"


class CloudSide(pulumi.ComponentResource):
    """One cloud (private or public): its provider, keypair and anti-affinity server groups."""

    def __init__(self, side: Side, region: Region, cfg: ProgramConfig) -> None:
        super().__init__("hcops:openstack:CloudSide", side, None, None)
        side_cfg = cfg.side(side)
        self.side = side
        self.provider = openstack.Provider(f"{side}-cloud", **side_cfg.provider_args(),
                                           opts=pulumi.ResourceOptions(parent=self))
        self._region, self._cfg = region, cfg

    def build(self) -> None:
        """Side-wide resources, created once every side's quota preflight has passed."""
        region, cfg, side = self._region, self._cfg, self.side
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.keypair = openstack.compute.Keypair(
            f"{side}-keypair", name=f"{region.name}-{side}", public_key=cfg.ssh_public_key, opts=child)
        self.baseline = BaselineGroups(f"{side}-baseline", region, side, cfg.side(side), opts=child)
        self.server_groups: dict[str, openstack.compute.ServerGroup] = {}
        for group in anti_affinity_groups(region):
            if group.side != side:
                continue
            server_group = openstack.compute.ServerGroup(
                group.name, name=group.name, policies="anti-affinity", opts=child)
            for host in group.hosts:
                self.server_groups[host] = server_group
        self.register_outputs({})


class SiteStack(pulumi.ComponentResource):
    """Everything of one site, under its side's provider."""

    def __init__(self, site: str, region: Region, cfg: ProgramConfig, side: CloudSide) -> None:
        super().__init__("hcops:openstack:Site", site, None,
                         pulumi.ResourceOptions(providers=[side.provider]))
        side_cfg = cfg.side(side.side)
        child = pulumi.ResourceOptions(parent=self)
        self.vpc = Vpc(f"{site}-vpc", region, site, side_cfg, opts=child)
        self.security = SecurityGroups(f"{site}-security", region, site, side_cfg, opts=child)
        self.hosts = HostGroup(f"{site}-hosts", region, site, side=side_cfg, vpc=self.vpc, security=self.security,
                               baseline=side.baseline, keypair=side.keypair, server_groups=side.server_groups,
                               opts=child)
        self.load_balancers = {
            svc: LoadBalancer(f"{svc}-lb", region, svc, side=side_cfg, vpc=self.vpc,
                              members_ready=[self.hosts.instances[h] for h in region.service_hosts(svc)],
                              opts=pulumi.ResourceOptions(parent=self, depends_on=[self.hosts]))
            for svc in nginx_services(region, site)}
        self.object_storage = {svc: ObjectStorageBuckets(f"{svc}-storage", region, svc, cfg, opts=child)
                               for svc in object_stores(region, site)}
        self.register_outputs({})


@dataclass
class RegionProgram:
    """The built components, and the outputs document in the `RegionOutputs` form."""

    sides: dict[Side, CloudSide] = field(default_factory=dict)
    sites: dict[str, SiteStack] = field(default_factory=dict)
    outputs: pulumi.Output[dict[str, Any]] | None = None
    public_addresses: pulumi.Output[dict[str, str]] | None = None


def build_region(region: Region, cfg: ProgramConfig) -> RegionProgram:
    sites = openstack_sites(region)
    if not sites:
        raise ProgramSettingsError(f"region {region.name} has no site with `provider: openstack`",
                                   "set `provider: openstack` on the sites Pulumi should build")
    prog = RegionProgram()
    for side in sides_used(region):
        prog.sides[side] = CloudSide(side, region, cfg)
    if cfg.quota_preflight:  # all sides first: a shortfall on one side must leave the other untouched
        for side, cloud in prog.sides.items():
            preflight(region, side, cloud.provider, cfg.owned.get(side), cfg.side(side))
    for cloud in prog.sides.values():
        cloud.build()
    for site_name, site in sites.items():
        prog.sites[site_name] = SiteStack(site_name, region, cfg, prog.sides[side_of(site)])
    prog.outputs = region_outputs(region, cfg, prog)
    fips = {svc: lb.floating_ip.address for s in prog.sites.values()
            for svc, lb in s.load_balancers.items() if lb.floating_ip is not None}
    prog.public_addresses = pulumi.Output.all(**fips) if fips else pulumi.Output.from_input({})
    return prog


def region_outputs(region: Region, cfg: ProgramConfig, prog: RegionProgram) -> pulumi.Output[dict[str, Any]]:
    """Addresses come from the model (the ports fix them); ids come from the cloud."""
    ids = {host: inst.id for s in prog.sites.values() for host, inst in s.hosts.instances.items()}
    buckets: dict[str, str] = {}
    for s in prog.sites.values():
        for store in s.object_storage.values():
            buckets.update({b: n for b, n in store.names(cfg).items() if b in store.buckets})

    def document(resolved: dict[str, str]) -> dict[str, Any]:
        hosts = {}
        for host, provider_id in resolved.items():
            ref = region.hosts[host]
            hosts[host] = {"site": ref.site_name, "ssh_address": str(ref.primary_address),
                           "addresses": {n: str(a) for n, a in ref.spec.addresses.items()},
                           "provider_id": provider_id}
        vips = {name: str(svc.vip) for name, svc in region.services.items()
                if svc.kind == "nginx" and getattr(svc, "vip", None) and all(
                    h in resolved for h in region.service_hosts(name))}
        s3 = None
        if buckets and cfg.s3 is not None:
            s3 = {"endpoint": cfg.s3.endpoint, "region_name": cfg.s3.region_name,
                  "credentials_file": str(cfg.s3.credentials_file), "buckets": buckets}
        return {"region": region.name, "provider": "openstack", "ssh_user": region.spec.region.automation_account,
                "ssh_private_key": str(cfg.ssh_private_key) if cfg.ssh_private_key else None,
                "hosts": hosts, "vips": vips, "s3": s3}

    return pulumi.Output.all(**ids).apply(document)


def pulumi_main(region: Region | None = None) -> None:
    """Entry point for a Pulumi run: the region from the argument or from `hcops:region`."""
    from infra.openstack.config import from_pulumi_config  # noqa: PLC0415

    if region is None:
        from inventories.errors import HcopsError  # noqa: PLC0415
        from inventories.loader import load_region  # noqa: PLC0415

        name = pulumi.Config("hcops").require("region")
        try:
            region = load_region(name)
        except HcopsError as exc:
            raise pulumi.RunError(f"{exc.message} ({exc.hint})") from None
    prog = build_region(region, from_pulumi_config(region.name))
    pulumi.export(OUTPUT_KEY, prog.outputs)
    pulumi.export(PUBLIC_KEY, prog.public_addresses)
