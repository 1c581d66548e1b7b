"""Each component under Pulumi's mock runtime, on the example-city region and the lab on OpenStack."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from infra.openstack.graph import PlannedResource, ResourceGraph
from infra.openstack.mocks import OfflinePlan, run_offline
from infra.openstack.topology import octavia_rules
from infra.state import RegionOutputs
from inventories.checks import parse_source
from inventories.loader import load_region
from inventories.model import Region
from tests.infra.conftest import OPENSTACK_LAB, offline_config


def site_resources(graph: ResourceGraph, site: str, kind: str) -> list[PlannedResource]:
    return [r for r in graph.of_kind(kind) if graph.placement(r) == f"site:{site}"]


def one(graph: ResourceGraph, kind: str, name: str) -> PlannedResource:
    res = graph.named(kind, name)
    assert res is not None, f"no {kind} {name}"
    return res


# ---- Vpc ---------------------------------------------------------------------------------------

def test_vpc_has_a_subnet_per_model_network_and_a_router(city: Region, city_plan: OfflinePlan) -> None:
    graph = city_plan.graph
    for site_name, site in city.sites.items():
        subnets = {r.inputs["cidr"]: r for r in site_resources(graph, site_name, "Subnet")}
        assert set(subnets) == {str(n.cidr) for n in site.networks.values()}
        for net in site.networks.values():
            assert subnets[str(net.cidr)].inputs["gatewayIp"] == str(city.gateway(net))
        routers = site_resources(graph, site_name, "Router")
        assert len(routers) == 1
        interfaces = site_resources(graph, site_name, "RouterInterface")
        assert {i.inputs["subnetId"] for i in interfaces} == {s.id for s in subnets.values()}
        assert all(i.inputs["routerId"] == routers[0].id for i in interfaces)


def test_router_uses_each_sides_external_network(city_plan: OfflinePlan) -> None:
    lookups = [(args["name"], provider) for token, args, provider in city_plan.calls if token.endswith("getNetwork")]
    assert {name for name, p in lookups if "::public-cloud::" in p} == {"internet"}
    assert {name for name, p in lookups if "::private-cloud::" in p} == {"provider-ext"}


# ---- providers ---------------------------------------------------------------------------------

def test_every_resource_goes_through_its_sides_provider(city: Region, city_plan: OfflinePlan) -> None:
    graph = city_plan.graph
    providers = {r.name: r for r in graph.resources if r.type == "pulumi:providers:openstack"}
    assert set(providers) == {"private-cloud", "public-cloud"}
    assert providers["private-cloud"].inputs.get("cloud") == "city-dc"
    assert providers["public-cloud"].inputs.get("cloud") == "ecs"
    checked = 0
    for res in graph.custom_resources():
        if res.type.startswith("openstack:"):
            place = graph.placement(res)
            if place.startswith("site:"):
                site = city.sites[place.split(":", 1)[1]]
                expected = "public-cloud" if site.kind == "public_cloud" else "private-cloud"
            else:
                expected = f"{place.split(':', 1)[1]}-cloud"
            assert res.provider == expected, res.urn
            checked += 1
    assert checked > 250


# ---- SecurityGroups ----------------------------------------------------------------------------

def expected_flows(region: Region, service: str) -> set[tuple[str, int, str]]:
    """(protocol, port, cidr) straight from the model's rules, computed apart from the program."""
    out = set()
    proto = "udp" if region.services[service].kind == "collector" else "tcp"
    for rule in region.spec.rules.values():
        if rule.to == service:
            for net in parse_source(region, rule.source) or []:
                for port in rule.ports or region.service_ports(service):
                    out.add((proto, port, str(net)))
    return out


def group_rules(graph: ResourceGraph, group: PlannedResource) -> list[PlannedResource]:
    return [r for r in graph.of_kind("SecGroupRule") if r.inputs["securityGroupId"] == group.id]


@pytest.mark.parametrize("site", ["cloud", "city-dc", "ruijin"])
def test_service_groups_hold_exactly_the_models_flows(city: Region, city_plan: OfflinePlan, site: str) -> None:
    graph = city_plan.graph
    services = {s for h in city.sites[site].hosts for s in city.host_services(h)}
    assert services
    for svc in services:
        group = one(graph, "SecGroup", f"{site}-{svc}")
        rules = group_rules(graph, group)
        got = {(r.inputs["protocol"], int(r.inputs["portRangeMin"]), r.inputs["remoteIpPrefix"]) for r in rules}
        # The model's flows, and Octavia's own addresses in the VIP subnet for load-balanced members.
        octavia = {(r.protocol, r.port, str(r.cidr)) for r in octavia_rules(city, svc)}
        assert got == expected_flows(city, svc) | octavia, svc
        assert len(rules) == len(got)  # one rule per flow, port and source: no duplicates
        assert all(r.inputs["direction"] == "ingress" for r in rules)
        assert all(r.inputs["portRangeMin"] == r.inputs["portRangeMax"] for r in rules)


def test_groups_drop_default_rules_and_admin_is_narrow(city: Region, city_plan: OfflinePlan) -> None:
    graph = city_plan.graph
    assert all(g.inputs.get("deleteDefaultRules") is True for g in graph.of_kind("SecGroup"))
    for side in ("private", "public"):
        admin = group_rules(graph, one(graph, "SecGroup", f"{side}-admin"))
        assert {(int(r.inputs["portRangeMin"]), r.inputs["remoteIpPrefix"]) for r in admin} == {(22, "10.40.0.0/24")}
        baseline = group_rules(graph, one(graph, "SecGroup", f"{side}-baseline"))
        to_internet = [r for r in baseline if IPv4Network(r.inputs["remoteIpPrefix"]).prefixlen == 0]
        assert {(r.inputs["direction"], int(r.inputs["portRangeMin"])) for r in to_internet} == {
            ("egress", 80), ("egress", 443)}
        agent = [r for r in baseline if r.inputs["direction"] == "ingress"]
        assert [(int(r.inputs["portRangeMin"]), r.inputs["remoteIpPrefix"]) for r in agent] == [
            (10050, "10.50.3.50/32")]
        egress_nets = [IPv4Network(r.inputs["remoteIpPrefix"]) for r in baseline
                       if r.inputs["direction"] == "egress" and r.inputs.get("protocol") is None]
        for _, _, net in city.networks().values():
            assert any(net.cidr.subnet_of(e) for e in egress_nets), net.cidr


def test_ports_carry_their_hosts_groups_only(city_plan: OfflinePlan) -> None:
    graph = city_plan.graph
    groups = {g.id: g.name for g in graph.of_kind("SecGroup")}
    db_port = one(graph, "Port", "db1-db")
    assert {groups[i] for i in db_port.inputs["securityGroupIds"]} == {"cloud-records-db", "public-admin",
                                                                       "public-baseline"}
    web_port = one(graph, "Port", "web1-dmz")
    assert {groups[i] for i in web_port.inputs["securityGroupIds"]} == {"cloud-front", "public-admin",
                                                                        "public-baseline"}


# ---- HostGroup ---------------------------------------------------------------------------------

def test_instances_ports_and_volumes_follow_the_model(city: Region, city_plan: OfflinePlan) -> None:
    graph = city_plan.graph
    volumes = {v.id: v for v in graph.of_kind("Volume")}
    ports = {p.id: p for p in graph.of_kind("Port")}
    assert len(graph.of_kind("Instance")) == len(city.hosts) == 29
    for name, ref in city.hosts.items():
        inst = one(graph, "Instance", name)
        assert inst.inputs["keyPair"] == f"example-city-{'public' if ref.site.kind == 'public_cloud' else 'private'}"
        inst_ports = [ports[n["port"]] for n in inst.inputs["networks"]]
        fixed = {p.inputs["fixedIps"][0]["ipAddress"] for p in inst_ports}
        assert fixed == {str(a) for a in ref.spec.addresses.values()}
        assert inst_ports[0].inputs["fixedIps"][0]["ipAddress"] == str(ref.primary_address)
        devices = inst.inputs["blockDevices"]
        assert len(devices) == 1 and devices[0]["bootIndex"] == 0  # data disks are attachments
        attached = [volumes[a.inputs["volumeId"]] for a in graph.of_kind("VolumeAttach")
                    if a.inputs["instanceId"] == inst.id]
        sizes = [int(volumes[devices[0]["uuid"]].inputs["size"])] + [int(v.inputs["size"]) for v in attached]
        assert ref.spec.size is not None
        assert sizes == ref.spec.size.disks_gb
        assert "imageId" in volumes[devices[0]["uuid"]].inputs
        assert all(v.inputs["volumeType"] == "encrypted" for v in [volumes[devices[0]["uuid"]], *attached])
        assert f"hostname: {name}\n" in inst.inputs["userData"]
        assert "disable_root: true\n" in inst.inputs["userData"]
        assert inst.inputs.get("availabilityZone") == ref.spec.availability_zone


def test_flavors_are_looked_up_by_size_or_mapped(city_plan: OfflinePlan) -> None:
    """The city's own cloud looks flavors up by exact size; the public side maps sizes to the
    shapes it sells (Pulumi.example-city.yaml), so 48 vCPU/112 GB gets a real flavor."""
    sizes = {(int(a["vcpus"]), int(a["ram"])) for t, a, p in city_plan.calls if t.endswith("getFlavor")}
    assert (4, 8 * 1024) in sizes and (16, 64 * 1024) in sizes
    assert (48, 112 * 1024) not in sizes
    db1 = one(city_plan.graph, "Instance", "db1")
    assert db1.inputs["flavorName"] == "m6.12xlarge.8" and "flavorId" not in db1.inputs
    images = {a["name"] for t, a, _ in city_plan.calls if t.endswith("getImage")}
    assert images == {"debian-12", "oraclelinux-8"}


def test_keypair_gets_the_supplied_public_key(lab_os: Region) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITESTKEY admin@city"
    plan = run_offline(lab_os, offline_config(lab_os, sshPublicKey=key))
    assert {k.inputs["publicKey"] for k in plan.graph.of_kind("Keypair")} == {key}


def test_every_ha_pair_shares_an_anti_affinity_group(city_plan: OfflinePlan) -> None:
    graph = city_plan.graph
    groups = graph.by_id("ServerGroup")
    hint = {i.name: (i.inputs.get("schedulerHints") or [{}])[0].get("group") for i in graph.of_kind("Instance")}
    for a, b in (("web1", "web2"), ("app1", "app2"), ("db1", "db2")):
        assert hint[a] is not None and hint[a] == hint[b]
        assert groups[hint[a]].inputs["policies"] == "anti-affinity"
    assert len({hint["web1"], hint["app1"], hint["db1"]}) == 3
    assert hint["city-db1"] is None and hint["ora1"] is None and hint["zbx1"] is None


# ---- LoadBalancer ------------------------------------------------------------------------------

def test_lb_chain_is_strictly_sequential(lab_plan: OfflinePlan, lab_os: Region) -> None:
    """lab front: two listeners (443, 80) -> each step depends on the previous one."""
    graph = lab_plan.graph
    lb = one(graph, "LoadBalancer", "front-lb")
    assert lb.inputs["vipAddress"] == "10.231.2.100"
    chain: list[PlannedResource] = [lb]
    for port in (443, 80):
        listener = one(graph, "Listener", f"front-{port}")
        pool = one(graph, "Pool", f"front-{port}")
        members = one(graph, "Members", f"front-{port}")
        monitor = one(graph, "Monitor", f"front-{port}")
        assert listener.inputs["loadbalancerId"] == lb.id and int(listener.inputs["protocolPort"]) == port
        assert pool.inputs["listenerId"] == listener.id
        assert members.inputs["poolId"] == pool.id and monitor.inputs["poolId"] == pool.id
        chain += [listener, pool, members, monitor]
        assert {(m["address"], int(m["protocolPort"])) for m in members.inputs["members"]} == {
            ("10.231.2.10", port), ("10.231.2.11", port)}
    fip = one(graph, "FloatingIp", "front-fip")
    chain.append(fip)
    for before, after in itertools.pairwise(chain):
        assert graph.depends(after, before), f"{after.name} does not wait for {before.name}"
    # The floating IP sits on the VIP port the cloud created for the load balancer.
    assert fip.inputs["portId"] == lb.inputs["vipPortId"]
    assert lab_plan.public_addresses["front"].startswith("203.0.113.")


def test_monitor_follows_the_model_pool(lab_plan: OfflinePlan, city_plan: OfflinePlan) -> None:
    https = one(lab_plan.graph, "Monitor", "front-443")
    assert https.inputs["type"] == "TLS-HELLO"
    http = one(lab_plan.graph, "Monitor", "front-80")
    assert http.inputs["type"] == "HTTP" and http.inputs["urlPath"] == "/"
    # lab pool: max_fails 2 in 5 s -> probe every 3 s, down after 2 failures.
    assert (int(http.inputs["delay"]), int(http.inputs["maxRetriesDown"])) == (3, 2)
    assert int(http.inputs["timeout"]) < int(http.inputs["delay"])
    city_mon = one(city_plan.graph, "Monitor", "front-443")
    assert (int(city_mon.inputs["delay"]), int(city_mon.inputs["maxRetriesDown"])) == (4, 3)


# ---- ObjectStorage -----------------------------------------------------------------------------

def test_public_buckets_are_s3_with_retention_lifecycle(city_plan: OfflinePlan) -> None:
    buckets = {b.inputs["bucket"]: b.inputs for b in city_plan.graph.of_kind("s3-bucket")}
    assert set(buckets) == {"example-city-offsite-backups", "example-city-pacs-images"}
    backups = buckets["example-city-offsite-backups"]
    assert backups["versioning"] is True and backups["encryption"] == "AES256"
    assert backups["objectLock"] is True and int(backups["objectLockDays"]) == 14
    assert int(backups["lifecycle"]["expirationDays"]) == 1831
    assert backups["endpoint"] == "https://obs.example-city.invalid"  # from the stack file
    images = buckets["example-city-pacs-images"]
    assert images["lifecycle"].get("expirationDays") is None and int(images["lifecycle"]["noncurrentDays"]) == 90
    assert not city_plan.graph.of_kind("Container")


def test_private_side_buckets_are_swift_containers(make_region: Callable[..., Path]) -> None:
    path = make_region("lab", [*OPENSTACK_LAB, ("services.yml", "site: cloud", "site: local-dc")])
    region = load_region(str(path))
    plan = run_offline(region, offline_config(region))
    containers = {c.inputs["name"]: c for c in plan.graph.of_kind("Container")}
    assert set(containers) == {"lab-offsite-backups", "lab-pacs-images"}
    assert all(c.inputs["versioning"] is True for c in containers.values())
    assert all(plan.graph.placement(c) == "site:local-dc" for c in containers.values())
    assert not plan.graph.of_kind("s3-bucket")


# ---- outputs -----------------------------------------------------------------------------------

def test_outputs_are_a_valid_region_outputs_document(city: Region, city_plan: OfflinePlan) -> None:
    doc = RegionOutputs.model_validate(city_plan.outputs)
    assert doc.provider == "openstack" and doc.region == "example-city"
    assert set(doc.hosts) == set(city.hosts)
    instances = {i.name: i.id for i in city_plan.graph.of_kind("Instance")}
    for name, out in doc.hosts.items():
        assert out.ssh_address == city.hosts[name].primary_address
        assert out.provider_id == instances[name]
        assert out.site == city.hosts[name].site_name
    assert {k: str(v) for k, v in doc.vips.items()} == {"front": "10.50.0.100"}
    assert doc.s3 is not None and doc.s3.buckets == {"offsite-backups": "example-city-offsite-backups",
                                                     "pacs-images": "example-city-pacs-images"}


# ---- the whole region --------------------------------------------------------------------------

def test_example_city_resource_counts(city: Region, city_plan: OfflinePlan) -> None:
    counts = city_plan.graph.counts()
    assert counts["Instance"] == 29
    assert counts["Network"] == counts["Subnet"] == counts["RouterInterface"] == 4 + 4 + 18
    assert counts["Router"] == 20
    assert counts["Port"] == 3 * 2 + 8 * 2 - 1 + 18  # zbx1 has one network
    assert counts["ServerGroup"] == 3
    assert counts["Keypair"] == 2
    assert (counts["LoadBalancer"], counts["Listener"], counts["Pool"], counts["Monitor"]) == (1, 1, 1, 1)
    assert counts["s3-bucket"] == 2
    assert counts["Volume"] == sum(len(h.spec.size.disks_gb) for h in city.hosts.values() if h.spec.size) == 55
