"""Vpc: one site's networks, a subnet per model network (one purpose each), and its router."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pulumi
import pulumi_openstack as openstack

from infra.openstack.config import SideConfig
from infra.openstack.topology import site_routes
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
    """Networks, subnets, a router with its external gateway, and routes to the other sites.

    A network the model marks `existing: NAME` is looked up (with its subnet of the model's
    cidr) instead of created; a site with `existing_router: NAME` attaches its new networks to
    that router. `networks`/`subnets` hold ids either way, so ports and load balancers do not
    care which it was."""

    networks: dict[str, pulumi.Output[str]]
    subnets: dict[str, pulumi.Output[str]]
    interfaces: dict[str, openstack.networking.RouterInterface]

    def __init__(self, name: str, region: Region, site: str, side: SideConfig,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hcops:openstack:Vpc", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        spec = region.sites[site]
        prefix = f"{region.name}-{site}"
        self.networks, self.subnets, self.interfaces = {}, {}, {}
        self.router_id: pulumi.Output[str]
        if spec.existing_router:
            self.router_id = openstack.networking.get_router_output(name=spec.existing_router, opts=invoke).id
        else:
            external = openstack.networking.get_network_output(
                name=side.external_network, external=True, opts=invoke)
            router = openstack.networking.Router(
                f"{site}-router", name=f"{prefix}-router", external_network_id=external.id,
                admin_state_up=True, tags=[f"hcops-region={region.name}", f"hcops-site={site}"], opts=child)
            self.router_id = router.id
        for net_name, net in spec.networks.items():
            if net.existing:
                found = openstack.networking.get_network_output(name=net.existing, opts=invoke)
                self.networks[net_name] = found.id
                self.subnets[net_name] = openstack.networking.get_subnet_output(
                    network_id=found.id, cidr=str(net.cidr), opts=invoke).id
                continue  # an existing network is routed by whoever made it
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
            self.interfaces[net_name] = openstack.networking.RouterInterface(
                f"{site}-{net_name}", router_id=self.router_id, subnet_id=subnet.id, opts=child)
            self.networks[net_name], self.subnets[net_name] = network.id, subnet.id
        self.routes, self.route_notes = site_routes(region, site, side.link_gateways)
        # Routes need the next hop's subnet on the router first.
        after = list(self.interfaces.values())
        self.route_resources = [openstack.networking.RouterRoute(
            f"{site}-route-{str(r.destination).replace('/', '_')}", router_id=self.router_id,
            destination_cidr=str(r.destination), next_hop=str(r.next_hop),
            opts=pulumi.ResourceOptions(parent=self, depends_on=after)) for r in self.routes]
        self.register_outputs({"router_id": self.router_id, "subnet_ids": dict(self.subnets)})

    def interfaces_of(self, net: str) -> list[pulumi.Resource]:
        """What a port (or floating IP) on `net` must wait for: the subnet's router interface."""
        found = self.interfaces.get(net)
        return [found] if found is not None else []
