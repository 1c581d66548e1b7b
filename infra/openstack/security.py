"""SecurityGroups: the model's flows as Neutron rules, nothing else open (level-3: named ports
from named sources only).

Per site: one group per service with hosts in the site (one rule per declared flow, source
network and port). Per cloud side: an `admin` group (SSH/admin ports from
`region.admin_sources` only) and a `baseline` group (Zabbix passive checks from the Zabbix
server, egress to the region's own networks and HTTP(S) out for package updates). Every group is created with
`delete_default_rules`, so Neutron's allow-all egress rules never exist.
"""

from __future__ import annotations

from ipaddress import IPv4Network, collapse_addresses

import pulumi
import pulumi_openstack as openstack

from infra.openstack.topology import (
    INTERNET,
    ZABBIX_AGENT_PORT,
    admin_networks,
    ingress_rules,
    region_networks,
    zabbix_sources,
)
from inventories.model import Region

EGRESS_TO_INTERNET = (80, 443)  # package mirrors and the S3 endpoint


class _Groups(pulumi.ComponentResource):
    """Shared plumbing: groups without Neutron's default rules, one rule per call."""

    groups: dict[str, openstack.networking.SecGroup]

    def __init__(self, type_: str, name: str, region: Region, scope: str,
                 opts: pulumi.ResourceOptions | None) -> None:
        super().__init__(type_, name, None, opts)
        self._region, self._scope = region, scope
        self.groups = {}

    def _group(self, key: str, description: str) -> openstack.networking.SecGroup:
        group = openstack.networking.SecGroup(
            f"{self._scope}-{key}", name=f"{self._region.name}-{self._scope}-{key}", description=description,
            delete_default_rules=True, tags=[f"hcops-region={self._region.name}", f"hcops-scope={self._scope}"],
            opts=pulumi.ResourceOptions(parent=self))
        self.groups[key] = group
        return group

    def _rule(self, group: openstack.networking.SecGroup, name: str, *, direction: str, protocol: str | None,
              port: int | None, cidr: IPv4Network, description: str) -> None:
        openstack.networking.SecGroupRule(
            f"{self._scope}-{name}", security_group_id=group.id, direction=direction, ethertype="IPv4",
            protocol=protocol, port_range_min=port, port_range_max=port, remote_ip_prefix=str(cidr),
            description=description, opts=pulumi.ResourceOptions(parent=group))


class SecurityGroups(_Groups):
    """One group per service with hosts in the site: the model's flows to it, nothing more."""

    def __init__(self, name: str, region: Region, site: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hcops:openstack:SecurityGroups", name, region, site, opts)
        hosts = set(region.sites[site].hosts)
        for svc in region.services:
            if hosts & set(region.service_hosts(svc)):
                group = self._group(svc, f"ingress to {svc} from the flows declared in the model")
                for r in ingress_rules(region, svc):
                    self._rule(group, f"{svc}-{r.flow}-{r.port}-{_cidr_label(r.cidr)}", direction="ingress",
                               protocol=r.protocol, port=r.port, cidr=r.cidr,
                               description=f"flow {r.flow}: {r.cidr} -> {svc}:{r.port}/{r.protocol}")
        self.register_outputs({"group_ids": {n: g.id for n, g in self.groups.items()}})

    def for_host(self, host: str) -> list[pulumi.Output[str]]:
        return [self.groups[s].id for s in self._region.host_services(host) if s in self.groups]


class BaselineGroups(_Groups):
    """Groups every host of a side carries: `admin` and `baseline` (same rules on every site,
    so one copy per cloud side rather than one per site keeps the project's rule quota low)."""

    def __init__(self, name: str, region: Region, side: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hcops:openstack:BaselineGroups", name, region, side, opts)
        admin = self._group("admin", "administration from the region's admin sources only")
        for net in admin_networks(region):
            for port in region.spec.region.admin_ports:
                self._rule(admin, f"admin-{port}-{_cidr_label(net)}", direction="ingress", protocol="tcp",
                           port=port, cidr=net, description=f"admin access {net} -> {port}/tcp")
        base = self._group("baseline", "monitoring agent in, egress to the region and to HTTP(S)")
        for net in zabbix_sources(region):
            self._rule(base, f"baseline-zabbix-agent-{_cidr_label(net)}", direction="ingress", protocol="tcp",
                       port=ZABBIX_AGENT_PORT, cidr=net, description="Zabbix server polls the agent")
        for net in collapse_addresses(region_networks(region)):
            self._rule(base, f"baseline-egress-region-{_cidr_label(net)}", direction="egress", protocol=None,
                       port=None, cidr=net, description="egress to the region's own networks")
        for port in EGRESS_TO_INTERNET:
            self._rule(base, f"baseline-egress-internet-{port}", direction="egress", protocol="tcp", port=port,
                       cidr=INTERNET, description="package mirrors and object storage over HTTP(S)")
        self.register_outputs({"group_ids": {n: g.id for n, g in self.groups.items()}})

    def ids(self) -> list[pulumi.Output[str]]:
        return [self.groups["admin"].id, self.groups["baseline"].id]


def _cidr_label(net: IPv4Network) -> str:
    return "any" if net.prefixlen == 0 else str(net).replace("/", "_").replace(".", "-")
