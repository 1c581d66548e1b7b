"""Every name, address and path of a lab, derived from the region model and nothing else.

`up`, `down`, `status` and the control functions all compute the same `Layout`, so a crashed
run leaves nothing that a later `down` cannot name. Kernel object names are short (<= 15
characters) and carry a hash of region/site/network, so two regions' labs never collide;
each link made also carries an alias `hcops:<region>:...` that `down` searches for as a
second net.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from infra.state import region_state_dir
from inventories.errors import HcopsError
from inventories.model import Region
from inventories.schema import ObjectStorage

IFNAMSIZ = 15
PROXY_PORT = 3128  # tinyproxy on the host's address in each site network (no model fact: lab-only plumbing)
LAB_RANGE = IPv4Network("10.231.0.0/16")  # the only addresses the lab may use (network rule)


def _h(*parts: str, n: int = 4) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


def _ifname(prefix: str, digest: str, label: str) -> str:
    name = f"{prefix}{digest}-{label}"[:IFNAMSIZ]
    return name.rstrip("-")


@dataclass(frozen=True)
class BridgeSpec:
    """A site network as a Linux bridge; the host holds its last usable address."""

    key: str  # "site.net"
    site: str
    net: str
    name: str
    cidr: IPv4Network
    gateway: IPv4Address
    host_address: IPv4Address
    table: int  # policy-routing table for traffic the host sends from host_address

    @property
    def alias(self) -> str:
        return f"bridge {self.key}"


@dataclass(frozen=True)
class RouterPort:
    """One leg of a link router: a veth whose outer end joins a site bridge."""

    bridge: BridgeSpec
    outer: str  # in the root namespace, enslaved to the bridge
    inner: str  # in the router namespace, holds the network's gateway address


@dataclass(frozen=True)
class LinkSpec:
    """A dedicated line as a router namespace with a rate cap on each of its ports."""

    name: str
    netns: str
    sites: tuple[str, str]
    bandwidth_mbit: int
    latency_ms: float
    ports: tuple[RouterPort, ...]


@dataclass(frozen=True)
class HostSpec:
    name: str
    site: str
    machine: str
    address: IPv4Address
    bridge: BridgeSpec
    dir: Path

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def archives(self) -> Path:
        """The host's own apt downloads (upper layer over the shared .deb cache)."""
        return self.dir / "apt-archives"

    @property
    def pidfile(self) -> Path:
        return self.dir / "nspawn.pid"

    @property
    def log(self) -> Path:
        return self.dir / "console.log"


@dataclass(frozen=True)
class S3Spec:
    service: str
    bridge: BridgeSpec
    port: int
    buckets: dict[str, tuple[bool, bool]] = field(default_factory=dict)  # name -> (versioning, object_lock)

    @property
    def endpoint(self) -> str:
        return f"http://{self.bridge.host_address}:{self.port}"


class Layout:
    """The lab of one region: bridges, links, hosts, proxies, S3 endpoint and state paths."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self.name = region.name
        self.state = region_state_dir(region.name)
        self._check()

    def _check(self) -> None:
        for key, (_site, _net, net) in self.region.networks().items():
            if not net.cidr.subnet_of(LAB_RANGE):
                raise HcopsError(f"lab network {key} ({net.cidr}) is outside the lab range {LAB_RANGE}",
                                 f"give lab networks addresses inside {LAB_RANGE}")
            if net.cidr.num_addresses < 8:
                raise HcopsError(f"lab network {key} ({net.cidr}) is too small",
                                 "use at least a /29 (gateway, hosts and the host's own address)")
        for ref in self.region.hosts.values():
            if ref.site.provider != "lab":
                continue
            if len(ref.spec.addresses) != 1:
                raise HcopsError(f"lab host {ref.name} has {len(ref.spec.addresses)} addresses",
                                 "the lab provider gives each host one network; keep one address per lab host")
            bridge = self.bridges[f"{ref.site_name}.{next(iter(ref.spec.addresses))}"]
            if ref.spec.addresses[next(iter(ref.spec.addresses))] in (bridge.gateway, bridge.host_address):
                raise HcopsError(f"host {ref.name} uses a reserved address of {bridge.key}",
                                 f"{bridge.gateway} is the gateway and {bridge.host_address} the lab machine's own")
        seen: dict[str, str] = {}
        for link in self.links.values():
            for site in link.sites:
                if site in seen:
                    raise HcopsError(f"site {site} is on two links ({seen[site]}, {link.name})",
                                     "the lab provider joins each site to at most one link")
                seen[site] = link.name

    @cached_property
    def bridges(self) -> dict[str, BridgeSpec]:
        out: dict[str, BridgeSpec] = {}
        for key, (site, net_name, net) in self.region.networks().items():
            if self.region.sites[site].provider != "lab":
                continue
            digest = _h(self.name, site, net_name)
            out[key] = BridgeSpec(
                key=key, site=site, net=net_name, name=_ifname("hc", digest, site),
                cidr=net.cidr, gateway=self.region.gateway(net),
                host_address=net.cidr.broadcast_address - 1,
                table=10000 + int(digest, 16) % 50000,
            )
        return out

    @cached_property
    def links(self) -> dict[str, LinkSpec]:
        out: dict[str, LinkSpec] = {}
        for name, link in self.region.links.items():
            a, b = link.between
            if self.region.sites[a].provider != "lab" or self.region.sites[b].provider != "lab":
                continue
            ports = tuple(
                RouterPort(bridge=br, outer=_ifname("hv", _h(self.name, name, br.key), br.site),
                           inner=f"r-{br.site[:8]}-{br.net[:4]}".rstrip("-"))
                for br in self.bridges.values() if br.site in (a, b)
            )
            out[name] = LinkSpec(name=name, netns=f"hcops-{self.name}-{name}", sites=(a, b),
                                 bandwidth_mbit=link.bandwidth_mbit, latency_ms=link.latency_ms, ports=ports)
        return out

    @cached_property
    def hosts(self) -> dict[str, HostSpec]:
        out: dict[str, HostSpec] = {}
        for name, ref in self.region.hosts.items():
            if ref.site.provider != "lab":
                continue
            net, addr = next(iter(ref.spec.addresses.items()))
            out[name] = HostSpec(name=name, site=ref.site_name, machine=f"{self.name}-{name}", address=addr,
                                 bridge=self.bridges[f"{ref.site_name}.{net}"], dir=self.state / "hosts" / name)
        return out

    @cached_property
    def s3(self) -> S3Spec | None:
        for name, svc in self.region.services.items():
            if not isinstance(svc, ObjectStorage) or svc.site not in self.region.sites:
                continue
            site_bridges = [b for b in self.bridges.values() if b.site == svc.site]
            if not site_bridges:
                continue
            nets = self.region.sites[svc.site].networks
            site_bridges.sort(key=lambda b: nets[b.net].purpose != "storage")
            return S3Spec(service=name, bridge=site_bridges[0], port=svc.port,
                          buckets={b: (spec.versioning, spec.object_lock) for b, spec in svc.buckets.items()})
        return None

    def host(self, name: str) -> HostSpec:
        if name not in self.hosts:
            raise HcopsError(f"unknown host {name!r} in region {self.name}",
                             f"choose one of: {', '.join(self.hosts)}")
        return self.hosts[name]

    def link(self, name: str) -> LinkSpec:
        if name not in self.links:
            raise HcopsError(f"unknown link {name!r} in region {self.name}",
                             f"choose one of: {', '.join(self.links) or '(the region has no lab links)'}")
        return self.links[name]

    @property
    def alias_prefix(self) -> str:
        return f"hcops:{self.name}:"

    @property
    def automation_account(self) -> str:
        """The login of Ansible, hcops and the tests (sudo to root); root itself cannot log in."""
        return self.region.spec.region.automation_account

    # state paths
    @property
    def ssh_dir(self) -> Path:
        return self.state / "ssh"

    @property
    def ssh_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.ssh_dir / "config"

    @property
    def run_dir(self) -> Path:
        return self.state / "run"

    @property
    def nft_table(self) -> str:
        return f"hcops_{self.name.replace('-', '_')}"

    @property
    def journal(self) -> Path:
        return self.state / "lab.json"
