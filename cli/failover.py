"""`hcops failover`: promote the best replica (planned switchover or unplanned failover), rejoin, status."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from cli.common import REGION_OPTION, Exit, emit_json, is_json, region_from, stderr, stdout
from dr.failover.manager import Decision, Manager
from dr.failover.plan import FailoverPlan, build_plan
from dr.failover.rejoin import rejoin as do_rejoin
from dr.failover.runbook import execute
from dr.failover.topology import DbState, observe

app = typer.Typer(help="Database failover: switch the primary, rejoin the old one, show the topology.",
                  no_args_is_help=True)

SERVICE_OPTION = typer.Option(None, "--service", "-s", help="mysql service name (default: the region's only one).")


def _servers(states: dict[str, DbState]) -> Table:
    t = Table(title="servers")
    for col in ("host", "answers", "writable", "replicates from", "lag s", "GTID (received)", "semi-sync"):
        t.add_column(col)
    for h, s in states.items():
        t.add_row(h, "yes" if s.reachable else f"no ({s.error})", "yes" if s.writable else "no",
                  s.replica.get("Master_Host", "") or "-", "" if s.lag_s is None else f"{s.lag_s:g}",
                  s.received_pos or "-",
                  "primary on" if s.semi_sync_primary else ("off" if s.reachable else "-"),
                  style="bold" if s.writable else "")
    return t


def _plan_table(plan: FailoverPlan) -> Table:
    t = Table(title=f"{plan.kind}: {plan.old_primary} -> {plan.candidate}")
    for col in ("#", "action", "host", "what"):
        t.add_column(col)
    for i, s in enumerate(plan.steps, 1):
        t.add_row(str(i), s.action, s.host, s.detail)
    return t


@app.command()
def status(ctx: typer.Context, region: str | None = REGION_OPTION, service: str | None = SERVICE_OPTION) -> None:
    """Each server of the service: does it answer, is it writable, whom it follows, how far behind."""
    reg = region_from(ctx, region)
    name, _svc, states = observe(reg, service)
    if is_json(ctx):
        emit_json({"region": reg.name, "service": name, "servers": {h: s.as_dict() for h, s in states.items()}})
    else:
        stdout.print(_servers(states))


@app.command()
def db(ctx: typer.Context, *, region: str | None = REGION_OPTION, service: str | None = SERVICE_OPTION,
       to: str | None = typer.Option(None, "--to", help="Promote this replica (default: the most advanced by GTID)."),
       yes: bool = typer.Option(False, "--yes", help="Carry the plan out (without it: show the plan, exit 2)."),
       force: bool = typer.Option(False, "--force", help="Promote despite lag beyond max_lag_s or inside the "
                                  "anti-flap window (never despite split brain or an unreachable candidate).")) -> None:
    """Promote a replica: a switchover when the primary answers, a failover when it does not.

    Exit 0: done; 2: plan shown (no --yes); 1: refused or failed (reason and fix on stderr).
    """
    reg = region_from(ctx, region)
    name, svc, states = observe(reg, service)
    plan = build_plan(reg, name, svc, states, to=to, force=force)
    if not yes or not plan.runnable:
        if is_json(ctx):
            emit_json(plan.as_dict())
        else:
            stdout.print(_servers(states))
            if plan.steps:
                stdout.print(_plan_table(plan))
            for w in plan.warnings:
                stderr.print(f"warning: {w}", style="yellow")
        if plan.refusals:
            for r in plan.refusals:
                stderr.print(f"error: refused: {r}", style="bold red")
            stderr.print("  fix: see the reason; --force overrides lag and anti-flap refusals only")
            raise typer.Exit(Exit.ERROR)
        stderr.print("plan only: rerun with --yes to carry it out")
        raise typer.Exit(Exit.CHANGES)
    result = execute(reg, plan, svc)
    if is_json(ctx):
        emit_json(result.as_dict())
    else:
        t = Table(title=f"{plan.kind} {plan.old_primary} -> {plan.candidate}: {'done' if result.ok else 'FAILED'}")
        for col in ("action", "host", "started", "ended", "result"):
            t.add_column(col)
        for s in result.steps:
            t.add_row(s.action, s.host, s.started[11:23], s.ended[11:23], s.note, style="" if s.ok else "red")
        stdout.print(t)
    if not result.ok:
        stderr.print(f"error: {result.error}", style="bold red")
        stderr.print("  fix: inspect `hcops failover status`; the journal has every step")
        raise typer.Exit(Exit.ERROR)
    if result.new_primary != svc.primary:
        stderr.print(f"note: {result.new_primary} is primary now; the model still names {svc.primary}: "
                     f"`hcops failover rejoin {plan.old_primary}` and switch back, or set primary: "
                     f"{result.new_primary} in the model before the next deploy")


@app.command()
def rejoin(ctx: typer.Context, host: str = typer.Argument(..., help="The former primary (or any stray server)."),
           region: str | None = REGION_OPTION, service: str | None = SERVICE_OPTION) -> None:
    """Make HOST a replica of the current primary, re-seeding it when its binlogs diverged."""
    reg = region_from(ctx, region)
    res = do_rejoin(reg, host, service)
    if is_json(ctx):
        emit_json(res.as_dict())
    else:
        t = Table(title=f"rejoin {host} under {res.primary}" + (" (re-seeded)" if res.reseeded else ""))
        for col in ("at", "step", "result"):
            t.add_column(col)
        for s in res.steps:
            t.add_row(s["at"][11:23], s["step"], s["note"])
        stdout.print(t)
        if res.reason:
            stderr.print(f"re-seeded because {res.reason}")


@app.command()
def watch(ctx: typer.Context, region: str | None = REGION_OPTION, service: str | None = SERVICE_OPTION,
          seconds: float = typer.Option(0, "--seconds", help="Stop after this long (0: until interrupted).")) -> None:
    """The automatic failover manager: watch the primary, promote on confirmed loss (see the README).

    Prints each decision as it is taken (one JSON object a line with -o json). Runs as the
    `hcops-failover-manager-<region>` systemd service on the operations host (playbooks role failover_manager,
    where the model says failover.watch_service); only one manager per region runs at a time (a lock).
    """
    reg = region_from(ctx, region)
    as_json = is_json(ctx)

    def show(d: Decision) -> None:
        if as_json:
            print(json.dumps(d.as_dict(), default=str), flush=True)
        else:
            stdout.print(f"{d.at[11:23]} {d.action:8} {d.reason}")

    mgr = Manager(reg, service, on_decision=show)
    decisions = mgr.run(seconds or None)
    if any(d.action == "failed" for d in decisions):
        raise typer.Exit(Exit.ERROR)
