"""Vpc: one site's networks, a subnet per model network (one purpose each), and its router."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pulumi
import pulumi_openstack as openstack

from infra.openstack.config import SideConfig
from inventories.model import Region
from inventories.schema import Nginx


def allocation_pool(region: Region, site: str, net: str) -> tuple[IPv4Address, IPv4Address] | None:
    """The range Neutron may hand out (DHCP, router and Octavia ports): the top quarter of the
    subnet, above every address the model fixes, so an automatic port never takes a host's or a
    VIP's address. None when the network is too full for such a range (Neutron's default)."""
    cidr: IPv4Network = region.sites[site].networks[net].cidr
    used = [a for h in region.sites[site].hosts.values() for n, a in h.addresses.items() if n == net]
    used += [s.vip for s in region.services.values() if isinstance(s, Nginx) and s.vip and s.vip in cidr]
    last = cidr.broadcast_address - 1
    start = cidr.network_address + max(2, cidr.num_addresses * 3 // 4)
    if used:
        start = max(start, max(used) + 1)
    if start >= last:
        return None
    return start, last


class Vpc(pulumi.ComponentResource):
    """Networks, subnets and a router with its external gateway for one site."""

    networks: dict[str, openstack.networking.Network]
    subnets: dict[str, openstack.networking.Subnet]

    def __init__(self, name: str, region: Region, site: str, side: SideConfig,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hcops:openstack:Vpc", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"{region.name}-{site}"
        self.networks, self.subnets = {}, {}
        external = openstack.networking.get_network_output(
            name=side.external_network, external=True, opts=pulumi.InvokeOutputOptions(parent=self))
        self.router = openstack.networking.Router(
            f"{site}-router", name=f"{prefix}-router", external_network_id=external.id,
            admin_state_up=True, tags=[f"hcops-region={region.name}", f"hcops-site={site}"], opts=child)
        for net_name, net in region.sites[site].networks.items():
            tags = [f"hcops-region={region.name}", f"hcops-site={site}", f"hcops-purpose={net.purpose}"]
            network = openstack.networking.Network(
                f"{site}-{net_name}", name=f"{prefix}-{net_name}", admin_state_up=True,
                port_security_enabled=True, tags=tags, opts=child)
            pool = allocation_pool(region, site, net_name)
            subnet = openstack.networking.Subnet(
                f"{site}-{net_name}", name=f"{prefix}-{net_name}", network_id=network.id,
                cidr=str(net.cidr), ip_version=4, gateway_ip=str(region.gateway(net)), enable_dhcp=True,
                allocation_pools=[openstack.networking.SubnetAllocationPoolArgs(start=str(pool[0]), end=str(pool[1]))]
                if pool else None,
                dns_nameservers=list(side.dns_nameservers) or None, tags=tags, opts=child)
            openstack.networking.RouterInterface(
                f"{site}-{net_name}", router_id=self.router.id, subnet_id=subnet.id, opts=child)
            self.networks[net_name], self.subnets[net_name] = network, subnet
        self.register_outputs({"router_id": self.router.id,
                               "subnet_ids": {n: s.id for n, s in self.subnets.items()}})
