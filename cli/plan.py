"""`hcops plan`: county hand-over documents, their acceptance checks, and the city's board."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cli.common import REGION_OPTION, Exit, emit_json, is_json, region_from, stderr, stdout
from infra.plans.board import Board, build_board, write_board_html
from infra.plans.checklist import require_county
from infra.plans.render import FORMATS, run_render
from infra.plans.revision import parse_date
from infra.plans.store import save_latest
from infra.plans.verify import AcceptanceReport, ItemResult, run_verify, write_report
from inventories.errors import HcopsError

app = typer.Typer(help="County hardware and network plans, acceptance checks, and the city's board.",
                  no_args_is_help=True)

OUT_OPTION = typer.Option(Path("out/plans"), "--out", help="Directory the documents are written to.")


@app.command()
def render(
    ctx: typer.Context,
    *,
    region: str | None = REGION_OPTION,
    county: str | None = typer.Option(None, "--county", "-c", help="The county to write the plan for."),
    all_counties: bool = typer.Option(False, "--all", help="Every county of the region, plus index.html."),
    fmt: list[str] = typer.Option(["html"], "--format", "-f",
                                  help=f"{', '.join(FORMATS)} (repeatable or comma-separated; pdf needs "
                                  "Debian's chromium)."),
    out: Path = OUT_OPTION,
    date: str | None = typer.Option(None, "--date", help="Cover date YYYY-MM-DD (default: the date of the "
                                    "region's last commit, or its newest file when uncommitted), so the same "
                                    "model gives the same bytes."),
) -> None:
    """Write a county's plan: bill of materials, IP plan, line, flows, steps, checklist, topology.

    Exit 0: written; 1: unknown county or format, or the PDF printer failed; 64: usage.
    """
    reg = region_from(ctx, region)
    if all_counties == (county is not None):
        raise HcopsError("give either --county NAME or --all",
                         f"counties of {reg.name}: {', '.join(reg.counties) or '(none)'}")
    counties = reg.counties if all_counties else [county or ""]
    if county is not None:
        require_county(reg, county)
    formats = tuple(dict.fromkeys(f for part in fmt for f in part.split(",") if f))
    result = run_render(reg, counties, formats, out, explicit_date=parse_date(date) if date else None,
                        with_index=all_counties)
    if is_json(ctx):
        emit_json({"region": reg.name, "model_revision": result.revision.label, "digest": result.revision.digest,
                   "date": result.revision.date.isoformat(), "date_source": result.revision.date_source,
                   "counties": {w.county: [str(f) for f in w.files] for w in result.written},
                   "index": str(result.index) if result.index else None})
        return
    table = Table(title=f"plans for {reg.name} (model {result.revision.label}, {result.revision.date})")
    table.add_column("county")
    table.add_column("files")
    for w in result.written:
        table.add_row(w.county, "\n".join(str(f) for f in w.files))
    if result.index:
        table.add_row("(index)", str(result.index))
    stdout.print(table)


def _progress(item: ItemResult) -> None:
    mark = "[green]pass[/]" if item.passed else "[bold red]FAIL[/]"
    stderr.print(f"  {mark} {item.id:<20} {item.reason}", highlight=False, soft_wrap=True)


def _report_table(report: AcceptanceReport) -> Table:
    table = Table(title=f"acceptance of county {report.county} ({report.region}): "
                  f"{'PASSED' if report.passed else 'FAILED'}")
    for col in ("ID", "result", "host", "reason"):
        table.add_column(col)
    for i in report.items:
        table.add_row(i.id, "pass" if i.passed else "FAIL", i.host, i.reason, style="" if i.passed else "red")
    return table


@app.command()
def verify(
    ctx: typer.Context,
    *,
    region: str | None = REGION_OPTION,
    county: str = typer.Option(..., "--county", "-c", help="The county whose checklist to run."),
    only: list[str] = typer.Option([], "--only", help="Run just these item IDs (repeatable)."),
    out: Path = OUT_OPTION,
) -> None:
    """Run the county's acceptance checklist on its hosts (testinfra over ssh); write the report.

    Writes <region>-<county>-acceptance.html and .json under --out and keeps the result for the
    board. Exit 0: every item passed; 1: an item failed (its reason on stderr) or bad input.
    """
    reg = region_from(ctx, region)
    require_county(reg, county)
    report = run_verify(reg, county, only=[i for part in only for i in part.split(",") if i] or None,
                        progress=None if is_json(ctx) else _progress)
    html, js = write_report(report, out)
    save_latest(report)
    if is_json(ctx):
        emit_json({**report.as_dict(), "report_html": str(html), "report_json": str(js)})
    else:
        stdout.print(_report_table(report))
        stderr.print(f"wrote {html} and {js}")
    if not report.passed:
        for i in report.failed:
            stderr.print(f"error: {i.id} failed: {i.reason}", style="bold red", markup=False, highlight=False,
                         soft_wrap=True)
        stderr.print("  fix: correct what each failed item names, then run plan verify again", markup=False)
        raise typer.Exit(Exit.ERROR)


def _board_table(board: Board) -> Table:
    table = Table(title=f"acceptance board of {board.region}: {len(board.ready)} of {len(board.rows)} "
                  "counties ready")
    for col in ("county", "status", "passed", "failed", "missing", "verified at"):
        table.add_column(col, justify="right" if col == "passed" else "left")
    for r in board.rows:
        style = {"ready": "green", "failing": "red"}.get(r.status, "yellow")
        missing = f"{len(r.missing)} item(s)" if r.missing else ""
        table.add_row(r.county, r.status, f"{r.passed}/{len(r.cells)}", ", ".join(r.failed), missing,
                      r.verified_at or "—", style=style)
    return table


@app.command()
def board(
    ctx: typer.Context,
    *,
    region: str | None = REGION_OPTION,
    html: Path | None = typer.Option(None, "--html", help="Also write the board as one HTML page here."),
) -> None:
    """The city's view: every county, each item's latest result and date, what is missing, who is ready.

    Exit 0 always when the board could be read (readiness is data, not an error); 1 on bad input.
    """
    reg = region_from(ctx, region)
    the_board = build_board(reg)
    if html is not None:
        write_board_html(the_board, html)
    if is_json(ctx):
        emit_json(the_board.as_dict())
    else:
        stdout.print(_board_table(the_board))
        if html is not None:
            stderr.print(f"wrote {html}")
