"""Facts the program derives from the model (no Pulumi involved)."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from infra.openstack import topology
from infra.openstack.storage import bucket_lifecycle, lock_days
from infra.openstack.vpc import allocation_pool
from inventories.loader import load_region
from inventories.model import Region
from tests.infra.conftest import OPENSTACK_LAB


def test_sides_follow_site_kind(city: Region, lab_os: Region) -> None:
    assert topology.sides_used(city) == ["private", "public"]
    assert topology.side_of(city.sites["cloud"]) == "public"
    assert topology.side_of(city.sites["city-dc"]) == "private"
    assert topology.side_of(city.sites["ruijin"]) == "private"
    assert len(topology.openstack_sites(city)) == 20  # city DC, public cloud, 18 counties
    assert topology.side_of(lab_os.sites["local-dc"]) == "private"


def test_public_side_demand_matches_the_county_platform(city: Region) -> None:
    public = topology.demand(city, "public")
    assert (public.instances, public.vcpu, public.ram_mb // 1024) == (8, 216, 480)
    private = topology.demand(city, "private")
    assert private.instances == 3 + 18


def test_ha_sets_stay_on_one_side(city: Region) -> None:
    sets = {(h.service, h.side): h.hosts for h in topology.ha_sets(city)}
    assert sets == {("records-db", "public"): ("db1", "db2"), ("front", "public"): ("web1", "web2"),
                    ("portal", "public"): ("app1", "app2")}
    # city-db1 is the only records-db copy on the private side: nothing to keep apart there.
    assert all("city-db1" not in hosts for hosts in sets.values())


def test_overlapping_pairs_merge_into_one_server_group(lab_os: Region,
                                                       make_region: Callable[..., Path]) -> None:
    # lab: nginx and canary both run on app1/app2 -> one group for both services.
    groups = topology.anti_affinity_groups(lab_os)
    assert [(g.side, g.hosts, g.services) for g in groups] == [("public", ("app1", "app2"), ("front", "canary"))]
    # canary moved to app2 + zbx1: overlaps nginx on app2, so the three hosts form one group.
    path = make_region("lab", [*OPENSTACK_LAB, ("services.yml", "hosts: [app1, app2]\n    port: 8080",
                                                "hosts: [app2, zbx1]\n    port: 8080")])
    merged = topology.anti_affinity_groups(load_region(str(path)))
    assert [g.hosts for g in merged] == [("app1", "app2", "zbx1")]


def test_ingress_rules_one_per_flow_port_and_source(city: Region, lab_os: Region) -> None:
    rules = topology.ingress_rules(lab_os, "front")
    assert {(r.flow, r.port, str(r.cidr)) for r in rules} == {("web-in", 443, "0.0.0.0/0"), ("web-in", 80, "0.0.0.0/0")}
    zbx = topology.ingress_rules(city, "monitoring")
    # `from: cloud` is every network of the cloud site; both Zabbix ports each.
    cloud_nets = {str(n.cidr) for n in city.sites["cloud"].networks.values()}
    assert {str(r.cidr) for r in zbx if r.flow == "cloud-agents"} == cloud_nets
    assert {r.port for r in zbx} == {10051, 8081}
    assert len([r for r in zbx if r.flow == "cloud-agents"]) == 2 * len(cloud_nets)
    collector = topology.ingress_rules(city, "ruijin-collector")
    assert {(r.protocol, r.port) for r in collector} == {("udp", 51820)}


def test_sensitive_ports_include_model_db_and_admin_ports(city: Region) -> None:
    ports = topology.sensitive_ports(city)
    assert {3306, 1521, 22} <= ports
    assert 443 not in ports


def test_lifecycle_follows_backup_retention(city: Region) -> None:
    obs = city.services["obs"]
    buckets = obs.buckets  # type: ignore[union-attr]
    # yearly: 5 -> 5 * 366 days kept, plus a day of grace.
    assert bucket_lifecycle(city, "offsite-backups", buckets["offsite-backups"])["expirationDays"] == 1831
    assert bucket_lifecycle(city, "pacs-images", buckets["pacs-images"])["expirationDays"] is None
    assert lock_days(city, "offsite-backups") == 14


def test_allocation_pool_stays_clear_of_model_addresses(city: Region, lab_os: Region) -> None:
    start, end = allocation_pool(city, "cloud", "dmz")  # type: ignore[misc]
    assert (start, end) == (IPv4Address("10.50.0.192"), IPv4Address("10.50.0.254"))
    used = {a for h in city.sites["cloud"].hosts.values() for a in h.addresses.values()} | {IPv4Address("10.50.0.100")}
    assert not any(start <= a <= end for a in used)
    assert IPv4Network("10.50.0.0/24").broadcast_address > end
