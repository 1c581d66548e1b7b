"""`hcops availability`: are we inside the SLO, how fast is the budget burning, and can the design
reach its target at all.

Exit codes: `report` 0 within budget, 3 when a budget is exhausted or a page-level burn is on
(`--no-fail` reports only), 1 on an error; `model` 0 when every SLO's design meets its target,
3 when one does not, 1 on an error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from cli.common import REGION_OPTION, Exit, emit_json, is_json, region_from, stderr, stdout
from dr.availability import design as design_engine
from dr.availability import history as hist
from dr.availability import html
from dr.availability.drills import list_runs
from dr.availability.report import AvailabilityReport, build
from inventories.errors import HcopsError
from inventories.model import Region
from inventories.probes import prober
from monitoring.client import ZabbixClient, resolve_connection
from monitoring.sla import SPAN, Period, SliRow, period_start
from monitoring.sla import report as sla_report

SLO_ALERT = 3

app = typer.Typer(help="Availability against the SLOs: measured (probes and Zabbix), burn rates, and by design.",
                  no_args_is_help=True)


@app.command("report")
def report_cmd(  # noqa: PLR0917 (typer options are parameters)
    ctx: typer.Context,
    region: str | None = REGION_OPTION,
    period: str = typer.Option("month", "--period", help="month, quarter or year (a longer SLO window wins)."),
    no_fail: bool = typer.Option(False, "--no-fail", help="Exit 0 even when a budget is exhausted or a page burns."),
    html_out: Path | None = typer.Option(None, "--html", help="Also write an HTML report with charts here."),
    probes: Path | None = typer.Option(None, "--probes", help="Read the probe history from this file (the text "
                                       "the prober host serves) instead of over ssh."),
    no_zabbix: bool = typer.Option(False, "--no-zabbix", help="Leave Zabbix out (probe history only)."),
    url: str | None = typer.Option(None, "--url", help="Zabbix API URL (default as for `hcops monitor`)."),
    token: str | None = typer.Option(None, "--token", help="Zabbix API token (default as for `hcops monitor`)."),
    at: str | None = typer.Option(None, "--at", help="Report as of this ISO time (default now), e.g. for a "
                                  "history file exported earlier."),
) -> None:
    """Per SLO: availability, downtime and budget left from the probes and from Zabbix, burn rates."""
    if period not in ("month", "quarter", "year"):
        raise typer.BadParameter(f"{period!r} is not month, quarter or year", param_hint="--period")
    reg = region_from(ctx, region)
    now = _moment(at)
    found = prober(reg)
    interval = found.interval_s if found else 10.0
    if probes is not None:
        history = hist.read_file(probes, interval)
    else:
        start = min(_period_starts(reg, period, now))  # type: ignore[arg-type]
        history = hist.fetch(reg, start, now)

    def zabbix(per: Period, moment: datetime) -> list[SliRow]:
        client = ZabbixClient.connect(resolve_connection(reg, url, token, None, 1))
        return sla_report(client, reg, per, moment)

    result = build(reg, history, period, now, zabbix=None if no_zabbix else zabbix,  # type: ignore[arg-type]
                   drills=list_runs(reg.name))
    if html_out is not None:
        html_out.parent.mkdir(parents=True, exist_ok=True)
        html_out.write_text(html.render(result))
        stderr.print(f"wrote {html_out}")
    _show_report(ctx, result)
    if result.failing and not no_fail:
        raise typer.Exit(SLO_ALERT)


def _moment(at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise HcopsError(f"--at {at!r} is not an ISO time", "write e.g. 2026-12-01T10:00:00+00:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _period_starts(reg: Region, period: Period, now: datetime) -> list[datetime]:
    starts = []
    for slo in reg.slos.values():
        effective: Period = period if SPAN[slo.window] <= SPAN[period] else slo.window
        starts.append(period_start(effective, now))
    return starts


def _show_report(ctx: typer.Context, result: AvailabilityReport) -> None:
    if is_json(ctx):
        emit_json(result.as_dict())
        return
    table = Table(title=f"Availability of region {result.region} (probes every {result.interval_s:g} s)")
    for col in ("SLO", "source", "availability", "downtime", "budget left", "observed"):
        table.add_column(col)
    for rep in result.slos:
        avail = rep.probes.availability
        table.add_row(f"{rep.slo} ({rep.target}%/{rep.period})", "probes",
                      "no data" if avail is None else f"{avail * 100:.4f}%", f"{rep.probes.down_s / 60:.2f} min",
                      f"{rep.probe_budget_left_min:.2f}/{rep.budget_min:g} min", f"{rep.observed_fraction * 100:.1f}%")
        z = rep.zabbix
        table.add_row("", "zabbix", f"{z.sli:.4f}%" if z and z.sli is not None else (rep.zabbix_error or "no data"),
                      f"{z.downtime_min:.2f} min" if z else "-",
                      f"{z.budget_left_min:.2f}/{z.budget_min:g} min" if z else "-", "")
    stdout.print(table)
    for rep in result.slos:
        stdout.print(f"{rep.slo}: {rep.observed_note()}")
        for alert in rep.alerts:
            def fmt(v: float | None) -> str:
                return "-" if v is None else f"{v:.2f}x"
            state = "FIRING" if alert.firing else "ok"
            stdout.print(f"  {alert.window.severity:6} {alert.window.name:16} long {fmt(alert.long.burn)} "
                         f"({alert.long.observed * 100:.0f}% observed), short {fmt(alert.short.burn)} "
                         f"({alert.short.observed * 100:.0f}% observed): {state}", markup=False)
        for line in rep.explanation:
            stdout.print(f"  difference: {line}", markup=False)
        for run in rep.drills:
            stdout.print(f"  drill {run.drill} ({run.run_id}) at {run.started.isoformat()}", markup=False)
    if result.bad_lines:
        stderr.print(f"warning: {result.bad_lines} line(s) of the probe history did not parse and were skipped")
    verdict = ("FAILING: a budget is exhausted or a page-level burn is on" if result.failing
               else "within budget, no page-level burn")
    stdout.print(verdict, markup=False)


@app.command("model")
def model_cmd(ctx: typer.Context, region: str | None = REGION_OPTION) -> None:
    """Availability by design from the topology: expected availability, yearly downtime, weakest link."""
    reg = region_from(ctx, region)
    result = design_engine.design(reg, list_runs(reg.name))
    if is_json(ctx):
        emit_json(result.as_dict())
    else:
        table = Table(title=f"Availability by design of region {reg.name}")
        for col in ("SLO", "service", "expected", "down/yr", "allowed", "met", "weakest link"):
            table.add_column(col)
        for svc in result.services:
            table.add_row(svc.slo, svc.service, f"{svc.availability * 100:.4f}%", f"{svc.downtime_min_year:.1f} min",
                          f"{svc.allowed_min_year:.1f} min", "yes" if svc.meets else "NO",
                          f"{svc.weakest} ({svc.weakest_saves_min_year:.1f} min)")
        stdout.print(table)
        for svc in result.services:
            lines = [p for p in svc.parts if p.name.startswith("line ")]
            for part in lines:
                stdout.print(f"{svc.slo}: {part.name} {part.availability * 100:.4f}% ({part.note})", markup=False)
            if svc.suggestion:
                stdout.print(f"{svc.slo}: to meet {svc.target}%: {svc.suggestion.what} -> "
                             f"{svc.suggestion.availability * 100:.4f}% ({svc.suggestion.downtime_min_year:.1f} "
                             f"min/yr){'' if svc.suggestion.meets else ' (still short)'}", markup=False)
            elif svc.candidates:
                best = max(svc.candidates, key=lambda c: c.availability)
                stdout.print(f"{svc.slo}: best single change: {best.what} -> {best.availability * 100:.4f}% "
                             f"({best.downtime_min_year:.1f} min/yr)", markup=False)
        for line in result.assumptions:
            stderr.print(f"assumes: {line}", markup=False)
    if not all(s.meets for s in result.services):
        raise typer.Exit(SLO_ALERT)
    raise typer.Exit(Exit.OK)
