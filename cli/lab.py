"""`hcops lab`: operate a running lab region (ssh, cut and restore links, power hosts off and on).

Drills and tests call the same functions from `infra.lab.control`; these commands are the
on-call engineer's way to the same levers. This module also renders what the lab engine
(`infra.lab.ops`) returns to `hcops infra ...` (`RENDERERS`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import typer

from cli.common import REGION_OPTION, emit_json, examples, is_json, plural, region_from, stderr, stdout, table
from infra.lab import control
from infra.lab.layout import Layout
from infra.lab.ops import LabDestroyResult, LabOutputsResult, LabPlanResult, LabStatusResult, LabUpResult, Plan

app = typer.Typer(help="Operate the lab region: ssh into hosts, cut links, power hosts off and on.",
                  no_args_is_help=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
             epilog=examples("hcops lab ssh db1 --region lab", "hcops lab ssh db1 --region lab -- systemctl status"))
def ssh(ctx: typer.Context, host: str = typer.Argument(..., metavar="HOST", help="Lab host name, e.g. db1."),
        region: str | None = REGION_OPTION) -> None:
    """Open a shell on HOST, or run `-- CMD ...` there and exit with its status."""
    reg = region_from(ctx, region)
    layout = Layout(reg)
    spec = layout.host(host)
    command = list(ctx.args)
    if not command:
        control.ssh(reg, host, "true", timeout=15, check=True)  # fail clearly before exec
        args = ["ssh", "-F", str(layout.ssh_config), "-t", spec.name]
        sys.stdout.flush()
        os.execvp("ssh", args)  # noqa: S606 (interactive shell: hand the terminal to ssh)
    proc = control.ssh(reg, host, command)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    raise typer.Exit(proc.returncode)


@app.command("cut-link", epilog=examples("hcops lab cut-link dedicated-line --region lab"))
def cut_link(ctx: typer.Context,
             link: str = typer.Argument(..., metavar="LINK", help="Link name from the model, e.g. dedicated-line."),
             region: str | None = REGION_OPTION) -> None:
    """Cut a dedicated line: the two sites can no longer reach each other."""
    reg = region_from(ctx, region)
    control.cut_link(reg, link)
    _done(ctx, {"link": link, "state": "cut"}, f"link {link} cut")


@app.command("restore-link", epilog=examples("hcops lab restore-link dedicated-line --region lab"))
def restore_link(ctx: typer.Context,
                 link: str = typer.Argument(..., metavar="LINK", help="Link name from the model."),
                 region: str | None = REGION_OPTION) -> None:
    """Bring a cut line back."""
    reg = region_from(ctx, region)
    control.restore_link(reg, link)
    _done(ctx, {"link": link, "state": "up"}, f"link {link} restored")


@app.command("stop-host", epilog=examples("hcops lab stop-host db1 --region lab"))
def stop_host(ctx: typer.Context, host: str = typer.Argument(..., metavar="HOST", help="Lab host name."),
              region: str | None = REGION_OPTION,
              timeout: float = typer.Option(60, "--timeout", min=1, metavar="SECONDS",
                                            help="Seconds to wait for a clean poweroff before killing.")) -> None:
    """Power a host off cleanly (its disk is kept)."""
    reg = region_from(ctx, region)
    control.stop_host(reg, host, timeout)
    _done(ctx, {"host": host, "state": "stopped"}, f"host {host} stopped")


@app.command("start-host", epilog=examples("hcops lab start-host db1 --region lab"))
def start_host(ctx: typer.Context, host: str = typer.Argument(..., metavar="HOST", help="Lab host name."),
               region: str | None = REGION_OPTION,
               timeout: float = typer.Option(90, "--timeout", min=1, metavar="SECONDS",
                                             help="Seconds to wait for the host to answer ssh.")) -> None:
    """Boot a stopped host and wait until it answers ssh."""
    reg = region_from(ctx, region)
    stderr.print(f"starting {host} ...")
    state = control.start_host(reg, host, timeout)
    _done(ctx, {"host": host, "state": state}, f"host {host} started: {state}")


def _done(ctx: typer.Context, data: dict[str, str], text: str) -> None:
    if is_json(ctx):
        emit_json(data)
    else:
        stdout.print(text)


# ---------------------------------------------------------------- rendering `hcops infra` for lab regions

def progress(line: str) -> None:
    """Where the lab engine's progress goes: stderr, as written."""
    stderr.print(line, markup=False, highlight=False, soft_wrap=True)


def _plan_table(plan: Plan, title: str) -> Any:
    out = table("resource", "name", "action", "detail", title=title, title_justify="left")
    style = {"ok": "green", "create": "yellow", "repair": "red", "start": "yellow"}
    for s in plan.steps:
        out.add_row(s.kind, s.name, f"[{style.get(s.action, '')}]{s.action}[/]", s.detail)
    return out


def show_plan(result: LabPlanResult, as_json: bool = False) -> None:
    """The plan `up` is about to carry out, on stderr (progress, not data)."""
    if as_json:
        return
    stderr.print(_plan_table(result.plan, f"lab {result.region}: plan"))
    for note in result.notes:
        stderr.print(f"note: {note}", soft_wrap=True)


def _preview(result: LabPlanResult, as_json: bool) -> None:
    if as_json:
        emit_json(result.as_dict())
        return
    show_plan(result)
    changes = result.plan.changes
    stdout.print(f"{plural(len(changes), 'change')} planned" if changes else "nothing to do")


def _up(result: LabUpResult, as_json: bool) -> None:
    if as_json:
        emit_json(result.as_dict())
    elif not result.plan.changes:
        stdout.print("nothing to do: the lab matches the model")
    else:
        stdout.print(f"lab {result.region} is up ({plural(len(result.done), 'change')} in {result.seconds:.1f} s); "
                     f"outputs: {result.outputs}", soft_wrap=True)


def _destroy(result: LabDestroyResult, as_json: bool) -> None:
    if as_json:
        emit_json(result.as_dict())
    elif result.removed:
        stdout.print(f"lab {result.region} removed ({plural(len(result.removed), 'object')})")
    else:
        stdout.print(f"lab {result.region}: nothing to remove")


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _status(result: LabStatusResult, as_json: bool) -> None:
    data = result.data
    if as_json:
        emit_json(data)
        return
    out = table("host", "site", "address", "state", "uptime", "failed units", title=f"lab {data['region']}",
                title_justify="left")
    for r in data["hosts"]:
        colour = "green" if r["state"] == "running" else "yellow" if r["state"] in ("degraded", "starting") else "red"
        out.add_row(r["host"], r["site"], r["address"], f"[{colour}]{r['state']}[/]", _uptime(r["uptime_s"]),
                    ", ".join(r["failed_units"]))
    stdout.print(out)
    for ln in data["links"]:
        stdout.print(f"link {ln['link']}: {ln['state']} ({ln['bandwidth_mbit']} Mbit/s each way)")
    if data["s3"]:
        stdout.print(f"s3 {data['s3']['endpoint']}: {data['s3']['state']}")


def _outputs(result: LabOutputsResult, as_json: bool) -> None:
    if as_json:
        emit_json(result.as_dict())
    else:
        stdout.print_json(result.outputs.model_dump_json())


RENDERERS: dict[type, Callable[[Any, bool], None]] = {
    LabPlanResult: _preview,
    LabUpResult: _up,
    LabDestroyResult: _destroy,
    LabStatusResult: _status,
    LabOutputsResult: _outputs,
}
