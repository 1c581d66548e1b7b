"""Issue #13, defects 1-12: what a real `pulumi up` would have hit, each pinned by a test that
failed on the code before the fix (the mock runtime used to accept all of it)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.openstack import automation, ops
from infra.openstack.config import ProgramSettingsError, build_config
from infra.openstack.graph import PlannedResource, ResourceGraph
from infra.openstack.mocks import OFFLINE_PROJECT, CloudMocks, OfflinePlan, run_offline
from infra.openstack.mocks import _mock_id as mock_id
from infra.openstack.quota import QuotaExceeded, owned_from_deployment
from infra.openstack.topology import anti_affinity_groups, demand
from infra.providers import InfraOptions
from infra.state import RegionOutputs, outputs_path, write_outputs
from inventories.errors import HcopsError, RegionInvalid
from inventories.loader import load_region
from inventories.model import Region
from tests.conftest import CliResult
from tests.infra.conftest import OPENSTACK_LAB, offline_config

Hcops = Callable[..., CliResult]


def one(graph: ResourceGraph, kind: str, name: str) -> PlannedResource:
    res = graph.named(kind, name)
    assert res is not None, f"no {kind} {name}"
    return res


def by_id(graph: ResourceGraph) -> dict[str, PlannedResource]:
    return {r.id: r for r in graph.resources if r.id}


# 1 ------------------------------------------------------------------------------------------------

def test_1_limits_are_asked_for_the_auth_scopes_project(lab_os: Region) -> None:
    plan = run_offline(lab_os, offline_config(lab_os, quotaPreflight=True))
    asked = [a for t, a, _ in plan.calls if t.endswith("getLimitsV2")]
    assert len(asked) == 2 and all(a.get("projectId") == OFFLINE_PROJECT for a in asked)
    assert [t for t, _, _ in plan.calls if t.endswith("getAuthScope")]
    assert plan.schema_findings == []


# 2 ------------------------------------------------------------------------------------------------

def test_2_a_second_up_does_not_count_its_own_servers(lab_os: Region) -> None:
    # The mocks give both sides one quota: the larger side's demand, all of it used by the stack itself.
    need = max((demand(lab_os, s) for s in ("public", "private")), key=lambda d: d.vcpu)
    full = {"maxTotalCores": need.vcpu, "totalCoresUsed": need.vcpu,
            "maxTotalInstances": need.instances, "totalInstancesUsed": need.instances}
    with pytest.raises(QuotaExceeded, match="vCPU: need"):
        run_offline(lab_os, offline_config(lab_os, quotaPreflight=True), CloudMocks(limits=full))
    deployment = {"resources": [
        {"type": "openstack:compute/instance:Instance", "inputs": {"name": h},
         "provider": f"urn:pulumi:lab::hcops::pulumi:providers:openstack::{side}-cloud::abc"}
        for side, site in (("public", "cloud"), ("private", "local-dc")) for h in lab_os.sites[site].hosts]}
    owned = owned_from_deployment(lab_os, deployment)
    assert owned["public"]["vcpu"] == demand(lab_os, "public").vcpu
    assert owned["private"]["instances"] == len(lab_os.sites["local-dc"].hosts)
    run_offline(lab_os, offline_config(lab_os, quotaPreflight=True, owned=owned), CloudMocks(limits=full))


# 3 ------------------------------------------------------------------------------------------------

def test_3_neutron_and_cinder_quotas_are_checked_before_anything(city: Region) -> None:
    private = demand(city, "private")
    assert (private.routers, private.volumes, private.volume_gb) == (19, 41, 19840)
    assert private.security_groups >= 21
    mocks = CloudMocks(network_quota={"router": 10, "securityGroup": 10},  # Neutron's and Cinder's defaults
                       volume_quota={"volumes": 10, "gigabytes": 1000})
    with pytest.raises(QuotaExceeded) as err:
        run_offline(city, offline_config(city, quotaPreflight=True), mocks)
    msg = str(err.value)
    assert "routers (Neutron limit): need 19, 10 free" in msg
    assert f"security groups (Neutron limit): need {private.security_groups}, 10 free" in msg
    assert "volumes (Cinder limit): need 41, 10 free" in msg and "volume GB (Cinder limit): need 19840" in msg
    assert [t for t in mocks.created if not t.startswith("hcops:")] == ["pulumi:providers:openstack"] * 2


# 4 ------------------------------------------------------------------------------------------------

def test_4_a_size_without_a_flavor_is_named(lab_os: Region) -> None:
    cfg = offline_config(lab_os, publicCloud={"flavors": {"1c2g": "s6.small.1"}, "flavorLookup": "map"})
    with pytest.raises(ProgramSettingsError) as err:
        run_offline(lab_os, cfg)
    assert "no flavor for size(s)" in err.value.message
    sizes = {(h.spec.size.vcpu, h.spec.size.ram_gb) for h in lab_os.hosts.values()
             if h.site_name == "cloud" and h.spec.size} - {(1, 2)}
    for vcpu, ram in sizes:
        assert f"{vcpu} vCPU/{ram} GB" in err.value.message
    assert "hcops:publicCloud.flavors" in err.value.hint


def test_4_real_runs_map_sizes_by_default() -> None:
    assert build_config("x", {"sshPublicKey": "k"}, offline=False).side("public").flavor_lookup == "map"


# 5 ------------------------------------------------------------------------------------------------

def test_5_replacements_can_succeed(city: Region, city_plan: OfflinePlan) -> None:
    graph = city_plan.graph
    for host in city.hosts:
        inst = one(graph, "Instance", host)
        assert "userData" in inst.ignore_changes and inst.delete_before_replace
        assert one(graph, "Volume", f"{host}-boot").ignore_changes == ("imageId",)
        assert all(one(graph, "Port", f"{host}-{n}").delete_before_replace for n in city.hosts[host].spec.addresses)
    attach = [a for a in graph.of_kind("VolumeAttach") if a.name.startswith("db1-")]
    assert [a.name for a in attach] == ["db1-data1"]
    names = {g.name for g in anti_affinity_groups(city)}
    assert names == {"example-city-ha-app1", "example-city-ha-db1", "example-city-ha-web1"}


def test_5_pinned_image_ids_are_used(lab_os: Region) -> None:
    plan = run_offline(lab_os, offline_config(lab_os, publicCloud={"imageIds": {"debian12": "img-pinned"}}))
    cloud_boot = [v for v in plan.graph.of_kind("Volume") if v.name.endswith("-boot")
                  and v.name.removesuffix("-boot") in lab_os.sites["cloud"].hosts]
    assert cloud_boot and all(v.inputs["imageId"] == "img-pinned" for v in cloud_boot)


# 6 ------------------------------------------------------------------------------------------------

def test_6_routes_between_sites_follow_the_links(city_plan: OfflinePlan) -> None:
    graph = city_plan.graph
    routers = {r.id: r.name for r in graph.of_kind("Router")}
    routes: dict[str, set[tuple[str, str]]] = {}
    for r in graph.of_kind("RouterRoute"):
        routes.setdefault(routers[r.inputs["routerId"]], set()).add((r.inputs["destinationCidr"], r.inputs["nextHop"]))
    # A county reaches the city DC and the cloud through its collector, which carries the tunnel.
    assert routes["anyuan-router"] == {("10.40.0.0/22", "10.100.8.10"), ("10.50.0.0/22", "10.100.8.10")}
    # The city DC reaches each county and the cloud through city-fe1 (its `gateway` host).
    assert ("10.100.8.0/21", "10.40.0.10") in routes["city-dc-router"]
    assert ("10.50.0.0/22", "10.40.0.10") in routes["city-dc-router"]
    # The cloud reaches the city and the counties through the line gateway of the stack file.
    assert ("10.40.0.0/22", "10.50.3.5") in routes["cloud-router"]
    # A forwarding host may send packets from the networks it carries (Neutron anti-spoofing).
    pairs = {p["ipAddress"] for p in one(graph, "Port", "anyuan-fe1-lan").inputs["allowedAddressPairs"]}
    assert pairs == {"10.40.0.0/22", "10.50.0.0/22"}


# 7 ------------------------------------------------------------------------------------------------

def test_7_every_replica_reaches_its_primary(city: Region, city_plan: OfflinePlan,
                                              make_region: Callable[..., Path]) -> None:
    rules = [r for r in city_plan.graph.of_kind("SecGroupRule") if r.name.startswith("cloud-records-db-")]
    assert any(r.inputs["remoteIpPrefix"] == "10.40.2.0/24" and r.inputs["portRangeMin"] == 3306 for r in rules)
    broken = make_region("example-city", [("security.yml", "    from: city-dc.db\n    to: records-db",
                                           "    from: city-dc.app\n    to: records-db")])
    with pytest.raises(RegionInvalid) as err:
        load_region(str(broken))
    assert len(err.value.errors) == 1
    assert "replica city-db1 (10.40.2.11) cannot reach its primary db1 on 3306" in err.value.render()
    assert "fix: add a rule `from: city-dc.db` `to: records-db`" in err.value.render()


# 8 ------------------------------------------------------------------------------------------------

def test_8_ports_fips_and_lb_wait_for_what_they_need(city: Region, city_plan: OfflinePlan) -> None:
    graph = city_plan.graph
    urns = {r.urn: r for r in graph.resources}
    ifaces = {r.inputs["subnetId"]: r.urn for r in graph.of_kind("RouterInterface")}
    for port in graph.of_kind("Port"):
        assert ifaces[port.inputs["fixedIps"][0]["subnetId"]] in port.depends_on, port.name
    lb = one(graph, "LoadBalancer", "front-lb")
    fip = one(graph, "FloatingIp", "front-fip")
    assert ifaces[lb.inputs["vipSubnetId"]] in fip.depends_on
    hosts = {urns[u].name for u in lb.depends_on if u in urns and urns[u].kind == "Instance"}
    assert hosts == {"web1", "web2"}
    members = one(graph, "Members", "front-443")
    assert {"web1", "web2"} <= {urns[u].name for u in members.depends_on if u in urns}


# 9 ------------------------------------------------------------------------------------------------

def test_9_octavia_reaches_the_members_from_the_vip_subnet(city_plan: OfflinePlan) -> None:
    front = [r for r in city_plan.graph.of_kind("SecGroupRule") if r.name.startswith("cloud-front-octavia-")]
    assert [(r.inputs["portRangeMin"], r.inputs["remoteIpPrefix"]) for r in front] == [(443, "10.50.0.0/24")]


# 10 -----------------------------------------------------------------------------------------------

def test_10_dns_and_ntp_outside_the_region_are_allowed_out(city_plan: OfflinePlan) -> None:
    graph = city_plan.graph
    groups = {g.id: g.name for g in graph.of_kind("SecGroup")}
    out = {(groups[r.inputs["securityGroupId"]], r.inputs["protocol"], int(r.inputs["portRangeMin"]),
            r.inputs["remoteIpPrefix"]) for r in graph.of_kind("SecGroupRule")
           if r.inputs["direction"] == "egress" and r.inputs.get("portRangeMin") in (53, 123)}
    dns, ntp = "100.125.1.250/32", "100.125.1.251/32"
    # The city's own DNS/NTP are inside the region, so only the public cloud's get rules.
    assert out == {("public-baseline", "udp", 53, dns), ("public-baseline", "tcp", 53, dns),
                   ("public-baseline", "udp", 123, ntp)}


# 11 -----------------------------------------------------------------------------------------------

def test_11_checks_before_up_read_the_stack_file(city_plan: OfflinePlan) -> None:
    """`city_plan` is `ops.offline_check`'s plan, the one `up` checks before it asks anything."""
    assert one(city_plan.graph, "Instance", "db1").inputs["flavorName"] == "m6.12xlarge.8"
    assert city_plan.schema_findings == []


@pytest.mark.parametrize("command", ["down", "status"])
def test_11_down_and_status_take_the_backend(hcops: Hcops, lab_os_dir: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    args = ["--yes"] if command == "down" else []
    result = hcops("infra", command, "--region", str(lab_os_dir), "--backend-url", f"file://{tmp_path}", *args)
    assert result.code == 1, result.stderr  # not 64: the option exists
    assert ("pulumi CLI is not installed" if command == "down" else "has not been provisioned") in result.stderr


class FakeStack:
    name = "lab"

    def __init__(self, resources: list[dict[str, Any]]) -> None:
        self.resources, self.destroyed = resources, False

    def export_stack(self) -> Any:
        return type("D", (), {"deployment": {"resources": self.resources}})()

    def destroy(self, on_output: Any = None) -> Any:
        self.destroyed = True
        return type("R", (), {"summary": type("S", (), {"resource_changes": {"delete": len(self.resources)}})()})()

    def info(self) -> None:
        return None


def test_11_destroy_of_an_empty_stack_fails_and_keeps_the_outputs(lab_os: Region, city_plan: OfflinePlan,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stack = FakeStack([])
    calls: list[bool] = []
    monkeypatch.setattr(automation, "pulumi_command", lambda: None)

    def select(region: Region, opts: InfraOptions, program: Any, *, create: bool = True) -> FakeStack:
        calls.append(create)
        return stack
    monkeypatch.setattr(automation, "select_stack", select)
    doc = RegionOutputs.model_validate({**city_plan.outputs, "region": lab_os.name})
    path = write_outputs(doc)
    try:
        with pytest.raises(HcopsError, match="holds no OpenStack resources"):
            ops.destroy(lab_os, InfraOptions(), confirmed=True)
        assert path.exists() and not stack.destroyed and calls == [False]
        with pytest.raises(HcopsError, match="not confirmed"):
            ops.destroy(lab_os, InfraOptions(), confirmed=False)
        stack.resources = [{"type": "openstack:blockstorage/volume:Volume", "inputs": {"name": "db1-data1"},
                            "retainOnDelete": True}]
        result = ops.destroy(lab_os, InfraOptions(), confirmed=True)
        assert stack.destroyed and result.outputs_removed and result.retained_volumes == ["db1-data1"]
        assert not outputs_path(lab_os.name).exists()
        monkeypatch.setattr(automation, "find_cli", lambda: Path("/usr/bin/pulumi"))
        assert ops.status(lab_os, InfraOptions()).stack_exists is True
        assert calls[-1] is False  # status never creates a stack
    finally:
        path.unlink(missing_ok=True)


def test_11_a_tarball_cli_on_path_is_run_from_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tarball = tmp_path / "pulumi"
    tarball.mkdir()
    cli = tarball / "pulumi"
    cli.write_text("#!/bin/sh\necho v3.141.0\n")
    cli.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tarball}{os.pathsep}/usr/bin:/bin")
    assert automation.find_cli() == cli
    assert automation.command_root(cli) is None  # `<root>/bin/pulumi` would not exist
    cmd = automation.pulumi_command()
    assert cmd.command == "pulumi"


def test_11_the_inline_project_names_this_virtualenv() -> None:
    settings = automation.project_settings("file:///tmp/x")
    assert isinstance(settings.runtime, automation.auto.ProjectRuntimeInfo)
    assert settings.runtime.options == {"virtualenv": sys.prefix}


# 12 -----------------------------------------------------------------------------------------------

def test_12_data_volumes_outlive_a_destroy(city_plan: OfflinePlan) -> None:
    graph = city_plan.graph
    assert one(graph, "Volume", "db1-data1").retain_on_delete  # 2 TB database
    big = one(graph, "Volume", "city-bak1-data1")
    assert int(big.inputs["size"]) == 8000 and big.retain_on_delete
    assert not one(graph, "Volume", "db1-boot").retain_on_delete


def test_12_missing_settings_are_run_errors_with_a_fix(lab_os: Region, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.delenv("HCOPS_SSH_PUBLIC_KEY_FILE", raising=False)
    with pytest.raises(pulumi.RunError, match="fix: set hcops:sshPublicKey"):
        build_config("nowhere", {}, offline=False)
    monkeypatch.delenv("HCOPS_S3_ENDPOINT", raising=False)
    cfg = build_config(lab_os.name, {"sshPublicKey": "k", "privateCloud": {"flavorLookup": "exact"},
                                     "publicCloud": {"flavorLookup": "exact"}}, offline=False)
    with pytest.raises(pulumi.RunError, match=r"S3 endpoint\. fix: set hcops:s3.endpoint"):
        run_offline(lab_os, cfg)


def test_owned_counts_volumes_and_network_by_side(lab_os: Region) -> None:
    prov = "urn:pulumi:lab::hcops::pulumi:providers:openstack::private-cloud::1"
    owned = owned_from_deployment(lab_os, {"resources": [
        {"type": "openstack:blockstorage/volume:Volume", "inputs": {"size": 40}, "provider": prov},
        {"type": "openstack:networking/router:Router", "inputs": {}, "provider": prov},
        {"type": "hcops:openstack:Vpc", "inputs": {}},
    ]})
    assert owned == {"private": {"volumes": 1, "volume_gb": 40, "routers": 1}}
    assert json.loads(json.dumps(owned)) == owned


def test_demand_counts_what_the_plan_creates(city: Region, city_plan: OfflinePlan) -> None:
    """The quota demand is derived from the model; it must equal what the program declares."""
    graph = city_plan.graph
    sides = {"private": demand(city, "private", [], [IPv4Address("10.40.0.1")], {}),
             "public": demand(city, "public", [IPv4Address("100.125.1.250")], [IPv4Address("100.125.1.251")],
                              {"city-cloud-line": "10.50.3.5"})}
    for side, need in sides.items():
        mine = [r for r in graph.custom_resources() if r.provider == f"{side}-cloud"]

        def count(kind: str, rs: list[PlannedResource] = mine) -> int:
            return sum(1 for r in rs if r.kind == kind)
        assert (need.routers, need.networks, need.subnets) == (count("Router"), count("Network"), count("Subnet"))
        assert need.security_groups == count("SecGroup")
        assert need.security_group_rules == count("SecGroupRule")
        assert need.volumes == count("Volume") and need.floating_ips == count("FloatingIp")
        assert need.ports >= count("Port")


def test_one_vip_mechanism_per_service(lab_os: Region, lab_os_dir: Path, city: Region) -> None:
    """Issue #9 defect 5: Octavia holds the VIP on OpenStack, keepalived where hcops owns the L2."""
    assert load_region("lab").vip_mechanism("front") == "keepalived"
    assert lab_os.vip_mechanism("front") == "octavia" and city.vip_mechanism("front") == "octavia"
    assert city.vip_mechanism("records-db") is None


def test_keepalived_on_openstack_gets_address_pairs_and_vrrp(make_region: Callable[..., Path]) -> None:
    path = make_region("lab", [*OPENSTACK_LAB, ("services.yml", "    vip: 10.231.2.100\n",
                                                "    vip: 10.231.2.100\n    vip_via: keepalived\n")])
    region = load_region(str(path))
    plan = run_offline(region, offline_config(region))
    graph = plan.graph
    assert not graph.of_kind("LoadBalancer")  # never both mechanisms on one VIP
    for host in ("app1", "app2"):
        net = region.service_network("front", host)
        pairs = [p["ipAddress"] for p in one(graph, "Port", f"{host}-{net}").inputs.get("allowedAddressPairs", [])]
        assert "10.231.2.100/32" in pairs
    vrrp = [r for r in graph.of_kind("SecGroupRule") if r.inputs.get("protocol") == "vrrp"]
    assert {r.inputs["remoteIpPrefix"] for r in vrrp} == {
        f"{region.service_address('front', h)}/32" for h in ("app1", "app2")}
    assert plan.schema_findings == []


def test_existing_network_and_router_are_used_not_created(make_region: Callable[..., Path]) -> None:
    """Public clouds often hand out the VPC network: the model names it and the program looks it
    (and its subnet of the model's cidr) up; a site's `existing_router` takes the new networks."""
    path = make_region("lab", [*OPENSTACK_LAB,
                               ("sites.yml", "vpc: {cidr: 10.231.2.0/24, purpose: app, vlan: 201}",
                                "vpc: {cidr: 10.231.2.0/24, purpose: app, vlan: 201, existing: tenant-vpc}"),
                               ("sites.yml", "    networks:\n      lan:", "    existing_router: dc-edge\n"
                                "    networks:\n      lan:")])
    region = load_region(str(path))
    plan = run_offline(region, offline_config(region))
    graph = plan.graph
    assert plan.schema_findings == []
    assert {r.name for r in graph.of_kind("Network")} == {"local-dc-lan"}
    assert {r.name for r in graph.of_kind("Router")} == {"cloud-router"}  # local-dc uses dc-edge
    looked_up = {(t.split(":")[-1], a.get("name") or a.get("cidr")) for t, a, _ in plan.calls}
    assert {("getNetwork", "tenant-vpc"), ("getSubnet", "10.231.2.0/24"), ("getRouter", "dc-edge")} <= looked_up
    subnet_ids = {a["ipAddress"]: a["subnetId"] for p in graph.of_kind("Port") for a in p.inputs["fixedIps"]}
    assert subnet_ids["10.231.2.10"] == mock_id("subnet", "10.231.2.0/24")  # the looked-up subnet
    iface = graph.of_kind("RouterInterface")
    assert len(iface) == 1 and iface[0].inputs["routerId"] == mock_id("router", "dc-edge")
