"""`hcops deploy`: converge a region's hosts with the Ansible playbooks, from its model."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.common import REGION_OPTION, Exit, emit_json, examples, is_json, region_from, stderr, stdout, table
from infra.deploy import DeployResult, run_deploy

EPILOG = examples("hcops deploy --region lab --check", "hcops deploy --region lab --limit db1,db2 --tags mysql")


def _table(result: DeployResult) -> Table:
    title = "deploy --check" if result.check else "deploy"
    out = table("host", "ok", "changed", "failed", "unreachable", "skipped", title=f"{title}: {result.seconds:.1f} s")
    for col in out.columns[1:]:
        col.justify = "right"
    for host, r in sorted(result.recap.items()):
        style = "red" if not r.healthy else ("yellow" if r.changed else "")
        out.add_row(host, str(r.ok), str(r.changed), str(r.failed), str(r.unreachable), str(r.skipped),
                    style=style)
    return out


def deploy(
    ctx: typer.Context,
    *,
    region: str | None = REGION_OPTION,
    check: bool = typer.Option(False, "--check", help="Show what would change; change nothing (exit 2 if "
                               "something would change)."),
    diff: bool = typer.Option(False, "--diff", help="Show file differences."),
    limit: str | None = typer.Option(None, "--limit", "-l", help="Hosts or groups (Ansible pattern), "
                                     "e.g. db1,role_nginx."),
    tags: str | None = typer.Option(None, "--tags", "-t", help="Only these roles/tags, e.g. mysql,nginx."),
    extra_vars: list[str] = typer.Option([], "--extra-vars", "-e", help="Extra Ansible variables (repeatable)."),
) -> None:
    """Run playbooks/site.yml on the region's provisioned hosts; end with ok/changed/failed per host.

    Exit codes: 0 converged (with --check: nothing to change); 2 --check found changes; 1 a host
    failed or was unreachable, or the input was wrong; 64 usage error.
    """
    reg = region_from(ctx, region)
    result = run_deploy(reg, check=check, diff=diff, limit=limit, tags=tags, extra_vars=extra_vars)
    if is_json(ctx):
        emit_json({"region": reg.name, "check": check, "seconds": result.seconds,
                   "returncode": result.returncode, "changed": result.changed,
                   "failed_hosts": result.failed_hosts,
                   "hosts": {h: vars(r) for h, r in sorted(result.recap.items())}})
    else:
        stdout.print(_table(result))
    code = result.exit_code()
    if code == Exit.ERROR:
        what = ", ".join(result.failed_hosts) or f"ansible-playbook exited {result.returncode}"
        stderr.print(f"error: deploy failed ({what}); the task output above says why", style="bold red")
    raise typer.Exit(code)
