"""The CrossGuard pack: each rule as a mandatory stack policy, fed the engine's own resource view
(pulumi_policy's PolicyResource, with preview-time unknowns), seeded with violations."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, PolicyResource, PolicyResourceOptions, StackValidationArgs
from pulumi_policy.policy import PolicyCustomTimeouts
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from infra.openstack.mocks import OfflinePlan
from infra.openstack.policy import RULE_NAMES, PolicyContext
from infra.openstack.policypack import graph_from, policies
from inventories.model import Region

CTX = PolicyContext(sensitive_ports=frozenset({22, 3306}), ha_sets=(("appdb", ("db1", "db2")),),
                    encrypted_volume_types=frozenset({"encrypted"}))
OS = "openstack:"
T = {"rule": OS + "networking/secGroupRule:SecGroupRule", "group": OS + "compute/serverGroup:ServerGroup",
     "inst": OS + "compute/instance:Instance", "pool": OS + "loadbalancer/pool:Pool",
     "mon": OS + "loadbalancer/monitor:Monitor", "lb": OS + "loadbalancer/loadBalancer:LoadBalancer",
     "lst": OS + "loadbalancer/listener:Listener", "fip": OS + "networking/floatingIp:FloatingIp",
     "prov": "pulumi:providers:openstack"}
LOCKED = "#cloud-config\ndisable_root: true\n"


def pres(kind: str, logical: str, /, deps: dict[str, list[PolicyResource]] | None = None,
         **props: Any) -> PolicyResource:
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    return PolicyResource(T[kind], unknown_checking_proxy(props), f"urn:pulumi:s::hcops::{T[kind]}::{logical}",
                          logical, opts, None, None, [d for ds in (deps or {}).values() for d in ds], deps or {})


def violations(resources: list[PolicyResource], ctx: PolicyContext = CTX) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for policy in policies(lambda: ctx):
        assert policy.enforcement_level == EnforcementLevel.MANDATORY
        found: list[str] = []
        policy.validate(StackValidationArgs(resources), lambda msg, urn=None, f=found: f.append(str(urn)))
        if found:
            out[policy.name] = sorted(u.rsplit("::", 1)[-1] for u in found)
    return out


def pair(policy: str, zones: tuple[str, str] = ("az-1", "az-2")) -> list[PolicyResource]:
    group = pres("group", "g", id="sg-1", policies=policy)
    return [group, *(pres("inst", h, name=h, userData=LOCKED, availabilityZone=z, schedulerHints=[{"group": "sg-1"}])
                     for h, z in zip(("db1", "db2"), zones, strict=True))]


def test_every_rule_is_a_policy_of_the_pack() -> None:
    assert [p.name for p in policies(lambda: CTX)] == list(RULE_NAMES)


def test_a_clean_pair_passes_and_soft_anti_affinity_does_not() -> None:
    assert violations(pair("anti-affinity")) == {}
    assert violations(pair("soft-anti-affinity")) == {"ha-pair-anti-affinity": ["db1", "db2"]}


@pytest.mark.parametrize(("prefix", "flagged"), [("0.0.0.0/0", True), ("0.0.0.0/1", True), ("128.0.0.0/1", True),
                                                 ("10.50.1.0/24", False), ("203.0.113.7/32", False)])
def test_half_the_internet_is_the_internet(prefix: str, flagged: bool) -> None:
    rule = pres("rule", "db-in", direction="ingress", protocol="tcp", portRangeMin=3306, portRangeMax=3306,
                remoteIpPrefix=prefix)
    assert violations([rule]) == ({"no-db-or-admin-port-open-to-internet": ["db-in"]} if flagged else {})


def test_public_listeners_speak_tls_and_providers_verify_it() -> None:
    lb = pres("lb", "front-lb", id="lb-1", vipPortId="port-vip")
    fip = pres("fip", "front-fip", portId="port-vip")
    plain = pres("lst", "front-80", loadbalancerId="lb-1", protocol="HTTP", protocolPort=80)
    tls = pres("lst", "front-443", loadbalancerId="lb-1", protocol="HTTPS", protocolPort=443)
    insecure = pres("prov", "public-cloud", insecure=True)
    assert violations([lb, fip, plain, tls, insecure]) == {"public-listener-tls": ["front-80"],
                                                           "provider-not-insecure": ["public-cloud"]}
    assert violations([lb, plain]) == {}  # no floating IP: a private listener may be plain HTTP


def test_root_login_and_one_zone_for_a_pair_are_found() -> None:
    res = pair("anti-affinity", zones=("az-1", "az-1"))
    res[1] = pres("inst", "db1", name="db1", userData="#cloud-config\ndisable_root: false\n",
                  availabilityZone="az-1", schedulerHints=[{"group": "sg-1"}])
    assert violations(res) == {"no-root-ssh-login": ["db1"], "ha-pair-availability-zones": ["db2"]}


def test_preview_unknowns_resolve_through_property_dependencies() -> None:
    """In a preview the pool's id is unknown; the monitor still names it through its dependency."""
    pool = pres("pool", "p443", id=UNKNOWN_STRING_VALUE, protocol="HTTPS")
    mon = pres("mon", "m443", deps={"poolId": [pool]}, poolId=UNKNOWN_STRING_VALUE)
    graph = graph_from([pool, mon])
    assert graph.of_kind("Monitor")[0].inputs["poolId"] == graph.of_kind("Pool")[0].id == pool.urn
    assert violations([pool, mon]) == {}
    assert violations([pool]) == {"pool-health-monitor": ["p443"]}


def test_the_pack_agrees_with_the_offline_path(city: Region, city_plan: OfflinePlan) -> None:
    """The whole example-city plan, handed to the pack as the engine would: no violation."""
    ctx = PolicyContext.from_region(city, frozenset({"encrypted"}))
    resources = [pres_from(r) for r in city_plan.graph.resources if r.custom]
    assert violations(resources, ctx) == {}


def pres_from(r: Any) -> PolicyResource:
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    return PolicyResource(r.type, unknown_checking_proxy({**r.inputs, "id": r.id}), r.urn, r.name, opts, None,
                          None, [], {})


def test_the_pack_directory_names_this_environment() -> None:
    from infra.openstack import automation

    root = Path(automation.policy_pack("pack-test"))
    assert f"virtualenv: {sys.prefix}" in (root / "PulumiPolicy.yaml").read_text()
    main = (root / "__main__.py").read_text()
    assert "from infra.openstack.policypack import run" in main
    compile(main, "__main__.py", "exec")
