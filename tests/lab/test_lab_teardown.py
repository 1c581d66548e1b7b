"""`down` removes everything the lab made. Runs last in the session (marker `lab_teardown`).

If this session built the shared lab, the test destroys that lab (the full-size proof). If the
lab was already running before the session (other engineers' playbooks are on it), it builds a
scratch copy of the lab model on its own addresses, repairs a deleted bridge there, and destroys
that instead, so a developer's shared lab is never wiped by a test run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.lab import hosts
from infra.lab.layout import Layout
from inventories.loader import load_region
from tests.conftest import CliResult
from tests.fixtures.lab import Lab, make_scratch_region

pytestmark = [pytest.mark.lab, pytest.mark.lab_teardown]


def _leftovers(layout: Layout) -> list[str]:
    """Everything of this lab still present on the machine."""
    left: list[str] = []
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    for br in layout.bridges.values():
        if f" {br.name}:" in links or f" {br.name}@" in links:
            left.append(f"bridge {br.name}")
    if layout.alias_prefix in subprocess.run(["ip", "-d", "link", "show"], capture_output=True, text=True,
                                             check=True).stdout:
        left.append("a link labelled " + layout.alias_prefix)
    for link in layout.links.values():
        if Path("/run/netns", link.netns).exists():
            left.append(f"namespace {link.netns}")
    rules = subprocess.run(["ip", "rule"], capture_output=True, text=True, check=True).stdout
    for br in layout.bridges.values():
        if str(br.host_address) in rules:
            left.append(f"rule from {br.host_address}")
        if subprocess.run(["ip", "route", "show", "table", str(br.table)], capture_output=True, text=True,
                          check=False).stdout.strip():
            left.append(f"table {br.table}")
    if subprocess.run(["nft", "list", "table", "inet", layout.nft_table], capture_output=True,
                      check=False).returncode == 0:
        left.append(f"nft table {layout.nft_table}")
    mounts = Path("/proc/self/mountinfo").read_text()
    for h in layout.hosts.values():
        if str(h.root) in mounts:
            left.append(f"mount {h.root}")
        if hosts._marked_inits(h.machine) or hosts.nspawn_pid(h):
            left.append(f"container {h.machine}")
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    for br in layout.bridges.values():
        if f"proxy/{br.key}.conf" in procs and f"/run/hcops/{layout.name}/" in procs:
            left.append(f"proxy {br.key}")
    if layout.s3 and f"-H {layout.s3.bridge.host_address} " in procs:
        left.append("s3 endpoint")
    for sub in ("hosts", "run", "ssh", "s3", "logs", "outputs.json", "lab.json"):
        if (layout.state / sub).exists():
            left.append(f"state {sub}")
    return left


def test_down_leaves_nothing_behind(lab: Lab, tmp_path: Path, hcops: Callable[..., CliResult]) -> None:
    if lab.brought_up:
        layout = lab.layout
        region_arg = lab.region_arg
    else:
        region_dir = make_scratch_region(tmp_path, "labscratch")
        region_arg = str(region_dir)
        layout = Layout(load_region(region_arg))
        res = hcops("infra", "up", "--region", region_arg)
        assert res.code == 0, res.stderr
        # repair: a deleted bridge comes back and its hosts rejoin it
        br = layout.bridges["cloud.vpc"]
        subprocess.run(["ip", "link", "del", br.name], check=True)
        pre = hcops("infra", "preview", "--region", region_arg)
        assert pre.code == 2 and "repair" in pre.stderr
        res = hcops("infra", "up", "--region", region_arg)
        assert res.code == 0, res.stderr
        ping = subprocess.run(["ssh", "-F", str(layout.ssh_config), "db1", "ping -c1 -W2 app1"],
                              capture_output=True, text=True, check=False)
        assert ping.returncode == 0, ping.stdout + ping.stderr
    res = hcops("infra", "down", "--region", region_arg, "--yes")
    assert res.code == 0, res.stderr
    assert _leftovers(layout) == []
    if not lab.brought_up:
        assert not layout.state.exists()  # the scratch lab kept no secrets: its state dir is gone too
    again = hcops("infra", "down", "--region", region_arg, "--yes")
    assert again.code == 0 and "nothing to remove" in again.stdout
