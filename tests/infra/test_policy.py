"""Policy checks: seeded violations in hand-built graphs, and clean real plans."""

from __future__ import annotations

from typing import Any

import pytest

from infra.openstack.graph import DYNAMIC, PlannedResource, ResourceGraph
from infra.openstack.mocks import OfflinePlan, run_offline
from infra.openstack.policy import Finding, PolicyContext, check
from inventories.model import Region
from tests.infra.conftest import offline_config

CTX = PolicyContext(sensitive_ports=frozenset({22, 3306, 1521}), ha_sets=(("appdb", ("db1", "db2")),),
                    encrypted_volume_types=frozenset({"encrypted"}))
TYPES = {
    "SecGroupRule": "openstack:networking/secGroupRule:SecGroupRule",
    "ServerGroup": "openstack:compute/serverGroup:ServerGroup",
    "Instance": "openstack:compute/instance:Instance",
    "Pool": "openstack:loadbalancer/pool:Pool",
    "Monitor": "openstack:loadbalancer/monitor:Monitor",
    "Volume": "openstack:blockstorage/volume:Volume",
    "Container": "openstack:objectstorage/container:Container",
}


def res(kind: str, logical: str, /, rid: str = "", **inputs: Any) -> PlannedResource:
    typ = DYNAMIC if kind == "s3-bucket" else TYPES[kind]
    if kind == "s3-bucket":
        inputs["hcopsKind"] = "hcops:s3-bucket"
    return PlannedResource(urn=f"urn:pulumi:t::hcops::{typ}::{logical}", type=typ, name=logical, inputs=inputs,
                           id=rid or f"{logical}-id")


def rules_of(findings: list[Finding]) -> list[tuple[str, str]]:
    return sorted((f.rule, f.resource) for f in findings)


LOCKED_ROOT = "#cloud-config\ndisable_root: true\n"
# What the lab model (one room, plain-HTTP port 80 for its redirect) is found to lack for a cloud.
LAB_ON_CLOUD = {("public-listener-tls", "front-80"), ("ha-pair-availability-zones", "app2")}


def ingress(name: str, port: int | None, prefix: str | None, proto: str | None = "tcp") -> PlannedResource:
    return res("SecGroupRule", name, direction="ingress", protocol=proto, portRangeMin=port, portRangeMax=port,
               remoteIpPrefix=prefix)


def paired(group_db2: str | None = "sg") -> list[PlannedResource]:
    def inst(name: str, group: str | None) -> PlannedResource:
        return res("Instance", name, name=name, schedulerHints=[{"group": group}] if group else [],
                   userData=LOCKED_ROOT, availabilityZone=f"az-{name[-1]}")
    return [res("ServerGroup", "appdb-group", rid="sg", policies="anti-affinity"),
            inst("db1", "sg"), inst("db2", group_db2)]


@pytest.mark.parametrize(("rule", "flagged"), [
    (ingress("db-open", 3306, "0.0.0.0/0"), True),
    (ingress("ssh-open", 22, "0.0.0.0/0"), True),
    (ingress("no-prefix-means-anyone", 1521, None), True),
    (res("SecGroupRule", "all-ports-open", direction="ingress", protocol=None, portRangeMin=None,
         portRangeMax=None, remoteIpPrefix="0.0.0.0/0"), True),
    (res("SecGroupRule", "range-covering-mysql", direction="ingress", protocol="tcp", portRangeMin=3000,
         portRangeMax=4000, remoteIpPrefix="0.0.0.0/0"), True),
    (ingress("https-open", 443, "0.0.0.0/0"), False),
    (ingress("db-from-app-net", 3306, "10.50.1.0/24"), False),
    (res("SecGroupRule", "egress-db-anywhere", direction="egress", protocol="tcp", portRangeMin=3306,
         portRangeMax=3306, remoteIpPrefix="0.0.0.0/0"), False),
])
def test_db_and_admin_ports_never_open_to_internet(rule: PlannedResource, flagged: bool) -> None:
    findings = check(ResourceGraph([rule]), CTX)
    expected = [("no-db-or-admin-port-open-to-internet", rule.name)] if flagged else []
    assert rules_of(findings) == expected
    if flagged:
        assert findings[0].urn == rule.urn


def test_ha_pair_outside_anti_affinity_is_found() -> None:
    assert check(ResourceGraph(paired()), CTX) == []
    findings = check(ResourceGraph(paired(group_db2=None)), CTX)
    assert rules_of(findings) == [("ha-pair-anti-affinity", "db2")]
    assert "db1, db2" in findings[0].message


def test_ha_pair_in_an_affinity_group_or_split_groups_is_found() -> None:
    soft = [res("ServerGroup", "g", rid="sg", policies="soft-affinity"), *paired()[1:]]
    assert rules_of(check(ResourceGraph(soft), CTX)) == [("ha-pair-anti-affinity", "db1"),
                                                         ("ha-pair-anti-affinity", "db2")]
    split = [*paired(group_db2="sg2"), res("ServerGroup", "other", rid="sg2", policies="anti-affinity")]
    findings = check(ResourceGraph(split), CTX)
    assert rules_of(findings) == [("ha-pair-anti-affinity", "db1")]
    assert "split over 2 server groups" in findings[0].message


def test_pool_without_monitor_is_found() -> None:
    pools = [res("Pool", "p443", rid="pool-a"), res("Pool", "p80", rid="pool-b"),
             res("Monitor", "m443", poolId="pool-a")]
    assert rules_of(check(ResourceGraph(pools), CTX)) == [("pool-health-monitor", "p80")]


def test_unencrypted_volumes_are_found() -> None:
    graph = ResourceGraph([
        res("Volume", "db1-data1", volumeType="encrypted"),
        res("Volume", "db2-data1", volumeType="standard"),
        res("Volume", "db3-data1"),
        res("Instance", "web9", name="web9", userData=LOCKED_ROOT, blockDevices=[
            {"sourceType": "image", "destinationType": "volume", "volumeSize": 20}]),
    ])
    assert rules_of(check(graph, CTX)) == [("volume-encrypted-type", "db2-data1"),
                                           ("volume-encrypted-type", "db3-data1"),
                                           ("volume-encrypted-type", "web9")]


def test_buckets_need_versioning_lifecycle_and_encryption() -> None:
    good: dict[str, Any] = {"versioning": True, "lifecycle": {"noncurrentDays": 30}, "encryption": "AES256"}
    graph = ResourceGraph([
        res("s3-bucket", "ok", **good),
        res("s3-bucket", "unversioned", **{**good, "versioning": False}),
        res("s3-bucket", "forever", **{**good, "lifecycle": None}),
        res("s3-bucket", "plain", **{**good, "encryption": None}),
        res("Container", "swift-ok", versioning=True),
        res("Container", "swift-unversioned", versioning=False),
    ])
    assert rules_of(check(graph, CTX)) == [("bucket-encrypted", "plain"), ("bucket-lifecycle", "forever"),
                                           ("bucket-versioned", "swift-unversioned"),
                                           ("bucket-versioned", "unversioned")]


def test_real_plans_are_clean(city: Region, city_plan: OfflinePlan, lab_os: Region, lab_plan: OfflinePlan) -> None:
    assert check(city_plan.graph, PolicyContext.from_region(city, frozenset({"encrypted"}))) == []
    lab = check(lab_plan.graph, PolicyContext.from_region(lab_os, frozenset({"encrypted"})))
    assert set(rules_of(lab)) == LAB_ON_CLOUD


def test_a_plain_volume_type_in_stack_config_is_caught(lab_os: Region) -> None:
    cfg = offline_config(lab_os, publicCloud={"volumeType": "standard"})
    plan = run_offline(lab_os, cfg)
    findings = check(plan.graph, PolicyContext.from_region(lab_os, cfg.encrypted_volume_types))
    flagged = {f.resource for f in findings if f.rule == "volume-encrypted-type"}
    cloud_hosts = set(lab_os.sites["cloud"].hosts)
    assert flagged == {f"{h}-boot" for h in cloud_hosts}  # the private side kept its encrypted type
    assert {(f.rule, f.resource) for f in findings if f.rule != "volume-encrypted-type"} == LAB_ON_CLOUD
