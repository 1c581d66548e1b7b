"""LoadBalancer: an Octavia load balancer on an nginx service's VIP, in front of its hosts.

Octavia locks a load balancer (PENDING_UPDATE) while any child changes, and rejects a second
change meanwhile with "Load Balancer ... is immutable". So the children are created strictly
one after another: LB -> listener -> pool -> members -> monitor -> next listener ... and the
floating IP last. Each step depends on the one before, explicitly where no input links them.

Each model listener gets its own pool (Octavia pools take one protocol); members are the nginx
hosts on the listener's port; the health monitor follows the model pool's `max_fails` and
`fail_timeout_s`; `allowed_cidrs` repeats the model's flows to the service at the VIP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pulumi
import pulumi_openstack as openstack

from infra.openstack.config import SideConfig
from infra.openstack.topology import ingress_rules
from infra.openstack.vpc import Vpc
from inventories.model import Region
from inventories.schema import Nginx, Pool


def vip_network(region: Region, service: str) -> str:
    """The network (of the nginx hosts' site) that holds the VIP."""
    svc = region.services[service]
    assert isinstance(svc, Nginx) and svc.vip is not None
    site = region.hosts[svc.hosts[0]].site
    for name, net in site.networks.items():
        if svc.vip in net.cidr:
            return name
    raise KeyError(f"VIP {svc.vip} of {service} is on no network of its hosts' site")


def monitor_timing(pool: Pool) -> dict[str, int]:
    """nginx marks a server down after `max_fails` failures within `fail_timeout_s`: probe often
    enough that Octavia reaches the same verdict in about the same time."""
    retries = max(1, min(10, pool.max_fails))
    delay = max(2, math.ceil(pool.fail_timeout_s / retries))
    return {"delay": delay, "timeout": max(1, delay - 1), "max_retries": retries, "max_retries_down": retries}


class LoadBalancer(pulumi.ComponentResource):
    def __init__(self, name: str, region: Region, service: str, *, side: SideConfig, vpc: Vpc,
                 members_ready: Sequence[pulumi.Resource] = (),
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hcops:openstack:LoadBalancer", name, None, opts)
        svc = region.services[service]
        assert isinstance(svc, Nginx) and svc.vip is not None
        net = vip_network(region, service)
        subnet = vpc.subnets[net]
        # The component's own depends_on does not reach its children: each child that needs the
        # hosts (the LB itself, so no listener goes live before a member exists) says so.
        ready = list(members_ready)
        self.lb = openstack.loadbalancer.LoadBalancer(
            f"{service}-lb", name=f"{region.name}-{service}", vip_subnet_id=subnet,
            vip_address=str(svc.vip), admin_state_up=True, tags=[f"hcops-region={region.name}"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*ready, *vpc.interfaces_of(net)]))
        self.listeners: list[openstack.loadbalancer.Listener] = []
        self.pools: list[openstack.loadbalancer.Pool] = []
        self.monitors: list[openstack.loadbalancer.Monitor] = []
        self.members: list[openstack.loadbalancer.Members] = []
        previous: pulumi.Resource = self.lb
        flows = ingress_rules(region, service)
        for lst in svc.listeners:
            proto = lst.protocol.upper()
            key = f"{service}-{lst.port}"
            cidrs = sorted({str(r.cidr) for r in flows if r.port == lst.port})
            listener = openstack.loadbalancer.Listener(
                key, name=f"{region.name}-{key}", loadbalancer_id=self.lb.id, protocol=proto,
                protocol_port=lst.port, allowed_cidrs=None if not cidrs or "0.0.0.0/0" in cidrs else cidrs,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[previous]))
            pool = openstack.loadbalancer.Pool(
                key, name=f"{region.name}-{key}-{lst.pool}", listener_id=listener.id, protocol=proto,
                lb_method="ROUND_ROBIN", opts=pulumi.ResourceOptions(parent=self, depends_on=[listener]))
            members = openstack.loadbalancer.Members(
                key, pool_id=pool.id, members=[openstack.loadbalancer.MembersMemberArgs(
                    name=host, address=str(region.service_address(service, host)), protocol_port=lst.port,
                    subnet_id=vpc.subnets[region.service_network(service, host)]) for host in svc.hosts],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[pool, *ready]))
            timing = monitor_timing(svc.pools[lst.pool])
            http = proto == "HTTP"
            monitor = openstack.loadbalancer.Monitor(
                key, name=f"{region.name}-{key}", pool_id=pool.id, type="HTTP" if http else "TLS-HELLO",
                delay=timing["delay"], timeout=timing["timeout"], max_retries=timing["max_retries"],
                max_retries_down=timing["max_retries_down"], url_path="/" if http else None,
                http_method="GET" if http else None, expected_codes="200-399" if http else None,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[members]))
            self.listeners.append(listener)
            self.pools.append(pool)
            self.members.append(members)
            self.monitors.append(monitor)
            previous = monitor
        self.floating_ip: openstack.networking.FloatingIp | None = None
        if svc.public:
            self.floating_ip = openstack.networking.FloatingIp(
                f"{service}-fip", pool=side.fip_pool, port_id=self.lb.vip_port_id,
                description=f"public address of {region.name}/{service}",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[previous, *vpc.interfaces_of(net)]))
        self.register_outputs({"vip": self.lb.vip_address,
                               "public_ip": self.floating_ip.address if self.floating_ip else None})
