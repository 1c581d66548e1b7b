"""`hcops audit level3`: the GB/T 22239-2019 level-3 clause table, checked on every host now.

Exit 0: every row passes or is marked not applicable with its reason; 1: a row fails (or the
region cannot be reached). `--html FILE` writes the same evidence as one offline page.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cli.common import REGION_OPTION, emit_json, is_json, region_from, stderr, stdout
from infra.level3.audit import AuditResult, run_audit
from infra.level3.report import render_html

app = typer.Typer(help="Evidence an assessor can read: level-3 (GB/T 22239-2019) clauses checked on every host.",
                  no_args_is_help=True)

STYLE = {"PASS": "green", "FAIL": "bold red", "NA": "dim"}


def _table(result: AuditResult) -> Table:
    table = Table(title=f"level 3, region {result.region}: {result.seconds:.1f} s")
    table.add_column("clause")
    table.add_column("control")
    table.add_column("row")
    table.add_column("hosts (PASS/FAIL/NA) and what failed or does not apply")
    for row in result.rows:
        states = [r.status for r in row.hosts.values()]
        notes = [f"{h}: {r.evidence}" for h, r in row.hosts.items() if r.status == "FAIL"]
        if not notes:
            notes = sorted({f"NA: {r.evidence}" for r in row.hosts.values() if r.status == "NA"})[:1]
        summary = f"{states.count('PASS')}/{states.count('FAIL')}/{states.count('NA')}"
        table.add_row(row.clause, row.title, f"[{STYLE[row.status]}]{row.status}[/]",
                      summary + ("  " + "; ".join(notes)[:300] if notes else ""))
    return table


@app.command("level3")
def level3(ctx: typer.Context, region: str | None = REGION_OPTION,
           html: Path | None = typer.Option(None, "--html", help="Also write the evidence as an HTML page."),
           hosts: str | None = typer.Option(None, "--hosts", help="Comma-separated hosts (default: all).")) -> None:
    """Check every applicable level-3 clause on every host (testinfra over the automation account)."""
    reg = region_from(ctx, region)
    result = run_audit(reg, hosts=[h.strip() for h in hosts.split(",") if h.strip()] if hosts else None,
                       progress=stderr.print)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_html(result))
        stderr.print(f"wrote {html}")
    if is_json(ctx):
        emit_json(result.as_dict())
    else:
        stdout.print(_table(result))
    if result.failed:
        stderr.print(f"error: {len(result.failed)} clause(s) fail: {', '.join(r.clause for r in result.failed)}",
                     style="bold red")
        stderr.print("fix: see each failing host's evidence above (or in --html); deploy the region again with "
                     "`hcops deploy` once the cause is fixed")
    raise typer.Exit(result.exit_code())
