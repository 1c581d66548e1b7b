"""Level-3 (GB/T 22239-2019) and HA rules, checked as plain Python over the resource graph.

The same functions run in two places: after the offline preview (over the mock runtime's
graph), and inside the CrossGuard policy pack (`policypack.py`) that `hcops infra preview/up`
hand to the Pulumi engine, over the engine's own view of the stack. Each finding names the rule
and the resource (its logical name and URN), so a reviewer can find the line that caused it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from ipaddress import ip_network

from infra.openstack.graph import PlannedResource, ResourceGraph
from infra.openstack.topology import ha_sets, sensitive_ports
from inventories.model import Region


@dataclass(frozen=True)
class Finding:
    rule: str
    resource: str
    urn: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource}: {self.message}"


@dataclass(frozen=True)
class PolicyContext:
    """What the rules need besides the graph: facts from the model and the cloud's names."""

    sensitive_ports: frozenset[int]
    ha_sets: tuple[tuple[str, tuple[str, ...]], ...]
    encrypted_volume_types: frozenset[str]

    @classmethod
    def from_region(cls, region: Region, encrypted_volume_types: frozenset[str]) -> PolicyContext:
        return cls(sensitive_ports(region), tuple((h.service, h.hosts) for h in ha_sets(region)),
                   encrypted_volume_types)


Rule = Callable[[ResourceGraph, PolicyContext], Iterator[Finding]]


def _finding(rule: str, res: PlannedResource, message: str) -> Finding:
    return Finding(rule, res.name, res.urn, message)


def _open_to_all(res: PlannedResource) -> bool:
    """Open to the internet: no source at all, or a prefix reaching into public address space
    wider than one /24 (0.0.0.0/1 is half the internet, not a named source)."""
    prefix = res.inputs.get("remoteIpPrefix")
    if not prefix:
        return not res.inputs.get("remoteGroupId") and not res.inputs.get("remoteAddressGroupId")
    try:
        net = ip_network(str(prefix), strict=False)
    except ValueError:
        return True  # unparseable: the cloud would refuse it anyway; never pass it silently
    return net.prefixlen == 0 or (not net.is_private and net.prefixlen < 24)


def no_sensitive_port_open_to_internet(graph: ResourceGraph, ctx: PolicyContext) -> Iterator[Finding]:
    """No ingress rule opens a database or admin port to 0.0.0.0/0 (or to anyone at all)."""
    for res in graph.of_kind("SecGroupRule"):
        if res.inputs.get("direction") != "ingress" or not _open_to_all(res):
            continue
        low, high = res.inputs.get("portRangeMin"), res.inputs.get("portRangeMax")
        if low is None or high is None or not res.inputs.get("protocol"):
            exposed = sorted(ctx.sensitive_ports)  # every port
        else:
            exposed = sorted(p for p in ctx.sensitive_ports if int(low) <= p <= int(high))
        if exposed:
            yield _finding("no-db-or-admin-port-open-to-internet", res,
                           f"ingress open to 0.0.0.0/0 covers database/admin port(s) {exposed}; "
                           "allow only the networks that need them")


def ha_pairs_anti_affine(graph: ResourceGraph, ctx: PolicyContext) -> Iterator[Finding]:
    """Both hosts of every HA pair sit in one server group whose policy is anti-affinity."""
    groups = graph.by_id("ServerGroup")
    instances = {str(r.inputs.get("name", r.name)): r for r in graph.of_kind("Instance")}
    for service, hosts in ctx.ha_sets:
        placed: dict[str, str | None] = {}
        for host in hosts:
            inst = instances.get(host)
            if inst is None:
                continue
            hints = inst.inputs.get("schedulerHints") or []
            group_id = next((str(h["group"]) for h in hints if h.get("group")), None)
            group = groups.get(group_id or "")
            policies = group.inputs.get("policies") if group is not None else None
            # Exactly `anti-affinity`: `soft-anti-affinity` lets Nova put both on one hypervisor.
            strict = policies in ("anti-affinity", ["anti-affinity"])
            if group is None or not strict:
                yield _finding("ha-pair-anti-affinity", inst,
                               f"{host} (HA set of {service}: {', '.join(hosts)}) is in no (hard) "
                               f"anti-affinity server group (policy {policies!r}); both copies could land "
                               "on one hypervisor")
                placed[host] = None
            else:
                placed[host] = group_id
        ids = {g for g in placed.values() if g}
        if len(ids) > 1:
            inst = instances[hosts[0]]
            yield _finding("ha-pair-anti-affinity", inst,
                           f"HA set of {service} ({', '.join(hosts)}) is split over {len(ids)} server groups; "
                           "anti-affinity only separates members of the same group")


def pools_have_health_monitor(graph: ResourceGraph, ctx: PolicyContext) -> Iterator[Finding]:
    """Every Octavia pool has a health monitor, or a dead member keeps receiving traffic."""
    monitored = {str(m.inputs.get("poolId")) for m in graph.of_kind("Monitor")}
    for pool in graph.of_kind("Pool"):
        if pool.id not in monitored:
            yield _finding("pool-health-monitor", pool, "pool has no health monitor; a failed member "
                           "would keep receiving requests")


def volumes_encrypted(graph: ResourceGraph, ctx: PolicyContext) -> Iterator[Finding]:
    """Every volume, and every volume an instance creates itself, uses an encrypted volume type."""
    allowed = ctx.encrypted_volume_types
    for vol in graph.of_kind("Volume"):
        vtype = vol.inputs.get("volumeType")
        if vtype not in allowed:
            yield _finding("volume-encrypted-type", vol,
                           f"volume type {vtype!r} is not an encrypted type ({', '.join(sorted(allowed))})")
    for inst in graph.of_kind("Instance"):
        for i, dev in enumerate(inst.inputs.get("blockDevices") or []):
            creates = dev.get("destinationType") == "volume" and dev.get("sourceType") != "volume"
            if creates and dev.get("volumeType") not in allowed:
                yield _finding("volume-encrypted-type", inst,
                               f"block device {i} creates a volume of type {dev.get('volumeType')!r}, "
                               "not an encrypted type")


def buckets_versioned_with_lifecycle(graph: ResourceGraph, ctx: PolicyContext) -> Iterator[Finding]:
    """Every S3 bucket is versioned and has a lifecycle; every Swift container is versioned.

    (Swift has no container lifecycle: expiry is per object and hcops' DR retention prunes.)"""
    for bucket in graph.of_kind("s3-bucket"):
        if not bucket.inputs.get("versioning"):
            yield _finding("bucket-versioned", bucket, "bucket is not versioned; an overwrite or delete "
                           "loses the previous copy")
        if not bucket.inputs.get("lifecycle"):
            yield _finding("bucket-lifecycle", bucket, "bucket has no lifecycle rule; old versions and "
                           "expired backups would be kept (and billed) forever")
        if not bucket.inputs.get("encryption"):
            yield _finding("bucket-encrypted", bucket, "bucket has no default encryption")
    for container in graph.of_kind("Container"):
        if not container.inputs.get("versioning") and not container.inputs.get("versioningLegacy"):
            yield _finding("bucket-versioned", container, "container is not versioned")


def public_listeners_tls(graph: ResourceGraph, ctx: PolicyContext) -> Iterator[Finding]:
    """A listener on a load balancer reachable from the internet (a floating IP on its VIP port)
    speaks TLS (HTTPS pass-through or TERMINATED_HTTPS), never plain HTTP or TCP (8.1.2.2)."""
    fip_ports = {str(f.inputs.get("portId")) for f in graph.of_kind("FloatingIp")}
    public_lbs = {lb.id for lb in graph.of_kind("LoadBalancer") if str(lb.inputs.get("vipPortId")) in fip_ports}
    for lst in graph.of_kind("Listener"):
        if str(lst.inputs.get("loadbalancerId")) in public_lbs and \
                str(lst.inputs.get("protocol")) not in ("HTTPS", "TERMINATED_HTTPS"):
            yield _finding("public-listener-tls", lst, f"public listener speaks {lst.inputs.get('protocol')} on port "
                           f"{lst.inputs.get('protocolPort')}; use HTTPS (TLS to nginx) or TERMINATED_HTTPS")


def provider_verifies_tls(graph: ResourceGraph, ctx: PolicyContext) -> Iterator[Finding]:
    """No provider skips certificate checks: `insecure` hands the cloud credentials to anyone in
    the middle."""
    for prov in graph.resources:
        if prov.type == "pulumi:providers:openstack" and prov.inputs.get("insecure") in (True, "true"):
            yield _finding("provider-not-insecure", prov, "provider has `insecure: true`; give it the cloud's CA "
                           "(`cacertFile`) instead")


def no_root_ssh_login(graph: ResourceGraph, ctx: PolicyContext) -> Iterator[Finding]:
    """Administrators log in as named accounts with sudo, never as root (8.1.4.1): first-boot
    settings must lock root's SSH login."""
    for inst in graph.of_kind("Instance"):
        data = str(inst.inputs.get("userData") or "")
        if data and not data.startswith("#cloud-config"):
            continue  # the provider keeps a hash of user_data in its state: nothing to read there
        if "disable_root: true" not in data:
            yield _finding("no-root-ssh-login", inst, "first-boot settings leave root's SSH key login open; "
                           "set `disable_root: true` and log in as the named admin")


def ha_pairs_spread_over_zones(graph: ResourceGraph, ctx: PolicyContext) -> Iterator[Finding]:
    """The hosts of an HA set sit in different availability zones: anti-affinity keeps them off
    one hypervisor, only zones keep them out of one room's power and network."""
    instances = {str(r.inputs.get("name", r.name)): r for r in graph.of_kind("Instance")}
    for service, hosts in ctx.ha_sets:
        placed = [(h, instances[h]) for h in hosts if h in instances]
        zones: dict[str, list[str]] = {}
        for host, inst in placed:
            zones.setdefault(str(inst.inputs.get("availabilityZone") or "(default zone)"), []).append(host)
        for zone, members in zones.items():
            if len(members) > 1:
                yield _finding("ha-pair-availability-zones", instances[members[1]],
                               f"HA set of {service}: {', '.join(members)} all in {zone}; give each host its own "
                               "`availability_zone` in the model")


RULES: tuple[Rule, ...] = (
    no_sensitive_port_open_to_internet,
    ha_pairs_anti_affine,
    pools_have_health_monitor,
    volumes_encrypted,
    buckets_versioned_with_lifecycle,
    public_listeners_tls,
    provider_verifies_tls,
    no_root_ssh_login,
    ha_pairs_spread_over_zones,
)
# Rule id (as findings name it) -> rule, for the CrossGuard pack's policy names.
RULE_NAMES: dict[str, Rule] = {
    "no-db-or-admin-port-open-to-internet": no_sensitive_port_open_to_internet,
    "ha-pair-anti-affinity": ha_pairs_anti_affine,
    "pool-health-monitor": pools_have_health_monitor,
    "volume-encrypted-type": volumes_encrypted,
    "bucket-versioned-lifecycle-encrypted": buckets_versioned_with_lifecycle,
    "public-listener-tls": public_listeners_tls,
    "provider-not-insecure": provider_verifies_tls,
    "no-root-ssh-login": no_root_ssh_login,
    "ha-pair-availability-zones": ha_pairs_spread_over_zones,
}


def check(graph: ResourceGraph, ctx: PolicyContext) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(graph, ctx)]

