"""Derived facts of the shipped regions: computed from the model, never typed twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inventories.ansible_groups import build
from inventories.loader import load_region


@pytest.fixture(scope="module")
def city():
    return load_region("example-city")


@pytest.fixture(scope="module")
def lab():
    return load_region("lab")


def test_example_city_matches_the_source_figures(city):
    assert len(city.counties) == 18
    assert "ruijin" in city.counties and "zhanggong" in city.counties
    cloud = city.totals("cloud")
    assert cloud == {"hosts": 8, "vcpu": 216, "ram_gb": 480}
    pacs = city.services["obs"].buckets["pacs-images"]  # type: ignore[union-attr]
    assert (pacs.capacity_tb, pacs.growth_tb_per_year) == (230, 40)
    assert city.links["city-cloud-line"].bandwidth_mbit >= 1000


def test_availability_budget_from_target(city):
    # 99.95% is 262.8 minutes a year and 21.9 minutes a 30.4-day month.
    assert city.allowed_downtime_minutes("platform-year") == 262.8
    assert city.allowed_downtime_minutes("platform") == pytest.approx(21.9, abs=0.05)


def test_server_ids_are_unique_and_primary_first(city, lab):
    assert lab.mysql_server_ids == {"db1": 1, "db2": 2}
    ids = city.mysql_server_ids
    assert ids["db1"] == 1 and len(set(ids.values())) == len(ids) == 3


def test_service_addresses_follow_network_purpose(city, lab):
    # db1 has mgmt and db addresses: MySQL listens on the db network.
    assert str(city.service_address("records-db", "db1")) == "10.50.2.30"
    assert str(city.service_address("front", "web1")) == "10.50.0.10"
    # A single-homed lab host listens on its only address.
    assert str(lab.service_address("appdb", "db1")) == "10.231.1.11"
    # Management traffic prefers the mgmt network.
    assert str(city.hosts["db1"].primary_address) == "10.50.3.30"


def test_ansible_groups_are_derived(lab, city):
    inv = build(lab)
    assert inv.groups["mysql_primary"] == ["db1"]
    assert inv.groups["mysql_replica"] == ["db2"]
    assert sorted(inv.groups["role_nginx"]) == ["app1", "app2"]
    assert inv.hostvars["db2"]["hcops_mysql_server_id"] == 2
    assert inv.hostvars["db2"]["ansible_host"] == "10.231.2.12"
    assert len([g for g in build(city).groups if g.startswith("county_")]) == 18


def test_deploy_follows_the_primary_failover_recorded(lab, tmp_path, monkeypatch):
    from infra.state import read_db_primaries, record_db_primary, topology_path
    from inventories.errors import HcopsError

    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path))
    assert read_db_primaries("lab") == {}
    record_db_primary("lab", "appdb", "db2")  # after a failover to db2
    inv = build(lab, None, read_db_primaries("lab"))
    assert inv.groups["mysql_primary"] == ["db2"] and inv.groups["mysql_replica"] == ["db1"]
    assert inv.group_vars["all"]["hcops_db_primaries"] == {"appdb": "db2"}
    # a record naming a host that is no longer a server of the service falls back to the model
    assert build(lab, None, {"appdb": "zbx1"}).group_vars["all"]["hcops_db_primaries"] == {"appdb": "db1"}
    topology_path("lab").write_text("{not json")
    with pytest.raises(HcopsError, match="not a valid topology record"):
        read_db_primaries("lab")


@pytest.mark.parametrize("region", ["lab", "example-city"])
def test_ansible_inventory_cli_reads_the_model(region: str, repo: Path):
    env_bin = Path(sys.executable).parent
    proc = subprocess.run(
        [str(env_bin / "ansible-inventory"), "-i", f"../inventories/{region}/inventory.yml", "--list"],
        cwd=repo / "playbooks", capture_output=True, text=True, check=False, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    model = load_region(region)
    assert set(data["_meta"]["hostvars"]) == set(model.hosts)
    county_groups = {g for g in data if g.startswith("county_")}
    assert len(county_groups) == len(model.counties)


def test_ansible_inventory_reports_model_errors(tmp_path: Path, repo: Path):
    import shutil

    region = tmp_path / "lab"
    shutil.copytree(repo / "inventories" / "lab", region)
    (region / "extra.yml").write_text("slos:\n  x:\n    service: nope\n    target: 99.9\n")
    env_bin = Path(sys.executable).parent
    proc = subprocess.run(
        [str(env_bin / "ansible-inventory"), "-i", str(region / "inventory.yml"), "--list"],
        cwd=repo / "playbooks", capture_output=True, text=True, check=False, timeout=120,
    )
    assert "SLO on unknown service 'nope'" in proc.stderr
    assert "extra.yml:3:" in proc.stderr


def test_graph_outputs(hcops, tmp_path: Path):
    res = hcops("inventory", "graph", "lab")
    assert res.code == 0
    assert res.stdout.startswith("flowchart LR")
    assert "dedicated-line: 100 Mbit/s, wireguard" in res.stdout
    res = hcops("inventory", "graph", "lab", "--format", "dot")
    assert res.stdout.startswith("graph region {") and "10.231.2.13" in res.stdout
    bad = hcops("inventory", "graph", "lab", "--format", "png")
    assert bad.code == 64 and "'png' is not one of 'mermaid', 'dot'" in bad.stderr  # a usage error


def test_graph_svg_with_graphviz(hcops, tmp_path: Path):
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("Graphviz `dot` is not installed (./run installs it)")
    svg = tmp_path / "lab.svg"
    res = hcops("inventory", "graph", "lab", "--format", "dot", "--svg", str(svg))
    assert res.code == 0, res.stderr
    assert svg.read_text().lstrip().startswith("<?xml") and "collector1" in svg.read_text()


def test_example_city_json_lists_18_counties(hcops):
    res = hcops("--output", "json", "inventory", "show", "example-city")
    assert res.code == 0
    assert len(json.loads(res.stdout)["counties"]) == 18
