"""The validated region with its derived facts: computed here once, never typed in a file.

Every engine (Pulumi, Ansible, Zabbix sync, DR, plans) reads a `Region`; none re-derives a
server id or a listen address on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from inventories.schema import (
    SLO,
    BackupPolicy,
    Canary,
    Collector,
    Host,
    Link,
    MonitoringProxy,
    MySQL,
    Network,
    Nginx,
    ObjectStorage,
    Oracle,
    Pacs,
    RegionSpec,
    Service,
    Site,
    Zabbix,
)

LOG_PORT = 6514
"""Syslog over TLS (RFC 5425): the region's log host takes auth, sudo and audit records on it."""
NTP_PORT = 123
"""The region's time source serves NTP (udp) to the region's networks."""
ZABBIX_PROXY_PORT = 10051
"""A remote site's Zabbix proxy takes its agents' active checks on it (the server's port)."""

# The port(s) each kind of service listens on, used for security rules and monitoring.
DB_KINDS = frozenset({"mysql", "oracle"})
# Kinds that hold patient data: their ports are never open to 0.0.0.0/0 (level-3).
PATIENT_DATA_KINDS = DB_KINDS | {"pacs"}
# Purpose of the network a service prefers to listen on, when the host has one.
PREFERRED_PURPOSE = {
    "mysql": "db", "oracle": "db", "nginx": "dmz", "canary": "app", "zabbix": "mgmt",
    "collector": "dmz", "object_storage": "storage", "pacs": "storage",
}


@dataclass(frozen=True)
class HostRef:
    """A host with the site it lives in (host names are unique region-wide)."""

    name: str
    site_name: str
    site: Site
    spec: Host

    def network(self, net: str) -> Network:
        return self.site.networks[net]

    @property
    def primary_address(self) -> IPv4Address:
        """The address management traffic (ssh, agents) uses: mgmt network first."""
        for purpose in ("mgmt", "app", "db", "dmz", "storage"):
            for net, addr in self.spec.addresses.items():
                if self.site.networks.get(net) and self.site.networks[net].purpose == purpose:
                    return addr
        return next(iter(self.spec.addresses.values()))


def service_hosts(svc: Service) -> list[str]:
    """Hosts a service runs on, in a stable order (primary first for MySQL)."""
    if isinstance(svc, MySQL):
        return [svc.primary, *svc.replicas]
    if isinstance(svc, (Oracle, Nginx, Canary)):
        return list(svc.hosts)
    if isinstance(svc, Zabbix):
        return [svc.server]
    if isinstance(svc, (Collector, Pacs)):
        return [svc.host]
    if isinstance(svc, ObjectStorage):
        return [svc.host] if svc.host else []
    raise TypeError(f"unknown service type {type(svc).__name__}")  # pragma: no cover


def service_ports(svc: Service) -> list[int]:
    if isinstance(svc, Nginx):
        return sorted({lst.port for lst in svc.listeners})
    if isinstance(svc, Zabbix):
        return [svc.port, svc.frontend_port]
    if isinstance(svc, Pacs):
        return [svc.port, svc.dicom_port]
    return [svc.port]


@dataclass(frozen=True)
class ProxyRef:
    """A remote site's Zabbix proxy: the names the zabbix_proxy role and the sync must agree on."""

    site: str
    host: str
    spec: MonitoringProxy
    name: str
    """the proxy's name in Zabbix and its `Hostname=`"""
    psk_identity: str
    psk_secret: str
    """name of its pre-shared key in the region's secret store"""
    address: IPv4Address
    """where the site's agents reach it (the proxy host's management address)"""


class Region:
    """A loaded, valid region: the spec plus everything derivable from it."""

    def __init__(self, spec: RegionSpec, root: Path) -> None:
        self.spec = spec
        self.root = root

    @property
    def name(self) -> str:
        return self.spec.region.name

    @cached_property
    def hosts(self) -> dict[str, HostRef]:
        out: dict[str, HostRef] = {}
        for site_name, site in self.spec.sites.items():
            for host_name, host in site.hosts.items():
                out.setdefault(host_name, HostRef(host_name, site_name, site, host))
        return out

    @property
    def sites(self) -> dict[str, Site]:
        return self.spec.sites

    @property
    def services(self) -> dict[str, Service]:
        return self.spec.services

    @property
    def links(self) -> dict[str, Link]:
        return self.spec.links

    @property
    def backup_policies(self) -> dict[str, BackupPolicy]:
        return self.spec.backup_policies

    @property
    def slos(self) -> dict[str, SLO]:
        return self.spec.slos

    @cached_property
    def counties(self) -> list[str]:
        return sorted({s.county for s in self.spec.sites.values() if s.county})

    def networks(self) -> dict[str, tuple[str, str, Network]]:
        """`site.net` -> (site, net, Network) for every network in the region."""
        return {
            f"{site_name}.{net_name}": (site_name, net_name, net)
            for site_name, site in self.spec.sites.items()
            for net_name, net in site.networks.items()
        }

    def service_network(self, service: str, host: str) -> str:
        """Name of the host's network the service listens on (derived, never typed)."""
        svc = self.spec.services[service]
        ref = self.hosts[host]
        wanted = svc.network or PREFERRED_PURPOSE[svc.kind]
        for net in ref.spec.addresses:
            if ref.site.networks[net].purpose == wanted:
                return net
        if svc.network is None:
            return next(iter(ref.spec.addresses))
        raise KeyError(f"host {host} has no {wanted} network for service {service}")

    def service_address(self, service: str, host: str) -> IPv4Address:
        return self.hosts[host].spec.addresses[self.service_network(service, host)]

    def service_hosts(self, service: str) -> list[str]:
        return service_hosts(self.spec.services[service])

    def service_ports(self, service: str) -> list[int]:
        return service_ports(self.spec.services[service])

    @cached_property
    def mysql_server_ids(self) -> dict[str, int]:
        """Server id per MySQL host: stable, unique region-wide, 1-based in model order."""
        ids: dict[str, int] = {}
        for svc in self.spec.services.values():
            if isinstance(svc, MySQL):
                for host in service_hosts(svc):
                    ids.setdefault(host, len(ids) + 1)
        return ids

    def host_services(self, host: str) -> list[str]:
        return [name for name, svc in self.spec.services.items() if host in service_hosts(svc)]

    @cached_property
    def zabbix_proxies(self) -> dict[str, ProxyRef]:
        """Site -> its Zabbix proxy, for the sites the model marks remote (`monitoring_proxy`)."""
        out = {}
        for site_name, site in self.spec.sites.items():
            proxy = site.monitoring_proxy
            if proxy is not None and proxy.host in site.hosts:
                out[site_name] = ProxyRef(site_name, proxy.host, proxy, f"hcops-{self.name}-{site_name}",
                                          f"hcops-proxy-{site_name}", f"zabbix-psk-proxy-{site_name}",
                                          self.hosts[proxy.host].primary_address)
        return out

    def zabbix_proxy_of(self, host: str) -> ProxyRef | None:
        """The proxy a host's agent reports to, or None when the server polls it directly."""
        return self.zabbix_proxies.get(self.hosts[host].site_name)

    def baseline_listeners(self, host: str) -> list[tuple[str, int, str]]:
        """(protocol, port, why) the platform opens on a host's primary address beside its services:
        the log host's TLS syslog, the time source's NTP, a remote site's Zabbix proxy. Acceptance
        checks declare them beside services."""
        out = []
        proxy = self.zabbix_proxy_of(host)
        if proxy is not None and proxy.host == host:
            out.append(("tcp", ZABBIX_PROXY_PORT, f"Zabbix proxy of site {proxy.site} (agents' active checks)"))
        if self.spec.region.log_host == host:
            out.append(("tcp", LOG_PORT, "log host (syslog over TLS)"))
        if self.spec.region.time_source == host:
            out.append(("udp", NTP_PORT, "time source (NTP)"))
        return out

    def host_roles(self, host: str) -> list[str]:
        """Declared roles plus the service kinds the host runs, deduplicated, in order."""
        roles = list(self.hosts[host].spec.roles)
        for name in self.host_services(host):
            kind = self.spec.services[name].kind
            if kind not in roles:
                roles.append(kind)
        return roles

    def bucket_service(self, bucket: str) -> str | None:
        for name, svc in self.spec.services.items():
            if isinstance(svc, ObjectStorage) and bucket in svc.buckets:
                return name
        return None

    def vip_mechanism(self, service: str) -> str | None:
        """Who holds an nginx service's VIP: one mechanism per service, never two claiming it.

        `auto`: the provider's load balancer (Octavia) where the hosts' site is on OpenStack,
        keepalived (VRRP) where hcops owns the L2 (the lab, hosts on their own switches)."""
        svc = self.spec.services.get(service)
        if not isinstance(svc, Nginx) or svc.vip is None:
            return None
        if svc.vip_via != "auto":
            return svc.vip_via
        providers = {self.hosts[h].site.provider for h in svc.hosts if h in self.hosts}
        return "octavia" if providers == {"openstack"} else "keepalived"

    def gateway(self, network: Network) -> IPv4Address:
        """The first usable address of a network is its gateway (bridge or router port)."""
        return network.cidr.network_address + 1

    def totals(self, site: str | None = None) -> dict[str, int]:
        """vCPU, RAM and host counts, per site or for the region (sized hosts only)."""
        vcpu = ram = count = 0
        for ref in self.hosts.values():
            if site and ref.site_name != site:
                continue
            count += 1
            if ref.spec.size:
                vcpu += ref.spec.size.vcpu
                ram += ref.spec.size.ram_gb
        return {"hosts": count, "vcpu": vcpu, "ram_gb": ram}

    def site_bom(self, site: str) -> list[tuple[str, str, int]]:
        """The site's bill of materials as (line, hardware model, quantity), in model order."""
        return [(name, item.model, item.count) for name, item in self.spec.equipment.get(site, {}).items()]

    def host_hardware(self, host: str) -> str | None:
        """The hardware model a host runs on, when its site's equipment names it."""
        ref = self.hosts[host]
        for item in self.spec.equipment.get(ref.site_name, {}).values():
            if host in item.hosts:
                return item.model
        return None

    def site_load(self, site: str) -> dict[str, int]:
        """Rack units and power a site's hardware needs, against what its racks and UPS offer."""
        out = {"rack_units": 0, "power_w": 0, "capacity_u": 0, "capacity_w": 0}
        for _, model_name, qty in self.site_bom(site):
            hw = self.spec.hardware.get(model_name)
            if hw is None:
                continue
            out["rack_units"] += hw.rack_units * qty
            out["capacity_u"] += hw.capacity_u * qty
            out["capacity_w"] += hw.capacity_w * qty
            if hw.kind != "ups":
                out["power_w"] += hw.power_w * qty
        return out

    def county_sites(self, county: str) -> list[str]:
        return [name for name, site in self.spec.sites.items() if site.county == county]

    def allowed_downtime_minutes(self, slo: str) -> float:
        spec = self.spec.slos[slo]
        return allowed_downtime(spec.target, spec.window)


# Nominal window lengths: 99.95% is then 21.9 minutes a 30.4-day month and 262.8 minutes a year.
WINDOW_MINUTES = {"month": 30.4 * 24 * 60, "quarter": 91.25 * 24 * 60, "year": 365 * 24 * 60}


def allowed_downtime(target: float, window: str) -> float:
    """Minutes of downtime a target (in percent) allows in one nominal window."""
    return round(WINDOW_MINUTES[window] * (100 - target) / 100, 2)


def contains(network: IPv4Network, addr: IPv4Address) -> bool:
    return addr in network and addr not in (network.network_address, network.broadcast_address)
