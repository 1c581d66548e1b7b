"""Offline runs of the region program under Pulumi's mock runtime: no engine, no cloud.

The Pulumi CLI and provider plugins cannot be installed everywhere hcops runs, yet a cloud
engineer wants to see what a region would create, and CI wants to check it. `run_offline`
runs the real program with a mock monitor that records every registration (type, name,
inputs, parent, provider, dependencies) into a `ResourceGraph`, and answers the program's data
lookups (external network, images, flavors, limits) with placeholders. Ids and public addresses
in the result are placeholders; addresses the model fixes are the real ones.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.openstack.config import ProgramConfig
from infra.openstack.graph import PlannedResource, ResourceGraph
from infra.openstack.program import RegionProgram, build_region
from infra.openstack.schema import SchemaChecker, SchemaFinding
from inventories.model import Region

PLACEHOLDER_PUBLIC = IPv4Address("203.0.113.0")  # TEST-NET-3: documentation only, never routed
GENEROUS_LIMITS = {
    "maxTotalInstances": 10_000, "maxTotalCores": 100_000, "maxTotalRamSize": 100_000_000,
    "maxServerGroups": 1_000, "maxServerGroupMembers": 100, "maxSecurityGroups": 10_000,
    "maxSecurityGroupRules": 100_000, "maxTotalKeypairs": 100,
    "totalInstancesUsed": 0, "totalCoresUsed": 0, "totalRamUsed": 0, "totalServerGroupsUsed": 0,
}
# Neutron and Cinder quota data sources publish limits only (no usage); Neutron's defaults are
# 10 routers, 100 networks/subnets, 500 ports, 10 security groups, 100 rules; Cinder's 10
# volumes and 1,000 GB.
GENEROUS_NETWORK_QUOTA = {"router": 1_000, "network": 1_000, "subnet": 1_000, "port": 10_000,
                          "securityGroup": 1_000, "securityGroupRule": 100_000, "floatingip": 100}
GENEROUS_VOLUME_QUOTA = {"volumes": 10_000, "gigabytes": 10_000_000}
OFFLINE_PROJECT = "0ff11e0000000000000000000000000"
_RUN_LOCK = threading.Lock()  # the Pulumi runtime's settings are process-global


def _mock_id(kind: str, name: str) -> str:
    return f"{kind}-{hashlib.sha1(name.encode()).hexdigest()[:10]}"  # noqa: S324 (a label, not security)


class CloudMocks(pulumi_mocks.Mocks):
    """Answers a cloud would give, enough for the program to run to the end.

    `limits` lets a test play a project with little quota; `flavors` maps flavor names to
    (vCPU, RAM MB) for flavor-only hosts.
    """

    def __init__(self, limits: dict[str, int] | None = None,
                 flavors: dict[str, tuple[int, int]] | None = None,
                 network_quota: dict[str, int] | None = None,
                 volume_quota: dict[str, int] | None = None) -> None:
        self.limits = {**GENEROUS_LIMITS, **(limits or {})}
        self.network_quota = {**GENEROUS_NETWORK_QUOTA, **(network_quota or {})}
        self.volume_quota = {**GENEROUS_VOLUME_QUOTA, **(volume_quota or {})}
        self.flavors = flavors or {}
        # Strict as the provider: every registration and invoke is checked against its schema.
        self.schema = SchemaChecker()
        self.calls: list[tuple[str, dict[str, Any], str]] = []
        self.created: list[str] = []  # resource types, in registration order
        self._next_public = 1

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.created.append(args.typ)
        self.schema.check_resource(args.typ, args.name, dict(args.inputs))
        kind = args.typ.split(":")[-1]
        state = dict(args.inputs)
        if args.custom is False:  # components have no cloud counterpart
            return "", state
        rid = _mock_id(kind.lower(), args.name)
        if kind == "Port":
            state["allFixedIps"] = [ip["ipAddress"] for ip in state.get("fixedIps", []) if "ipAddress" in ip]
            state["macAddress"] = "fa:16:3e:" + ":".join(rid[-6:][i:i + 2] for i in (0, 2, 4))
        elif kind == "LoadBalancer":
            state["vipPortId"] = _mock_id("port", args.name + "-vip")
        elif kind == "FloatingIp":
            state["address"] = str(PLACEHOLDER_PUBLIC + self._next_public)
            self._next_public += 1
        elif kind == "Instance":
            state["accessIpV4"] = ""
        elif args.typ == "pulumi-python:dynamic:Resource":
            rid = str(state.get("bucket", rid))
            state["objectLockApplied"] = bool(state.get("objectLock"))
        return rid, state

    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        self.calls.append((args.token, dict(args.args), args.provider))
        self.schema.check_invoke(args.token, dict(args.args))
        fn = args.token.split(":")[-1]
        a = args.args
        if fn == "getNetwork":
            return {"id": _mock_id("net", str(a.get("name"))), "name": a.get("name"), "external": True}
        if fn == "getImage":
            return {"id": _mock_id("image", str(a.get("name"))), "name": a.get("name")}
        if fn == "getFlavor":
            if a.get("name"):
                vcpus, ram = self.flavors.get(str(a["name"]), (2, 4096))
                return {"id": _mock_id("flavor", str(a["name"])), "name": a["name"], "vcpus": vcpus,
                        "ram": ram}
            name = f"hc.{a.get('vcpus')}c{int(a.get('ram', 0)) // 1024}g"
            return {"id": _mock_id("flavor", name), "name": name, "vcpus": a.get("vcpus"), "ram": a.get("ram")}
        if fn == "getLimitsV2":
            return {"id": "limits", "projectId": a.get("projectId"), **self.limits}
        if fn == "getAuthScope":
            return {"id": str(a.get("name")), "name": a.get("name"), "projectId": OFFLINE_PROJECT,
                    "projectName": "offline-preview"}
        if fn == "getQuotaV2":
            return {"id": f"{a.get('projectId')}/network", "projectId": a.get("projectId"), **self.network_quota}
        if fn == "getQuotasetV3":
            return {"id": f"{a.get('projectId')}/volume", "projectId": a.get("projectId"), **self.volume_quota}
        if fn == "getRouter":
            return {"id": _mock_id("router", str(a.get("name") or a.get("routerId"))), "name": a.get("name")}
        if fn == "getSubnet":
            return {"id": _mock_id("subnet", str(a.get("name") or a.get("subnetId") or a.get("cidr"))),
                    "name": a.get("name"), "cidr": a.get("cidr"), "networkId": a.get("networkId")}
        raise NotImplementedError(f"the offline mocks do not answer {args.token}")


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, also keeping parent, provider and dependencies of each registration."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.graph = ResourceGraph()

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        urn = self.make_urn(request.parent, request.type, request.name)
        deps = set(request.dependencies)
        for prop_deps in request.propertyDependencies.values():
            deps.update(prop_deps.urns)
        reg = self.resources.get(urn)
        self.graph.add(PlannedResource(
            urn=urn, type=request.type, name=request.name,
            inputs=dict(reg.state) if reg else {}, id=reg.id if reg else "",
            parent=request.parent, provider=request.provider.split("::")[-2] if request.provider else "",
            depends_on=tuple(sorted(deps)), custom=bool(request.custom),
            ignore_changes=tuple(request.ignoreChanges), delete_before_replace=bool(request.deleteBeforeReplace),
            retain_on_delete=bool(getattr(request, "retainOnDelete", False)), protect=bool(request.protect)))
        return response


@dataclass
class OfflinePlan:
    region: str
    graph: ResourceGraph
    outputs: dict[str, Any] = field(default_factory=dict)
    public_addresses: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    program: RegionProgram | None = None
    schema_findings: list[SchemaFinding] = field(default_factory=list)


def run_offline(region: Region, cfg: ProgramConfig, mocks: CloudMocks | None = None) -> OfflinePlan:
    """Run the region program under the mock runtime and return what it declared."""
    mocks = mocks or CloudMocks()
    with _RUN_LOCK:
        # Leftovers of an earlier run in this process would be awaited again (and slow it down).
        SETTINGS.rpc_manager.clear()
        SETTINGS.outputs.clear()
        monitor = RecordingMonitor(mocks)
        pulumi_mocks.set_mocks(mocks, project="hcops", stack=region.name, preview=False, monitor=monitor)
        plan = OfflinePlan(region.name, monitor.graph, calls=mocks.calls, schema_findings=mocks.schema.findings)

        def program() -> None:
            prog = build_region(region, cfg)
            plan.program = prog
            if prog.outputs is not None:
                prog.outputs.apply(plan.outputs.update)
            if prog.public_addresses is not None:
                prog.public_addresses.apply(plan.public_addresses.update)

        _sync_await(run_pulumi_func(program))
    return plan


def resolve(output: pulumi.Output[Any]) -> Any:
    """The value of an Output from a finished offline run (tests and the plan view)."""
    box: list[Any] = []
    output.apply(box.append)
    _sync_await(run_pulumi_func(lambda: None))
    return box[0] if box else None
