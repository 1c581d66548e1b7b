"""`hcops infra <op>` for OpenStack sites: call `infra.openstack.ops`, render, pick the exit code.

The engine returns results and takes the confirmation as a decision; this module asks (or
reads `--yes`), prints tables or JSON on stdout and progress on stderr.
"""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from cli.common import Exit, emit_json, stderr, stdout
from infra.openstack import ops, planview
from infra.providers import InfraOptions
from inventories.errors import HcopsError
from inventories.model import Region


def _progress(line: str) -> None:
    stderr.print(line.rstrip("\n"), markup=False, highlight=False)


def _confirmed(what: str, opts: InfraOptions) -> bool:
    if opts.yes:
        return True
    if not sys.stdin.isatty():
        raise HcopsError(f"{what} needs confirmation and the terminal is not interactive", "rerun with --yes")
    return bool(typer.confirm(f"{what}?", default=False))


def _print_checked(checked: ops.OfflineResult, strict: bool) -> None:
    for s in checked.schema_findings:
        stderr.print(f"schema: {s}", markup=False, highlight=False, style="red")
    for f in checked.findings:
        stderr.print(f"policy: {f}", markup=False, highlight=False, style="red" if strict else "yellow")
    for n in checked.notes:
        stderr.print(f"note: {n}", markup=False, highlight=False, style="yellow")


def preview(region: Region, opts: InfraOptions) -> int:
    checked = ops.offline_check(region)
    if opts.offline:
        if opts.json:
            doc = planview.as_json(checked.plan, region, checked.findings)
            doc["schema_findings"] = [s.as_dict() for s in checked.schema_findings]
            doc["notes"] = checked.notes
            emit_json(doc)
        else:
            planview.render(stdout, checked.plan, region, checked.findings)
            for s in checked.schema_findings:
                stdout.print(f"  schema: {s}", markup=False, highlight=False)
            n = len(checked.schema_findings)
            stdout.print(f"schema checks: {f'{n} finding(s)' if n else 'no findings'} against pulumi-openstack's "
                         "schema", highlight=False)
            for note in checked.notes:
                stdout.print(f"note: {note}", markup=False, highlight=False)
        if checked.schema_findings:
            stderr.print(f"error: {len(checked.schema_findings)} input(s) the provider would refuse",
                         style="bold red")
            return Exit.ERROR
        if checked.findings and opts.strict:
            stderr.print(f"error: {len(checked.findings)} policy finding(s) and --strict", style="bold red")
            return Exit.ERROR
        return Exit.CHANGES if checked.changes else Exit.OK
    _print_checked(checked, opts.strict)
    result = ops.preview(region, opts, checked, progress=_progress)
    if opts.json:
        emit_json({"region": result.region, "stack": result.stack, "changes": result.changes,
                   "findings": [f.as_dict() for f in result.findings]})
    return Exit.CHANGES if result.changed else Exit.OK


def up(region: Region, opts: InfraOptions) -> int:
    checked = ops.offline_check(region)
    _print_checked(checked, opts.strict)
    ops.require_cli()  # say what to install before asking anything
    confirmed = _confirmed(f"create or update the OpenStack resources of region {region.name}", opts)
    result = ops.up(region, opts, checked, confirmed=confirmed, progress=_progress)
    stderr.print(f"outputs written to {result.outputs_file}")
    if result.public_addresses:
        stderr.print("public addresses: " + ", ".join(f"{k} {v}" for k, v in result.public_addresses.items()))
    if opts.json:
        emit_json({"region": result.region, "outputs_file": result.outputs_file,
                   "public_addresses": result.public_addresses})
    return Exit.OK


def destroy(region: Region, opts: InfraOptions) -> int:
    ops.require_cli()
    confirmed = _confirmed(f"DESTROY every OpenStack resource of region {region.name} (data volumes are kept "
                           "in the cloud, out of the stack)", opts)
    result = ops.destroy(region, opts, confirmed=confirmed, progress=_progress)
    stderr.print(f"region {region.name}: {result.destroyed} OpenStack resource(s) destroyed"
                 + ("; outputs.json removed" if result.outputs_removed else ""))
    if result.retained_volumes:
        stderr.print("kept in the cloud (retain_on_delete): " + ", ".join(result.retained_volumes))
    if opts.json:
        emit_json({"region": result.region, "destroyed": result.destroyed,
                   "outputs_removed": result.outputs_removed, "retained": result.retained_volumes})
    return Exit.OK


def refresh(region: Region, opts: InfraOptions) -> int:
    result = ops.refresh(region, opts, progress=_progress)
    stderr.print(f"refresh: {result.changed} resource(s) differed from the recorded state")
    return Exit.OK


def status(region: Region, opts: InfraOptions) -> int:
    result = ops.status(region, opts)
    doc = result.outputs
    if doc is None and not result.stack_exists:
        raise HcopsError(f"region {region.name} has not been provisioned (no outputs, no stack)",
                         f"run `hcops infra up --region {region.name}`")
    hosts = doc.hosts if doc else {}
    if opts.json:
        emit_json({"region": region.name, "stack_exists": result.stack_exists,
                   "hosts": {h: {"site": o.site, "address": str(o.ssh_address), "id": o.provider_id}
                             for h, o in hosts.items()}, "last_update": result.last_update})
        return Exit.OK
    table = Table(title=f"{region.name}: OpenStack hosts", show_edge=False)
    for col in ("host", "site", "address", "server id"):
        table.add_column(col)
    for host, out in hosts.items():
        table.add_row(host, out.site, str(out.ssh_address), out.provider_id)
    stdout.print(table)
    if result.stack_exists is False:
        stdout.print("stack: not found at the backend (outputs.json is from an earlier run or another backend)")
    if result.last_update:
        lu = result.last_update
        stdout.print(f"last update: {lu['kind']} {lu['result']} at {lu['end_time']}")
    return Exit.OK


def outputs(region: Region, opts: InfraOptions) -> int:
    doc = ops.outputs(region)
    if opts.json:
        emit_json(doc.model_dump(mode="json"))
        return Exit.OK
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
    return Exit.OK
