"""`hcops infra`: provision, inspect and remove a region's hosts with its sites' providers.

Each provider's engine returns a result object (`infra.providers.OpResult`); this module picks
its renderer (`cli.lab.RENDERERS` for the lab), prints it and exits with its code. A provider
that still prints for itself returns a bare exit code, which is passed through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from cli import lab as lab_cli
from cli.common import REGION_OPTION, Exit, confirm, emit_json, examples, is_json, plural, region_from, stderr, table
from cli.common import stdout as out
from infra.providers import InfraOptions, load_ops, providers_of
from inventories.errors import HcopsError
from inventories.model import Region

app = typer.Typer(help="Provision regions: Pulumi on OpenStack (needs the pulumi CLI, except preview --offline), "
                       "or real systemd hosts for the lab.",
                  no_args_is_help=True)

BACKEND_OPTION = typer.Option(None, "--backend-url", metavar="URL",
                              help="Pulumi state backend (default: a local file in the region's state directory).")


def _renderers() -> dict[type, Callable[[Any, bool], None]]:
    return {**lab_cli.RENDERERS}


def _render(result: Any, as_json: bool) -> int:
    if isinstance(result, int):
        return result
    renderer = _renderers().get(type(result))
    if renderer is None:
        raise TypeError(f"no renderer for {type(result).__name__}")
    renderer(result, as_json)
    return int(result.exit_code)


def _run(ctx: typer.Context, region: str | None, op: str, opts: InfraOptions, reg: Region | None = None) -> None:
    reg = reg or region_from(ctx, region)
    opts.json = is_json(ctx)
    opts.progress = lab_cli.progress
    opts.on_plan = lambda plan: lab_cli.show_plan(plan, opts.json)
    worst: int = Exit.OK
    for provider in providers_of(reg):
        code = _render(getattr(load_ops(provider), op)(reg, opts), opts.json)
        if code == Exit.ERROR:
            raise typer.Exit(Exit.ERROR)
        worst = max(worst, code)
    raise typer.Exit(worst)


def _summary(ctx: typer.Context, reg: Region, strict: bool) -> None:
    """The offline OpenStack plan in a screenful: resources per site and per type, demand, findings."""
    ops: Any = load_ops("openstack")
    from infra.openstack import planview  # noqa: PLC0415 (Pulumi loads only when a region uses it)

    plan, findings = ops.offline_plan(reg)
    data = planview.as_json(plan, reg, findings)
    if is_json(ctx):
        emit_json({k: v for k, v in data.items() if k != "placements"} | {
            "placements": {p: v["counts"] for p, v in data["placements"].items()}})
    else:
        out.print(planview.NOTICE, style="bold yellow", soft_wrap=True)
        out.print(f"region {reg.name}: {plural(int(data['total']), 'resource')} to create "
                  "(without --summary: every resource with its key properties)", soft_wrap=True)
        alike: dict[tuple[tuple[str, int], ...], list[str]] = {}
        for place, info in data["placements"].items():
            alike.setdefault(tuple(info["counts"].items()), []).append(place)
        places = table("placement", "resources each", "by type", title="where (placements with the same "
                       "resources share a row)")
        for counts, names in alike.items():
            kinds = {n.partition(":")[0] for n in names}
            label = names[0] if len(names) == 1 else f"{len(names)} {'/'.join(sorted(kinds))}s: " + ", ".join(
                n.partition(":")[2] for n in names)
            places.add_row(label, str(sum(n for _, n in counts)), ", ".join(f"{k} {n}" for k, n in counts))
        out.print(places)
        sides = table("side", "instances", "vCPU", "RAM GB", "volume GB", title="compute asked of each side")
        for side, d in data["demand"].items():
            sides.add_row(side, str(d.get("instances")), str(d.get("vcpu")), str(d.get("ram_gb", "")),
                          str(d.get("volume_gb")))
        out.print(sides)
        out.print(f"policy checks: {plural(len(findings), 'finding')}" if findings else "policy checks: no findings")
        for f in findings:
            out.print(f"  {f}", markup=False, highlight=False, soft_wrap=True)
    if findings and strict:
        stderr.print(f"error: {plural(len(findings), 'policy finding')} and --strict", style="bold red")
        raise typer.Exit(Exit.ERROR)
    raise typer.Exit(Exit.CHANGES if data["total"] else Exit.OK)


@app.command(epilog=examples("hcops infra preview --region lab",
                             "hcops infra preview --region example-city --offline --summary"))
def preview(
    ctx: typer.Context,
    *,
    region: str | None = REGION_OPTION,
    offline: bool = typer.Option(False, "--offline", help="OpenStack: run the program under Pulumi's mock runtime; "
                                 "no cloud is contacted and no pulumi CLI is needed."),
    summary: bool = typer.Option(False, "--summary", "-s", help="With --offline: counts per site and type "
                                 "instead of every resource."),
    strict: bool = typer.Option(False, "--strict", help="Policy findings fail the command."),
    backend_url: str | None = BACKEND_OPTION,
) -> None:
    """Show what `up` would create or change. Exit 0 no changes, 2 changes, 1 error."""
    reg = region_from(ctx, region)
    if summary and "openstack" in providers_of(reg):
        if not offline:
            raise HcopsError("--summary needs --offline for OpenStack sites",
                             f"hcops infra preview --region {reg.name} --offline --summary")
        _summary(ctx, reg, strict)
    _run(ctx, region, "preview", InfraOptions(offline=offline, strict=strict, backend_url=backend_url), reg)


@app.command(epilog=examples("hcops infra up --region lab", "hcops infra up --region example-city --yes"))
def up(
    ctx: typer.Context,
    region: str | None = REGION_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    strict: bool = typer.Option(False, "--strict", help="Policy findings stop the command."),
    backend_url: str | None = BACKEND_OPTION,
) -> None:
    """Create or repair the region's infrastructure; a second run changes nothing."""
    _run(ctx, region, "up", InfraOptions(yes=yes, strict=strict, backend_url=backend_url))


def _remove(ctx: typer.Context, region: str | None, yes: bool, backend_url: str | None = None) -> None:
    reg = region_from(ctx, region)
    providers = ", ".join(providers_of(reg))
    decided = confirm(f"remove every host, network and process of region {reg.name} ({providers})?", yes,
                      f"destroying region {reg.name}")
    if not decided:
        stderr.print("nothing removed")
        raise typer.Exit(Exit.ERROR)
    _run(ctx, region, "destroy", InfraOptions(yes=True, backend_url=backend_url), reg)


@app.command(name="destroy", epilog=examples("hcops infra destroy --region lab --yes"))
def destroy(
    ctx: typer.Context,
    region: str | None = REGION_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm removal (required when not interactive)."),
    backend_url: str | None = BACKEND_OPTION,
) -> None:
    """Remove everything `up` created (asks first on a terminal; --yes otherwise)."""
    _remove(ctx, region, yes, backend_url)


@app.command(name="down", epilog=examples("hcops infra down --region lab --yes"))
def down(
    ctx: typer.Context,
    region: str | None = REGION_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm removal (required when not interactive)."),
) -> None:
    """Same as destroy (the lab's word for it)."""
    _remove(ctx, region, yes)


@app.command(epilog=examples("hcops infra status --region lab", "hcops infra status --region lab -o json"))
def status(ctx: typer.Context, region: str | None = REGION_OPTION) -> None:
    """Hosts with address, state and uptime."""
    _run(ctx, region, "status", InfraOptions())


@app.command(epilog=examples("hcops infra refresh --region lab"))
def refresh(ctx: typer.Context, region: str | None = REGION_OPTION,
            backend_url: str | None = BACKEND_OPTION) -> None:
    """Reconcile recorded state with what really exists."""
    _run(ctx, region, "refresh", InfraOptions(backend_url=backend_url))


@app.command(epilog=examples("hcops infra outputs --region lab -o json"))
def outputs(ctx: typer.Context, region: str | None = REGION_OPTION) -> None:
    """Print the region's outputs (addresses, VIPs, S3 endpoint) as the later steps read them."""
    _run(ctx, region, "outputs", InfraOptions())
