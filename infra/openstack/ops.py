"""`hcops infra <op>` for OpenStack sites: the functions `infra.providers` dispatches to.

`preview --offline` runs the program under the mock runtime and needs nothing but Python.
Everything else goes through the Automation API and needs the `pulumi` CLI; without it the
command stops with what to install (exit 1). `up` first runs the program offline and applies
the policy checks (`--strict` stops on a finding), then a quota preflight inside the real run.
Exit codes: 0 ok / no changes, 2 changes planned, 1 error.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import typer
from pulumi import automation as auto
from rich.table import Table

from cli.common import emit_json, stderr, stdout
from infra.openstack import automation, planview
from infra.openstack.config import ProgramConfig, build_config
from infra.openstack.mocks import OfflinePlan, run_offline
from infra.openstack.policy import Finding, PolicyContext, check
from infra.openstack.program import OUTPUT_KEY, PUBLIC_KEY, pulumi_main
from infra.openstack.topology import openstack_sites
from infra.providers import InfraOptions
from infra.state import RegionOutputs, outputs_path, read_outputs, region_state_dir, write_outputs
from inventories.errors import HcopsError
from inventories.model import Region

OK, ERROR, CHANGES = 0, 1, 2


def _config(region: Region, offline: bool) -> ProgramConfig:
    try:
        return build_config(region.name, {}, offline=offline)
    except (ValueError, OSError) as exc:
        raise HcopsError(f"OpenStack settings for region {region.name}: {exc}",
                         "set hcops:sshPublicKey / HCOPS_SSH_PUBLIC_KEY_FILE, or run `hcops infra up`, "
                         "which generates a key in the region's state directory") from None


def offline_plan(region: Region) -> tuple[OfflinePlan, list[Finding]]:
    """Run the program under mocks and check the policies over what it declared."""
    if not openstack_sites(region):
        raise HcopsError(f"region {region.name} has no `provider: openstack` site",
                         "set `provider: openstack` on the sites Pulumi should build")
    cfg = _config(region, offline=True)
    try:
        plan = run_offline(region, cfg)
    except ValueError as exc:
        raise HcopsError(f"the OpenStack program refused region {region.name}: {exc}",
                         "fix the model or the stack settings named above") from None
    findings = check(plan.graph, PolicyContext.from_region(region, cfg.encrypted_volume_types))
    return plan, findings


def _print_findings(findings: list[Finding], strict: bool) -> None:
    for f in findings:
        stderr.print(f"policy: {f}", markup=False, highlight=False, style="red" if strict else "yellow")


def _progress(line: str) -> None:
    stderr.print(line.rstrip("\n"), markup=False, highlight=False)


def _confirm(what: str, opts: InfraOptions) -> None:
    if opts.yes:
        return
    if not sys.stdin.isatty():
        raise HcopsError(f"{what} needs confirmation and the terminal is not interactive",
                         "rerun with --yes")
    if not typer.confirm(f"{what}?", default=False):
        raise HcopsError(f"{what}: not confirmed", "rerun and answer yes, or pass --yes")


def _changes(summary: dict[Any, int] | None) -> int:
    return sum(n for op, n in (summary or {}).items() if str(getattr(op, "value", op)) != "same")


def _stack(region: Region, opts: InfraOptions) -> auto.Stack:
    return automation.select_stack(region, opts, lambda: pulumi_main(region))


def _run(what: str, fn: Any) -> Any:
    try:
        return fn()
    except auto.errors.CommandError as exc:
        lines = [ln for ln in str(exc).splitlines() if ln.strip()][-8:]
        raise HcopsError(f"pulumi {what} failed: " + " | ".join(ln.strip() for ln in lines),
                         "read the pulumi output above; nothing after the failing step was changed") from None


def preview(region: Region, opts: InfraOptions) -> int:
    if opts.offline:
        plan, findings = offline_plan(region)
        if opts.json:
            emit_json(planview.as_json(plan, region, findings))
        else:
            planview.render(stdout, plan, region, findings)
        if findings and opts.strict:
            stderr.print(f"error: {len(findings)} policy finding(s) and --strict", style="bold red")
            return ERROR
        return CHANGES if plan.graph.custom_resources() else OK
    automation.pulumi_command()  # fail fast, before any state is written
    _, findings = offline_plan(region)
    _print_findings(findings, opts.strict)
    if findings and opts.strict:
        return ERROR
    stack = _stack(region, opts)
    result = _run("preview", lambda: stack.preview(on_output=_progress))
    changes = _changes(result.change_summary)
    if opts.json:
        emit_json({"region": region.name, "stack": stack.name, "changes": {
            str(getattr(k, "value", k)): v for k, v in (result.change_summary or {}).items()},
            "findings": [f.as_dict() for f in findings]})
    return CHANGES if changes else OK


def ensure_ssh_key(region: Region) -> None:
    """Generate the region's admin key pair (state dir, 0600) unless a key was configured."""
    key = region_state_dir(region.name, create=True) / "ssh" / "id_ed25519"
    if key.exists():
        return
    key.parent.mkdir(mode=0o700, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"hcops-{region.name}", "-f", str(key)],
                   check=True)


def up(region: Region, opts: InfraOptions) -> int:
    automation.pulumi_command()
    _, findings = offline_plan(region)
    _print_findings(findings, opts.strict)
    if findings and opts.strict:
        raise HcopsError(f"{len(findings)} policy finding(s) and --strict: nothing was changed",
                         "fix the model (or the program) so the findings above go away")
    _confirm(f"create or update the OpenStack resources of region {region.name}", opts)
    ensure_ssh_key(region)
    stack = _stack(region, opts)
    stack.set_config("hcops:quotaPreflight", auto.ConfigValue("true"))
    result = _run("up", lambda: stack.up(on_output=_progress))
    doc = result.outputs.get(OUTPUT_KEY)
    if doc is None:
        raise HcopsError("the stack has no `hcops` output", "rerun `hcops infra up`")
    path = write_outputs(RegionOutputs.model_validate(doc.value))
    public = result.outputs.get(PUBLIC_KEY)
    stderr.print(f"outputs written to {path}")
    if public and public.value:
        stderr.print("public addresses: " + ", ".join(f"{k} {v}" for k, v in public.value.items()))
    return OK


def destroy(region: Region, opts: InfraOptions) -> int:
    automation.pulumi_command()
    _confirm(f"DESTROY every OpenStack resource of region {region.name}", opts)
    stack = _stack(region, opts)
    _run("destroy", lambda: stack.destroy(on_output=_progress))
    path = outputs_path(region.name)
    if path.exists():
        path.unlink()
    stderr.print(f"region {region.name}: OpenStack resources destroyed")
    return OK


def refresh(region: Region, opts: InfraOptions) -> int:
    automation.pulumi_command()
    stack = _stack(region, opts)
    result = _run("refresh", lambda: stack.refresh(on_output=_progress))
    changed = _changes(result.summary.resource_changes)
    stderr.print(f"refresh: {changed} resource(s) differed from the recorded state")
    return OK


def status(region: Region, opts: InfraOptions) -> int:
    """The provisioned hosts (from outputs.json) and, where the CLI exists, the stack's last update."""
    doc = read_outputs(region.name)
    last: dict[str, Any] = {}
    if automation.find_cli() is not None:
        info = _run("stack info", lambda: _stack(region, opts).info())
        if info is not None:
            last = {"result": info.result, "kind": info.kind, "end_time": str(info.end_time)}
    if opts.json:
        emit_json({"region": region.name, "hosts": {h: {"site": o.site, "address": str(o.ssh_address),
                                                        "id": o.provider_id} for h, o in doc.hosts.items()},
                   "last_update": last})
        return OK
    table = Table(title=f"{region.name}: OpenStack hosts", show_edge=False)
    for col in ("host", "site", "address", "server id"):
        table.add_column(col)
    for host, out in doc.hosts.items():
        table.add_row(host, out.site, str(out.ssh_address), out.provider_id)
    stdout.print(table)
    if last:
        stdout.print(f"last update: {last['kind']} {last['result']} at {last['end_time']}")
    return OK


def outputs(region: Region, opts: InfraOptions) -> int:
    doc = read_outputs(region.name)
    if opts.json:
        emit_json(doc.model_dump(mode="json"))
        return OK
    table = Table(title=f"{region.name}: outputs ({doc.provider})", show_edge=False)
    for col in ("host", "site", "ssh address", "addresses"):
        table.add_column(col)
    for host, out in doc.hosts.items():
        table.add_row(host, out.site, str(out.ssh_address), ", ".join(f"{n}={a}" for n, a in out.addresses.items()))
    stdout.print(table)
    for svc, vip in doc.vips.items():
        stdout.print(f"VIP {svc}: {vip}")
    if doc.s3:
        stdout.print(f"S3 {doc.s3.endpoint}: " + ", ".join(f"{k}->{v}" for k, v in doc.s3.buckets.items()))
    return OK
