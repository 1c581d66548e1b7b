"""SecurityGroups: the model's flows as Neutron rules, nothing else open (level-3: named ports
from named sources only).

Per site: one group per service with hosts in the site (one rule per declared flow, source
network and port). Per cloud side: an `admin` group (SSH/admin ports from
`region.admin_sources` only) and a `baseline` group (Zabbix passive checks from the Zabbix
server, egress to the region's own networks, HTTP(S) out for package updates, DNS and NTP to the
cloud's resolvers and time servers). The rules themselves are plain data from `topology`
(`site_rules`, `baseline_rules`), which the quota preflight counts. Every group is created with
`delete_default_rules`, so Neutron's allow-all egress rules never exist.
"""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack

from infra.openstack.config import SideConfig
from infra.openstack.topology import PROXY_GROUP, RuleSpec, baseline_rules, site_routes, site_rules, transit_hosts
from inventories.model import Region


class _Groups(pulumi.ComponentResource):
    """Shared plumbing: groups without Neutron's default rules, one rule per spec."""

    groups: dict[str, openstack.networking.SecGroup]

    def __init__(self, type_: str, name: str, region: Region, scope: str,
                 opts: pulumi.ResourceOptions | None) -> None:
        super().__init__(type_, name, None, opts)
        self._region, self._scope = region, scope
        self.groups = {}

    def _group(self, key: str, description: str, rules: list[RuleSpec]) -> openstack.networking.SecGroup:
        group = openstack.networking.SecGroup(
            f"{self._scope}-{key}", name=f"{self._region.name}-{self._scope}-{key}", description=description,
            delete_default_rules=True, tags=[f"hcops-region={self._region.name}", f"hcops-scope={self._scope}"],
            opts=pulumi.ResourceOptions(parent=self))
        self.groups[key] = group
        for rule in rules:
            openstack.networking.SecGroupRule(
                f"{self._scope}-{rule.key}", security_group_id=group.id, direction=rule.direction,
                ethertype="IPv4", protocol=rule.protocol, port_range_min=rule.port, port_range_max=rule.port,
                remote_ip_prefix=str(rule.cidr), description=rule.description,
                opts=pulumi.ResourceOptions(parent=group))
        return group


class SecurityGroups(_Groups):
    """One group per service with hosts in the site: the model's flows to it, nothing more
    (plus Octavia's own addresses in the VIP subnet for load-balanced members)."""

    def __init__(self, name: str, region: Region, site: str, side_cfg: SideConfig | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hcops:openstack:SecurityGroups", name, region, site, opts)
        gateways = (side_cfg or SideConfig()).link_gateways
        about = {"transit": "traffic forwarded between sites",
                 PROXY_GROUP: "agents' active checks to the site's Zabbix proxy"}
        for svc, rules in site_rules(region, site, gateways).items():
            self._group(svc, about.get(svc, f"ingress to {svc} from the flows declared in the model"), rules)
        self._transit = set(transit_hosts(region, site_routes(region, site, gateways)[0]))
        self.register_outputs({"group_ids": {n: g.id for n, g in self.groups.items()}})

    def for_host(self, host: str) -> list[pulumi.Output[str]]:
        proxy = self._region.zabbix_proxy_of(host)
        keys = [*self._region.host_services(host), *(["transit"] if host in self._transit else []),
                *([PROXY_GROUP] if proxy is not None and proxy.host == host else [])]
        return [self.groups[s].id for s in keys if s in self.groups]


class BaselineGroups(_Groups):
    """Groups every host of a side carries: `admin` and `baseline` (same rules on every site,
    so one copy per cloud side rather than one per site keeps the project's rule quota low)."""

    def __init__(self, name: str, region: Region, side: str, side_cfg: SideConfig | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hcops:openstack:BaselineGroups", name, region, side, opts)
        dns, ntp = (side_cfg or SideConfig()).resolvers()
        specs = baseline_rules(region, dns, ntp)
        self._group("admin", "administration from the region's admin sources only", specs["admin"])
        self._group("baseline", "monitoring agent in, egress to the region, HTTP(S), DNS and NTP",
                    specs["baseline"])
        self.register_outputs({"group_ids": {n: g.id for n, g in self.groups.items()}})

    def ids(self) -> list[pulumi.Output[str]]:
        return [self.groups["admin"].id, self.groups["baseline"].id]
