"""`hcops infra` on OpenStack regions, through the CLI as users run it."""

from __future__ import annotations

import json
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from infra.openstack.automation import find_cli
from infra.openstack.mocks import OfflinePlan
from infra.state import RegionOutputs, read_outputs, write_outputs
from tests.conftest import CliResult
from tests.infra.conftest import OPENSTACK_LAB

Hcops = Callable[..., CliResult]
EXAMPLE_CITY_RESOURCES = 530  # 18 county proxies: a zabbix-proxy group and its one rule each


@pytest.fixture
def no_pulumi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine without the pulumi CLI, wherever the tests run."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_offline_preview_prints_the_18_county_plan(hcops: Hcops) -> None:
    result = hcops("infra", "preview", "--region", "example-city", "--offline")
    assert result.code == 2, result.stderr
    out = result.stdout
    assert "OFFLINE PREVIEW" in out and "no cloud was contacted" in out
    assert f"{EXAMPLE_CITY_RESOURCES} resources to create" in out
    for county in ("zhanggong", "ruijin", "xunwu", "shicheng"):
        assert f"site {county} (county_hospital, 1 host)" in out
    assert "VIP 10.50.0.100" in out
    assert "policy checks: no findings" in out
    assert "schema checks: no findings against pulumi-openstack's schema" in out
    assert "Traceback" not in result.stderr


def test_offline_preview_json(hcops: Hcops) -> None:
    result = hcops("--output", "json", "infra", "preview", "--region", "example-city", "--offline")
    assert result.code == 2, result.stderr
    data = json.loads(result.stdout)
    assert data["offline"] is True and "no cloud was contacted" in data["notice"]
    assert data["total"] == sum(data["counts"].values()) == EXAMPLE_CITY_RESOURCES
    assert data["schema_findings"] == []
    assert data["demand"]["public"]["vcpu"] == 216 and data["demand"]["public"]["ram_gb"] == 480
    sites = [p for p in data["placements"] if p.startswith("site:")]
    assert len(sites) == 20
    lb = data["placements"]["site:cloud"]["resources"]
    assert any(r["kind"] == "LoadBalancer" and r["summary"] == "VIP 10.50.0.100" for r in lb)
    assert data["findings"] == []
    assert set(data["outputs"]["hosts"]) >= {"web1", "ruijin-fe1"}


def test_findings_are_printed_and_strict_fails(hcops: Hcops, make_region: Callable[..., Path]) -> None:
    path = make_region("lab", [*OPENSTACK_LAB, ("services.yml", "pacs-images: {purpose: images, versioning: true",
                                                "pacs-images: {purpose: images, versioning: false")])
    relaxed = hcops("infra", "preview", "--region", str(path), "--offline")
    assert relaxed.code == 2
    assert "[bucket-versioned] objects-pacs-images" in relaxed.stdout
    strict = hcops("infra", "preview", "--region", str(path), "--offline", "--strict")
    assert strict.code == 1
    assert "policy finding(s) and --strict" in strict.stderr
    assert "Traceback" not in strict.stderr


@pytest.mark.parametrize("args", [
    ("infra", "preview"),
    ("infra", "up", "--yes"),
    ("infra", "destroy", "--yes"),
    ("infra", "refresh"),
])
def test_missing_pulumi_cli_is_a_clear_error(hcops: Hcops, no_pulumi: None, lab_os_dir: Path,
                                             args: tuple[str, ...]) -> None:
    result = hcops(*args, "--region", str(lab_os_dir))
    assert result.code == 1
    assert "the pulumi CLI is not installed" in result.stderr
    assert "fix:" in result.stderr and "pulumi plugin install resource openstack" in result.stderr
    assert "--offline" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_outputs_before_up_says_to_provision(hcops: Hcops, lab_os_dir: Path) -> None:
    result = hcops("infra", "outputs", "--region", str(lab_os_dir))
    assert result.code == 1
    assert "has not been provisioned" in result.stderr and "hcops infra up" in result.stderr


def test_preview_against_a_local_backend(hcops: Hcops, lab_os_dir: Path, tmp_path: Path) -> None:
    """Only where a pulumi binary exists: the real Automation API path with a file backend."""
    if find_cli() is None:
        pytest.skip("the pulumi CLI is not installed (LAB-NOTES: it cannot be downloaded here)")
    backend = tmp_path / "backend"
    backend.mkdir()
    result = hcops("infra", "preview", "--region", str(lab_os_dir), "--backend-url", f"file://{backend}")
    assert "Traceback" not in result.stderr
    # The stack exists in the local backend whether or not cloud credentials were available.
    assert list(backend.rglob("lab.json*")), result.stderr
    assert result.code in (0, 1, 2)


def test_outputs_and_status_read_what_up_writes(hcops: Hcops, city_plan: OfflinePlan) -> None:
    """`up` writes the program's `hcops` output as outputs.json; later commands read it back."""
    path = write_outputs(RegionOutputs.model_validate(city_plan.outputs))
    try:
        shown = hcops("--output", "json", "infra", "outputs", "--region", "example-city")
        assert shown.code == 0, shown.stderr
        data = json.loads(shown.stdout)
        assert data["provider"] == "openstack" and data["vips"] == {"front": "10.50.0.100"}
        assert data["hosts"]["db1"]["addresses"] == {"mgmt": "10.50.3.30", "db": "10.50.2.30"}
        assert read_outputs("example-city").hosts["ruijin-fe1"].ssh_address == IPv4Address("10.100.18.10")
        status = hcops("infra", "status", "--region", "example-city")
        assert status.code == 0, status.stderr
        assert "ruijin-fe1" in status.stdout and "10.50.3.30" in status.stdout
    finally:
        path.unlink()
