"""Run `playbooks/site.yml` against a region: the engine behind `hcops deploy`.

Why a wrapper rather than telling users to call ansible-playbook: it checks the things that make
an Ansible run fail late and obscurely (unknown region, region never provisioned, a --limit that
matches nothing) before starting, streams Ansible's own output unchanged, and turns the PLAY RECAP
into a per-host table with a Terraform-style exit code.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infra.state import RegionOutputs, read_outputs, region_state_dir
from inventories.ansible_groups import build
from inventories.errors import HcopsError
from inventories.model import Region

REPO = Path(__file__).resolve().parent.parent
PLAYBOOKS = REPO / "playbooks"
SITE = PLAYBOOKS / "site.yml"

RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class HostRecap:
    """One host's line of Ansible's PLAY RECAP."""

    ok: int = 0
    changed: int = 0
    unreachable: int = 0
    failed: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0

    @property
    def healthy(self) -> bool:
        return self.failed == 0 and self.unreachable == 0


@dataclass
class DeployResult:
    returncode: int
    recap: dict[str, HostRecap] = field(default_factory=dict)
    seconds: float = 0.0
    check: bool = False

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.recap.values())

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h for h, r in self.recap.items() if not r.healthy)

    def exit_code(self) -> int:
        """0 converged (or --check: nothing to change), 2 --check found changes, 1 failure."""
        if self.returncode != 0 or self.failed_hosts or not self.recap:
            return 1
        if self.check and self.changed:
            return 2
        return 0


def parse_recap(lines: list[str]) -> dict[str, HostRecap]:
    """Host counts from the PLAY RECAP section of ansible-playbook's output."""
    recap: dict[str, HostRecap] = {}
    in_recap = False
    for raw in lines:
        line = ANSI.sub("", raw).rstrip()
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if not in_recap:
            continue
        m = RECAP_LINE.match(line.strip())
        if not m:
            if line.strip():
                in_recap = False
            continue
        counts = dict(pair.split("=") for pair in m.group("counts").split())
        recap[m.group("host")] = HostRecap(**{k: int(v) for k, v in counts.items()
                                              if k in HostRecap.__dataclass_fields__})
    return recap


def inventory_file(region: Region) -> Path:
    path = region.root / "inventory.yml"
    if not path.exists():
        raise HcopsError(f"region {region.name!r} has no Ansible inventory file {path}",
                         "add inventory.yml with the line `plugin: hcops_region` to the region directory")
    return path


def check_limit(region: Region, limit: str) -> None:
    """Every pattern in --limit must name a host or group of the region (Ansible only warns)."""
    inv = build(region)
    hosts = set(inv.hostvars)
    groups = set(inv.groups) | set(inv.children) | {"all"}
    for raw in re.split(r"[,:]", limit):
        pattern = raw.strip().lstrip("!&")
        if not pattern:
            continue
        if pattern.startswith("~"):
            try:
                rx = re.compile(pattern[1:])
            except re.error as exc:
                raise HcopsError(f"--limit {raw!r} is not a valid regular expression: {exc}",
                                 "fix the pattern after `~`") from None
            if any(rx.search(h) for h in hosts):
                continue
        elif any(fnmatch.fnmatchcase(name, pattern) for name in hosts | groups):
            continue
        raise HcopsError(
            f"--limit {raw.strip()!r} matches no host or group of region {region.name!r}",
            f"use host names ({', '.join(sorted(hosts))}) or groups such as "
            f"{', '.join(sorted(g for g in groups if g.startswith(('role_', 'site_')))[:8])}")


def check_host_keys(region: str, outputs: RegionOutputs) -> None:
    """Deploy checks every host's SSH key against the known_hosts provisioning wrote (never off)."""
    if outputs.known_hosts is None or not outputs.known_hosts.exists():
        raise HcopsError(
            f"region {region!r} has no known_hosts file of its hosts' SSH keys"
            + (f" ({outputs.known_hosts} is missing)" if outputs.known_hosts else ""),
            f"rerun `hcops infra up --region {region}` (the lab writes it); for cloud hosts, record each "
            "host's key from its console log in a known_hosts file and set `known_hosts` in the outputs")


def ansible_playbook() -> str:
    local = Path(sys.executable).parent / "ansible-playbook"
    if local.exists():
        return str(local)
    found = shutil.which("ansible-playbook")
    if not found:
        raise HcopsError("ansible-playbook is not installed", "run ./run test once, or pip install ansible-core")
    return found


def build_command(region: Region, *, check: bool = False, diff: bool = False, limit: str | None = None,
                  tags: str | None = None, extra_vars: list[str] | None = None,
                  playbook: Path = SITE) -> list[str]:
    cmd = [ansible_playbook(), "-i", str(inventory_file(region)), str(playbook)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if limit:
        cmd += ["--limit", limit]
    if tags:
        cmd += ["--tags", tags]
    for ev in extra_vars or []:
        cmd += ["-e", ev]
    return cmd


FACT_CACHE_SECONDS = 3600


def deploy_env(region: str | None = None) -> dict[str, str]:
    """Ansible's environment; with a region, facts are cached per region for an hour.

    Why per region: scratch copies of the lab share host names (db1, app1) with other addresses,
    so one cache for all would hand one region's facts to another. A rerun within the hour skips
    fact gathering (a round trip per host); `HCOPS_FACT_CACHE=0` turns it off. Mitogen's linear
    strategy runs the plays when it is installed (a no-change rerun of the lab 3.2x faster than
    Ansible's own); `HCOPS_MITOGEN=0` runs Ansible's linear strategy instead.
    """
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(PLAYBOOKS / "ansible.cfg")
    if region and env.get("HCOPS_FACT_CACHE", "1") != "0":
        env.setdefault("ANSIBLE_GATHERING", "smart")
        env.setdefault("ANSIBLE_CACHE_PLUGIN", "jsonfile")
        env.setdefault("ANSIBLE_CACHE_PLUGIN_CONNECTION", str(region_state_dir(region) / "facts"))
        env.setdefault("ANSIBLE_CACHE_PLUGIN_TIMEOUT", str(FACT_CACHE_SECONDS))
    strategies = mitogen_strategies()
    if strategies and env.get("HCOPS_MITOGEN", "1") != "0":
        env.setdefault("ANSIBLE_STRATEGY_PLUGINS", strategies)
        env.setdefault("ANSIBLE_STRATEGY", "mitogen_linear")
    env.setdefault("ANSIBLE_NOCOLOR", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def mitogen_strategies() -> str | None:
    """Mitogen's strategy plugins, when installed: one persistent interpreter per host instead of a
    module upload and a new Python per task (benchmarks/deploy_converge.py measures both)."""
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy"
    return str(found) if found.is_dir() else None


def run_deploy(region: Region, *, check: bool = False, diff: bool = False, limit: str | None = None,
               tags: str | None = None, extra_vars: list[str] | None = None,
               echo: Callable[[str], None] | None = None, playbook: Path = SITE) -> DeployResult:
    """Run the playbook, streaming each output line to `echo` (stderr by default)."""
    outputs = read_outputs(region.name)  # unprovisioned regions stop here with the fix to apply
    if limit:
        check_limit(region, limit)
    check_host_keys(region.name, outputs)
    cmd = build_command(region, check=check, diff=diff, limit=limit, tags=tags, extra_vars=extra_vars,
                        playbook=playbook)
    write = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    started = time.monotonic()
    lines: list[str] = []
    with subprocess.Popen(cmd, cwd=REPO, env=deploy_env(region.name), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            write(line)
        returncode = proc.wait()
    return DeployResult(returncode, parse_recap(lines), round(time.monotonic() - started, 1), check)
