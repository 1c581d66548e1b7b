"""Quota preflight: the program asks each side's project for its limits before creating anything."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from infra.openstack.mocks import CloudMocks, run_offline
from infra.openstack.quota import QuotaExceeded
from inventories.loader import load_region
from inventories.model import Region
from tests.infra.conftest import OPENSTACK_LAB, offline_config


def test_preflight_passes_with_room_and_asks_each_side(city: Region) -> None:
    mocks = CloudMocks()
    plan = run_offline(city, offline_config(city, quotaPreflight=True), mocks)
    asked = sorted(p.split("::")[-2] for t, _, p in plan.calls if t.endswith("getLimitsV2"))
    assert asked == ["private-cloud", "public-cloud"]
    # Every quota lookup passes the provider's schema (getLimitsV2 & co. require the project).
    assert plan.schema_findings == []
    tokens = {t for t, _, _ in plan.calls}
    assert {"openstack:networking/getQuotaV2:getQuotaV2", "openstack:blockstorage/getQuotasetV3:getQuotasetV3",
            "openstack:identity/getAuthScope:getAuthScope"} <= tokens
    assert plan.graph.counts()["Instance"] == 29


def test_preflight_stops_before_any_resource_when_cores_are_short(city: Region) -> None:
    # The public side needs 216 vCPU; the project has 200 cores with 10 in use.
    mocks = CloudMocks(limits={"maxTotalCores": 200, "totalCoresUsed": 10, "maxServerGroups": 2})
    with pytest.raises(QuotaExceeded) as err:
        run_offline(city, offline_config(city, quotaPreflight=True), mocks)
    message = str(err.value)
    assert "vCPU: need 216, 190 free" in message
    assert "server groups: need 3, 2 free" in message
    assert "nothing was created" in message
    # Only the two providers were registered: no side got a keypair, group or host first.
    assert [t for t in mocks.created if not t.startswith("hcops:")] == ["pulumi:providers:openstack"] * 2


def test_flavor_only_hosts_count_with_the_clouds_flavor(make_region: Callable[..., Path]) -> None:
    path = make_region("lab", [*OPENSTACK_LAB, ("sites.yml", "size: {vcpu: 1, ram_gb: 2, disks_gb: [20]}\n"
                                                "        addresses: {vpc: 10.231.2.12}",
                                                "flavor: m1.xlarge\n        addresses: {vpc: 10.231.2.12}")])
    region = load_region(str(path))
    assert region.hosts["db2"].spec.flavor == "m1.xlarge"
    # public side: app1, app2, zbx1 = 3 vCPU by size, + db2's flavor (16 vCPU) = 19 > 18.
    mocks = CloudMocks(limits={"maxTotalCores": 18}, flavors={"m1.xlarge": (16, 32768)})
    with pytest.raises(QuotaExceeded, match="vCPU: need 19, 18 free"):
        run_offline(region, offline_config(region, quotaPreflight=True), mocks)
    plan = run_offline(region, offline_config(region, quotaPreflight=True),
                       CloudMocks(limits={"maxTotalCores": 19}, flavors={"m1.xlarge": (16, 32768)}))
    inst = plan.graph.named("Instance", "db2")
    assert inst is not None and inst.inputs["flavorName"] == "m1.xlarge"
