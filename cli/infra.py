"""`hcops infra`: provision, inspect and remove a region's hosts with its sites' providers."""

from __future__ import annotations

import typer

from cli.common import REGION_OPTION, Exit, is_json, region_from
from infra.providers import InfraOptions, load_ops, providers_of

app = typer.Typer(help="Provision regions: Pulumi on OpenStack, or real systemd hosts for the lab.",
                  no_args_is_help=True)


def _run(ctx: typer.Context, region: str | None, op: str, opts: InfraOptions) -> None:
    reg = region_from(ctx, region)
    opts.json = is_json(ctx)
    worst = Exit.OK
    for provider in providers_of(reg):
        code = getattr(load_ops(provider), op)(reg, opts)
        if code == Exit.ERROR:
            raise typer.Exit(Exit.ERROR)
        worst = max(worst, code)
    raise typer.Exit(worst)


@app.command()
def preview(
    ctx: typer.Context,
    region: str | None = REGION_OPTION,
    offline: bool = typer.Option(False, "--offline", help="OpenStack: run the program under Pulumi's mock runtime; "
                                 "no cloud is contacted."),
    strict: bool = typer.Option(False, "--strict", help="Policy findings fail the command."),
    backend_url: str | None = typer.Option(None, "--backend-url", help="Pulumi state backend (default: local file)."),
) -> None:
    """Show what `up` would create or change. Exit 0 no changes, 2 changes, 1 error."""
    _run(ctx, region, "preview", InfraOptions(offline=offline, strict=strict, backend_url=backend_url))


@app.command()
def up(
    ctx: typer.Context,
    region: str | None = REGION_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    strict: bool = typer.Option(False, "--strict", help="Policy findings stop the command."),
    backend_url: str | None = typer.Option(None, "--backend-url", help="Pulumi state backend (default: local file)."),
) -> None:
    """Create or repair the region's infrastructure; a second run changes nothing."""
    _run(ctx, region, "up", InfraOptions(yes=yes, strict=strict, backend_url=backend_url))


@app.command(name="destroy")
def destroy(
    ctx: typer.Context,
    region: str | None = REGION_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm removal (required when not interactive)."),
    backend_url: str | None = typer.Option(None, "--backend-url", help="Pulumi state backend (default: local file)."),
) -> None:
    """Remove everything `up` created."""
    _run(ctx, region, "destroy", InfraOptions(yes=yes, backend_url=backend_url))


@app.command(name="down", hidden=False)
def down(
    ctx: typer.Context,
    region: str | None = REGION_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm removal (required when not interactive)."),
) -> None:
    """Same as destroy (the lab's word for it)."""
    _run(ctx, region, "destroy", InfraOptions(yes=yes))


@app.command()
def status(ctx: typer.Context, region: str | None = REGION_OPTION) -> None:
    """Hosts with address, state and uptime."""
    _run(ctx, region, "status", InfraOptions())


@app.command()
def refresh(ctx: typer.Context, region: str | None = REGION_OPTION,
            backend_url: str | None = typer.Option(None, "--backend-url")) -> None:
    """Reconcile recorded state with what really exists."""
    _run(ctx, region, "refresh", InfraOptions(backend_url=backend_url))


@app.command()
def outputs(ctx: typer.Context, region: str | None = REGION_OPTION) -> None:
    """Print the region's outputs (addresses, VIPs, S3 endpoint) as the later steps read them."""
    _run(ctx, region, "outputs", InfraOptions())
