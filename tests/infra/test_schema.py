"""The strict offline preview: registrations and invokes checked against the provider's schema,
and the schema copy, the published file and the installed SDK kept in agreement."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pulumi_openstack as openstack
import pytest

from infra.openstack.mocks import OfflinePlan, run_offline
from infra.openstack.schema import PROVIDER_TYPE, SCHEMA_FILE, SCHEMA_LINE, SchemaChecker, load, trim
from inventories.model import Region
from tests.infra.conftest import REPO, offline_config

PUBLISHED = [REPO.parent / "shared" / "reference" / "pulumi-openstack-schema.json",
             Path("/work/shared/reference/pulumi-openstack-schema.json")]
INSTANCE = "openstack:compute/instance:Instance"


def _module(token: str) -> str:
    mod = token.split(":")[1].split("/", maxsplit=1)[0]
    return "pulumi_openstack" if mod == "index" else f"pulumi_openstack.{mod}"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


# ---- the checker on seeded mistakes --------------------------------------------------------------

def test_unknown_missing_and_wrongly_typed_inputs_are_named() -> None:
    chk = SchemaChecker()
    found = chk.check_resource(INSTANCE, "db1", {
        "name": "db1", "flavourName": "m1.large",                        # misspelt
        "blockDevices": [{"uuid": "v", "sourceType": "volume", "bootIndex": "0"}],  # string for integer
        "metadata": {"role": 5},                                          # map of strings
        "stopBeforeDestroy": "yes",                                       # string for boolean
    })
    got = {(f.problem, f.property.split(" ")[0]) for f in found}
    assert ("unknown-property", "flavourName") in got
    assert ("wrong-type", "blockDevices[0].bootIndex") in got
    assert ("wrong-type", "metadata.role") in got
    assert ("wrong-type", "stopBeforeDestroy") in got
    assert all(f.resource == "db1" and f.type == INSTANCE for f in found)
    rule = chk.check_resource("openstack:networking/secGroupRule:SecGroupRule", "r1", {"direction": "ingress"})
    assert {f.property for f in rule if f.problem == "missing-required"} == {"ethertype", "securityGroupId"}
    assert "[schema:missing-required] openstack:networking/secGroupRule:SecGroupRule r1: ethertype" in map(str, rule)


def test_invoke_arguments_and_unknown_tokens() -> None:
    chk = SchemaChecker()
    # Defect 1 as the provider sees it: getLimitsV2 without the project it requires.
    assert [(f.property, f.problem) for f in chk.check_invoke("openstack:compute/getLimitsV2:getLimitsV2", {})] \
        == [("projectId", "missing-required")]
    assert chk.check_invoke("openstack:compute/getLimitsV2:getLimitsV2", {"projectId": "p"}) == []
    assert [f.problem for f in chk.check_invoke("openstack:compute/getFlavour:getFlavour", {})] == ["unknown-type"]
    assert [f.problem for f in chk.check_resource("openstack:compute/instanceV3:Instance", "x", {})] \
        == ["unknown-type"]
    # Numbers travel as floats through the runtime: 2.0 is an integer, 2.5 is not.
    vol = "openstack:blockstorage/volume:Volume"
    assert chk.check_resource(vol, "v", {"size": 2.0}) == []
    assert [f.problem for f in chk.check_resource(vol, "v", {"size": 2.5})] == ["wrong-type"]
    prov = chk.check_resource(PROVIDER_TYPE, "p", {"cloud": "x", "insecure": "true"})
    assert [f.property.split(" ")[0] for f in prov] == ["insecure"]


def test_a_program_mistake_is_caught_in_the_offline_run(lab_os: Region, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock runtime itself accepts anything; the checker inside it does not."""
    real = openstack.compute.Keypair

    def misspelt(resource_name: str, **kwargs: Any) -> Any:
        res = real(resource_name, **kwargs)
        # Plain dicts reach the engine as written: the SDK checks neither their keys nor their
        # nested required fields, and neither does the mock runtime.
        openstack.networking.Port(f"{resource_name}-bad", network_id="n",
                                  fixed_ips=[{"subnet": "s", "ipAddress": "10.0.0.9"}],  # type: ignore[list-item]
                                  allowed_address_pairs=[{"macAddress": "fa:16:3e:00:00:01"}],  # type: ignore[list-item]
                                  opts=pulumi.ResourceOptions(parent=res))
        return res

    monkeypatch.setattr(openstack.compute, "Keypair", misspelt)
    plan = run_offline(lab_os, offline_config(lab_os))
    bad = {(f.resource, f.property, f.problem) for f in plan.schema_findings}
    assert ("private-keypair-bad", "fixedIps[0].subnet", "unknown-property") in bad
    assert ("private-keypair-bad", "allowedAddressPairs[0].ipAddress", "missing-required") in bad


# ---- the shipped regions pass --------------------------------------------------------------------

def test_example_city_and_lab_have_zero_schema_findings(city_plan: OfflinePlan, lab_plan: OfflinePlan) -> None:
    assert city_plan.schema_findings == []
    assert lab_plan.schema_findings == []
    checked = {t for t, _, _ in city_plan.calls}
    assert "openstack:networking/getNetwork:getNetwork" in checked


# ---- schema copy, published file, installed SDK --------------------------------------------------

def test_installed_sdk_is_the_schema_line() -> None:
    version = importlib.metadata.version("pulumi-openstack")
    assert version.startswith(SCHEMA_LINE + "."), f"pulumi-openstack {version} installed, schema copy is {SCHEMA_LINE}"
    major, minor = (int(x) for x in importlib.metadata.version("pulumi").split(".")[:2])
    assert (major, minor) >= (3, 141)  # InvokeOutputOptions (output invokes with options)


def test_trimmed_copy_matches_the_published_schema() -> None:
    published = next((p for p in PUBLISHED if p.exists()), None)
    if published is None:
        pytest.skip("the published schema (shared/reference) is not beside this checkout")
    assert trim(json.loads(published.read_text())) == load(SCHEMA_FILE)


def test_every_schema_resource_and_function_matches_the_sdk() -> None:
    """Each resource's inputs are the SDK's constructor arguments, each function's its parameters."""
    schema = load()
    mismatched: list[str] = []
    for token, spec in schema["resources"].items():
        module, cls = _module(token), token.split(":")[2]
        klass = getattr(importlib.import_module(module), cls, None)
        if klass is None:
            mismatched.append(f"{token}: no class in the SDK")
            continue
        args = getattr(importlib.import_module(module), f"{cls}Args", None)
        assert args is not None, token
        sdk = {getattr(inspect.getattr_static(args, n).fget, "_pulumi_name", n)
               for n, v in vars(args).items() if isinstance(v, property)}
        if sdk != set(spec["properties"]):
            mismatched.append(f"{token}: {sorted(sdk ^ set(spec['properties']))}")
    for token, spec in schema["functions"].items():
        if not token.startswith("openstack:"):  # provider methods (terraformConfig), not functions
            continue
        module, fn = _module(token), token.split(":")[2]
        func = getattr(importlib.import_module(module), _snake(fn), None)
        if func is None:
            mismatched.append(f"{token}: no function {_snake(fn)}")
            continue
        params = set(inspect.signature(func).parameters) - {"opts"}
        if params != {_snake(p) for p in spec["properties"]}:
            mismatched.append(f"{token}: {sorted(params ^ {_snake(p) for p in spec['properties']})}")
    assert mismatched == []
