"""`hcops lab`: operate a running lab region (ssh, cut and restore links, power hosts off and on).

Drills and tests call the same functions from `infra.lab.control`; these commands are the
on-call engineer's way to the same levers.
"""

from __future__ import annotations

import os
import sys

import typer

from cli.common import REGION_OPTION, emit_json, is_json, options, stderr, stdout
from infra.lab import control
from infra.lab.layout import Layout
from inventories.loader import load_region
from inventories.model import Region

DEFAULT_REGION = "lab"  # the embedded lab; `--region` picks another lab region

app = typer.Typer(help="Operate the lab region: ssh into hosts, cut links, power hosts off and on.",
                  no_args_is_help=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def ssh(ctx: typer.Context, host: str = typer.Argument(..., help="Lab host name, e.g. db1."),
        region: str | None = REGION_OPTION) -> None:
    """Open a shell on HOST, or run `-- CMD ...` there and exit with its status."""
    reg = _region(ctx, region)
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


@app.command("cut-link")
def cut_link(ctx: typer.Context, link: str = typer.Argument(..., help="Link name from the model."),
             region: str | None = REGION_OPTION) -> None:
    """Cut a dedicated line: the two sites can no longer reach each other."""
    reg = _region(ctx, region)
    control.cut_link(reg, link)
    _done(ctx, {"link": link, "state": "cut"}, f"link {link} cut")


@app.command("restore-link")
def restore_link(ctx: typer.Context, link: str = typer.Argument(...), region: str | None = REGION_OPTION) -> None:
    """Bring a cut line back."""
    reg = _region(ctx, region)
    control.restore_link(reg, link)
    _done(ctx, {"link": link, "state": "up"}, f"link {link} restored")


@app.command("stop-host")
def stop_host(ctx: typer.Context, host: str = typer.Argument(...), region: str | None = REGION_OPTION,
              timeout: float = typer.Option(60, help="Seconds to wait for a clean poweroff before killing.")) -> None:
    """Power a host off cleanly (its disk is kept)."""
    reg = _region(ctx, region)
    control.stop_host(reg, host, timeout)
    _done(ctx, {"host": host, "state": "stopped"}, f"host {host} stopped")


@app.command("start-host")
def start_host(ctx: typer.Context, host: str = typer.Argument(...), region: str | None = REGION_OPTION,
               timeout: float = typer.Option(90, help="Seconds to wait for the host to answer ssh.")) -> None:
    """Boot a stopped host and wait until it answers ssh."""
    reg = _region(ctx, region)
    stderr.print(f"starting {host} ...")
    state = control.start_host(reg, host, timeout)
    _done(ctx, {"host": host, "state": state}, f"host {host} started: {state}")


def _region(ctx: typer.Context, region: str | None) -> Region:
    return load_region(region or options(ctx).region or DEFAULT_REGION)


def _done(ctx: typer.Context, data: dict[str, str], text: str) -> None:
    if is_json(ctx):
        emit_json(data)
    else:
        stdout.print(text)
