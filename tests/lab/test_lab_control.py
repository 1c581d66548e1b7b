"""The levers drills pull (cut a link, power a host off and on) and `up`'s promises
(idempotent, repairs a killed host). Each test puts the lab back as it found it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

import pytest

from infra.lab import hosts
from tests.conftest import CliResult
from tests.fixtures.lab import Lab

pytestmark = pytest.mark.lab

LINK = "dedicated-line"


def _reaches(lab: Lab, src: str, dst: str) -> bool:
    return lab.run(src, f"ping -c1 -W1 {dst}", check=False).returncode == 0


def test_second_up_changes_nothing(lab: Lab, hcops: Callable[..., CliResult]) -> None:
    res = hcops("infra", "up", "--region", lab.region_arg)
    assert res.code == 0, res.stderr
    assert "nothing to do" in res.stdout
    assert hcops("infra", "preview", "--region", lab.region_arg).code == 0


def test_cut_link_isolates_the_sites_and_restore_brings_them_back(lab: Lab, hcops: Callable[..., CliResult]) -> None:
    lab.wait_not_busy()
    s3_host = str(lab.layout.bridges["cloud.vpc"].host_address)
    assert _reaches(lab, "db1", "app1")
    res = hcops("lab", "cut-link", LINK, "--region", lab.region_arg)
    try:
        assert res.code == 0, res.stderr
        assert not _reaches(lab, "db1", "app1")
        assert not _reaches(lab, "zbx1", "collector1")
        assert not _reaches(lab, "db1", s3_host)  # not even the lab machine's address on the other side
        assert _reaches(lab, "db1", "backup1") and _reaches(lab, "app1", "db2")  # each site still works
        st = hcops("--output", "json", "infra", "status", "--region", lab.region_arg)
        assert '"state": "cut"' in st.stdout
        assert hcops("infra", "preview", "--region", lab.region_arg).code == 2  # up would restore the line
    finally:
        res = hcops("lab", "restore-link", LINK, "--region", lab.region_arg)
    assert res.code == 0, res.stderr
    assert _reaches(lab, "db1", "app1") and _reaches(lab, "zbx1", "collector1")


def test_stop_host_powers_off_and_start_host_boots_with_its_disk(lab: Lab, hcops: Callable[..., CliResult]) -> None:
    lab.wait_not_busy()
    host = "backup1"
    lab.run(host, "echo kept > /root/lab-test-marker")
    res = hcops("lab", "stop-host", host, "--region", lab.region_arg)
    try:
        assert res.code == 0, res.stderr
        assert lab.host_state(host) == "stopped"
        assert hosts.nspawn_pid(lab.layout.host(host)) is None
        assert lab.run(host, "true", check=False, timeout=20).returncode != 0
        assert not _reaches(lab, "db1", host)
    finally:
        res = hcops("lab", "start-host", host, "--region", lab.region_arg)
    assert res.code == 0, res.stderr
    assert "running" in res.stdout
    assert lab.run(host, "cat /root/lab-test-marker").stdout.strip() == "kept"
    lab.run(host, "rm -f /root/lab-test-marker")


def test_up_repairs_a_killed_host(lab: Lab, hcops: Callable[..., CliResult]) -> None:
    lab.wait_not_busy()
    spec = lab.layout.host("collector1")
    lead = hosts.leader(spec)
    assert lead is not None
    os.kill(lead, signal.SIGKILL)  # the host dies: init gone, nspawn exits
    deadline = time.monotonic() + 20
    while hosts.nspawn_pid(spec) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lab.host_state("collector1") == "stopped"
    pre = hcops("infra", "preview", "--region", lab.region_arg)
    assert pre.code == 2
    assert "collector1" in pre.stderr
    res = hcops("infra", "up", "--region", lab.region_arg)
    assert res.code == 0, res.stderr
    assert "host collector1 booted: running" in res.stderr
    assert lab.run("collector1", "systemctl is-system-running").stdout.strip() == "running"


def test_up_repairs_a_host_whose_nspawn_was_killed(lab: Lab) -> None:
    lab.wait_not_busy()
    spec = lab.layout.host("app2")
    pid = hosts.nspawn_pid(spec)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # the supervisor dies; the container's init is left behind
    time.sleep(0.5)
    assert lab.host_state("app2") == "orphaned"
    done = lab.ensure_up()
    assert "host app2 booted: running" in done
    assert hosts.orphans(spec) == []
    assert lab.run("app2", "systemctl is-system-running").stdout.strip() == "running"


def test_status_lists_every_host_with_state_and_uptime(lab: Lab, hcops: Callable[..., CliResult]) -> None:
    import json

    res = hcops("--output", "json", "infra", "status", "--region", lab.region_arg)
    assert res.code == 0
    data = json.loads(res.stdout)
    rows = {r["host"]: r for r in data["hosts"]}
    assert set(rows) == set(lab.hosts)
    for name, row in rows.items():
        assert row["state"] == "running", name
        assert row["address"] == lab.address(name)
        assert isinstance(row["uptime_s"], int) and row["uptime_s"] >= 0
    assert data["links"][0] == {"link": LINK, "state": "up", "bandwidth_mbit": 100,
                                "router": lab.layout.links[LINK].netns}
    table = hcops("infra", "status", "--region", lab.region_arg)
    assert "zbx1" in table.stdout and lab.address("zbx1") in table.stdout


def test_outputs_are_the_provider_contract(lab: Lab, hcops: Callable[..., CliResult]) -> None:
    import json

    res = hcops("--output", "json", "infra", "outputs", "--region", lab.region_arg)
    assert res.code == 0
    data = json.loads(res.stdout)
    assert data["provider"] == "lab"
    assert data["hosts"]["db1"]["ssh_address"] == lab.address("db1")
    assert data["vips"] == {"front": str(lab.region.spec.services["front"].vip)}
    s3_bridge = lab.layout.bridges["cloud.vpc"]
    assert data["s3"]["endpoint"] == f"http://{s3_bridge.host_address}:9000"
    assert oct(os.stat(data["ssh_private_key"]).st_mode & 0o777) == "0o600"


def test_up_removes_a_leftover_veth_of_a_dead_container(lab: Lab) -> None:
    """CI once found `vb-lab-db1` still present from a killed session: every lab test errored."""
    lab.wait_not_busy()
    spec = lab.layout.host("app2")
    hosts.stop(spec)
    assert lab.host_state("app2") == "stopped"
    link = f"vb-{spec.machine}"
    # A leftover as a killed session leaves it: the host-side veth on our bridge, peer unused.
    subprocess.run(["ip", "link", "add", link, "type", "veth", "peer", "name", "hcx-stale0"], check=True)
    subprocess.run(["ip", "link", "set", link, "master", spec.bridge.name], check=True)
    done = lab.ensure_up()
    assert "host app2 booted: running" in done
    assert lab.run("app2", "systemctl is-system-running").stdout.strip() == "running"
    assert subprocess.run(["ip", "link", "show", "hcx-stale0"], capture_output=True, check=False).returncode != 0


def test_veth_taken_reads_the_link_name_from_what_nspawn_printed() -> None:
    printed = ("Spawning container lab-db1 on /var/lib/hcops/lab/hosts/db1/root.\n"
               "Failed to add new veth interfaces (vb-lab-db1:host0): File exists\n"
               "Parent died too early\n")
    assert hosts.veth_taken(printed) == "vb-lab-db1"
    assert hosts.veth_taken("Spawning container lab-db1\nParent died too early\n") is None
