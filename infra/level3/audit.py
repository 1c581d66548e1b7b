"""`hcops audit level3`: every clause row checked on every host now, as an assessor would.

The engine reaches hosts the way deploy does (the automation account over SSH with checked host
keys, root through sudo) using pytest-testinfra's ssh backend, runs each clause's probe on each
host it applies to, and returns an `AuditResult`: rows of clause, control, where configured, and
per-host status (PASS, FAIL, or NA with the reason). The CLI renders it as a table, JSON or HTML.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.level3.checks import CLAUSES, Clause
from infra.state import RegionOutputs, read_outputs, region_state_dir
from inventories.errors import HcopsError
from inventories.model import Region

STATUSES = ("PASS", "FAIL", "NA")


@dataclass
class HostResult:
    status: str  # PASS | FAIL | NA
    evidence: str


@dataclass
class Row:
    clause: str
    title: str
    control: str
    where: str
    hosts: dict[str, HostResult] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """FAIL if any host fails; PASS if any passes and none fails; NA when none applies."""
        states = {r.status for r in self.hosts.values()}
        if "FAIL" in states:
            return "FAIL"
        return "PASS" if "PASS" in states else "NA"


@dataclass
class AuditResult:
    region: str
    started: str
    seconds: float
    hosts: list[str]
    rows: list[Row]

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status == "FAIL"]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for row in self.rows:
            for res in row.hosts.values():
                out[res.status] += 1
        return out

    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "started": self.started, "seconds": self.seconds, "hosts": self.hosts,
                "counts": self.counts(), "passed": not self.failed,
                "rows": [{"clause": r.clause, "title": r.title, "control": r.control, "where": r.where,
                          "status": r.status,
                          "hosts": {h: {"status": x.status, "evidence": x.evidence} for h, x in r.hosts.items()}}
                         for r in self.rows]}


def ssh_config(region: Region, outputs: RegionOutputs) -> Path:
    """An ssh config for every host from the provisioning outputs (user, key, checked host keys)."""
    if outputs.known_hosts is None or not outputs.known_hosts.exists():
        raise HcopsError(f"region {region.name!r} has no known_hosts of its hosts' keys",
                         f"rerun `hcops infra up --region {region.name}`")
    lines = []
    for name, host in outputs.hosts.items():
        lines.append(f"Host {name}\n  HostName {host.ssh_address}\n  User {outputs.ssh_user}\n"
                     + (f"  IdentityFile {outputs.ssh_private_key}\n  IdentitiesOnly yes\n"
                        if outputs.ssh_private_key else "")
                     + f"  UserKnownHostsFile {outputs.known_hosts}\n  StrictHostKeyChecking yes\n"
                       "  BatchMode yes\n  ConnectTimeout 10\n  LogLevel ERROR\n")
    path = region_state_dir(region.name, create=True) / "ssh" / "audit_config"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text("\n".join(lines))
    return path


def _parse(out: str, rc: int, err: str) -> HostResult:
    line = next((x for x in out.strip().splitlines() if x.split(" ", 1)[0] in STATUSES), "")
    if not line:
        return HostResult("FAIL", f"probe gave no verdict (exit {rc}): {(err or out).strip()[-300:]}")
    status, _, evidence = line.partition(" ")
    return HostResult(status, evidence.strip())


def _probe_env(region: Region) -> str:
    expected = " ".join([region.spec.region.automation_account, *sorted(region.spec.admins)])
    return (f"HCOPS_AUTOMATION={shlex.quote(region.spec.region.automation_account)} "
            f"HCOPS_EXPECTED_ACCOUNTS={shlex.quote(expected)} "
            f"HCOPS_LOG_HOST={shlex.quote(region.spec.region.log_host or '')} "
            f"HCOPS_HOST_COUNT={len(region.hosts)}")


def _check_host(region: Region, config: Path, host: str, clauses: list[Clause]) -> dict[str, HostResult]:
    import testinfra  # noqa: PLC0415 (pytest-testinfra: imported only when an audit runs)

    target = testinfra.get_host(f"ssh://{host}", ssh_config=str(config), sudo=True)
    env = _probe_env(region)
    results: dict[str, HostResult] = {}
    for clause in clauses:
        if not clause.applies(region, host):
            continue
        try:
            cmd = target.run(f"env {env} /bin/bash -c {shlex.quote(clause.probe)}")
        except Exception as exc:
            results[clause.clause] = HostResult("FAIL", f"host unreachable: {exc}")
            continue
        results[clause.clause] = _parse(cmd.stdout, cmd.rc, cmd.stderr)
    return results


def run_audit(region: Region, *, hosts: list[str] | None = None,
              progress: Callable[[str], None] | None = None) -> AuditResult:
    """Check every clause on every host (in parallel) and from the model."""
    outputs = read_outputs(region.name)
    names = hosts or sorted(outputs.hosts)
    unknown = sorted(set(names) - set(outputs.hosts))
    if unknown:
        raise HcopsError(f"unknown host(s) {', '.join(unknown)} in region {region.name!r}",
                         f"use host names from: {', '.join(sorted(outputs.hosts))}")
    config = ssh_config(region, outputs)
    started = dt.datetime.now(dt.UTC)
    host_clauses = [c for c in CLAUSES if c.model is None]
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(names)))) as pool:
        per_host = dict(zip(names, pool.map(lambda h: _check_host(region, config, h, host_clauses), names),
                            strict=True))
    if progress:
        progress(f"checked {len(host_clauses)} clauses on {len(names)} hosts")
    rows: list[Row] = []
    for clause in CLAUSES:
        row = Row(clause.clause, clause.title, clause.control, clause.where)
        if clause.model is not None:
            status, evidence = clause.model(region)
            row.hosts["(model)"] = HostResult(status, evidence)
        else:
            for host in names:
                if clause.clause in per_host[host]:
                    row.hosts[host] = per_host[host][clause.clause]
        rows.append(row)
    seconds = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    return AuditResult(region.name, started.isoformat(timespec="seconds"), seconds, names, rows)
