"""`hcops drill list|plan|run`: failover drills as Chaos Toolkit experiments, with measured RTO/RPO."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.common import REGION_OPTION, Exit, emit_json, is_json, region_from, resolve_region_name, stderr, stdout
from dr.drills import catalog
from dr.drills.runner import plan_drill, run_drill
from dr.drills.store import list_runs

app = typer.Typer(help="Failover drills (Chaos Toolkit experiments): list, plan, run, history.",
                  no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """The drill catalog, and which drills can run here."""
    found = catalog.drills()
    if is_json(ctx):
        emit_json([{"name": d.name, "title": d.title, "ready": d.ready, "missing": d.missing,
                    "experiment": str(d.path)} for d in found.values()])
        return
    t = Table(title="drills")
    for col in ("drill", "what", "ready"):
        t.add_column(col)
    for d in found.values():
        t.add_row(d.name, d.title.split(": ", 1)[-1], "yes" if d.ready else f"no: {d.missing}")
    stdout.print(t)


@app.command()
def plan(ctx: typer.Context, name: str = typer.Argument(..., help="Drill name (`hcops drill list`)."),
         region: str | None = REGION_OPTION) -> None:
    """The drill's steps and targets; nothing is run (exit 2: the drill would change things)."""
    reg = region_from(ctx, region)
    p = plan_drill(reg, name)
    if is_json(ctx):
        emit_json(p.as_dict())
    else:
        t = Table(title=f"{p.title} (region {p.region}{', PRODUCTION' if p.production else ''})")
        for col in ("#", "phase", "step", "calls", "arguments"):
            t.add_column(col)
        for i, s in enumerate(p.steps, 1):
            args = ", ".join(f"{k}={v}" for k, v in s["arguments"].items())
            t.add_row(str(i), s["phase"] + (" (background)" if s["background"] else ""), s["name"], s["call"], args)
        stdout.print(t)
        stdout.print("targets: " + ", ".join(f"{k}={v}" for k, v in p.targets.items()))
    if not p.ready:
        stderr.print(f"note: this drill cannot run yet: {p.missing}", style="yellow")
    raise typer.Exit(Exit.CHANGES)


@app.command()
def run(ctx: typer.Context, name: str = typer.Argument(..., help="Drill name (`hcops drill list`)."),
        region: str | None = REGION_OPTION,
        yes: bool = typer.Option(False, "--yes", help="Really run it (it breaks things on purpose)."),
        production: bool = typer.Option(False, "--production",
                                        help="Also required in a region marked production.")) -> None:
    """Run a drill end to end: steady state, fault, rollback, measurements, journal and reports.

    Exit 0: the drill passed its checks; 1: it failed (or was refused); 64: --yes missing.
    """
    reg = region_from(ctx, region)
    if not yes:
        stderr.print(f"error: `drill run {name}` breaks things on purpose; see `hcops drill plan {name}` and "
                     "pass --yes", style="bold red")
        raise typer.Exit(Exit.USAGE)
    result = run_drill(reg, resolve_region_name(ctx, region), name, production_ok=production)
    h = result.hcops
    if is_json(ctx):
        emit_json(h | {"journal": str(result.journal), "report_html": str(result.report_html),
                       "report_md": str(result.report_md)})
    else:
        t = Table(title=f"drill {name}: {'PASSED' if result.passed else 'FAILED'} ({result.run_id})")
        for col in ("measure", "value", "target"):
            t.add_column(col)
        tg = h["targets"]
        t.add_row("RTO", "n/a" if h.get("rto_s") is None else f"{h['rto_s']} s", f"{tg['rto_target_s']} s")
        t.add_row("RPO (lost acknowledged writes)", str(h.get("rpo_lost_writes")), str(tg["rpo_target_writes"]))
        t.add_row("failed requests via the VIP", f"{h.get('failed_requests')} of {h.get('requests', 0)}",
                  str(tg["max_failed_requests"]))
        t.add_row("max writable databases", str(h.get("max_writable")), "1")
        if h.get("local_writer"):
            t.add_row("write stall (longest commit)", f"{h['local_writer']['max_commit_s']} s",
                      f"{tg['max_write_stall_s']} s")
        stdout.print(t)
        for c in h.get("verdict", {}).get("checks", []):
            stdout.print(f"  {'ok' if c['ok'] else 'FAILED'}: {c['check']}")
        stdout.print(f"report: {result.report_html}")
    if not result.passed:
        stderr.print(f"error: drill {name} failed its checks; the report says which", style="bold red")
        raise typer.Exit(Exit.ERROR)


@app.command()
def history(ctx: typer.Context, region: str | None = REGION_OPTION) -> None:
    """Past drill runs of the region, oldest first."""
    name = resolve_region_name(ctx, region)
    reg = region_from(ctx, region)
    runs = list_runs(reg)
    if is_json(ctx):
        emit_json([r.hcops | {"report_html": str(r.report_html)} for r in runs])
        return
    t = Table(title=f"drill runs of {name}")
    for col in ("run", "drill", "passed", "RTO s", "RPO", "failed requests"):
        t.add_column(col)
    for r in runs:
        t.add_row(r.run_id, r.drill, "yes" if r.passed else "no", str(r.hcops.get("rto_s")),
                  str(r.hcops.get("rpo_lost_writes")), str(r.hcops.get("failed_requests")))
    stdout.print(t)
