"""`hcops monitor`: make Zabbix follow the region model; maintenance windows; SLA read-back.

Exit codes: `plan` 0 no changes, 2 changes pending; `apply` 0 done (or nothing to do);
every command 1 on an error (API unreachable, refused credentials, unsupported version,
unknown host, the first API error during apply).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import typer
from rich import box
from rich.markup import escape

from cli.common import (
    REGION_OPTION,
    Exit,
    check_url,
    emit_json,
    examples,
    is_json,
    plural,
    region_from,
    stderr,
    stdout,
    table,
)
from infra.deploy import run_deploy
from inventories.errors import HcopsError
from inventories.model import Region
from monitoring import maintenance as maint
from monitoring.apiuser import ensure_sync_token
from monitoring.client import ZabbixClient, resolve_connection
from monitoring.diff import Change, Plan
from monitoring.sla import SliRow, report
from monitoring.sync import apply_planned, plan_region

app = typer.Typer(help="Zabbix sync from the region model, maintenance windows, SLAs and error budgets.",
                  no_args_is_help=True)
maintenance_app = typer.Typer(help="Maintenance windows (drills use them).", no_args_is_help=True)
app.add_typer(maintenance_app, name="maintenance")

def _url(value: str | None) -> str | None:
    return check_url(value, "--url")


URL_OPTION = typer.Option(None, "--url", callback=_url, help="Zabbix API URL (default: HCOPS_ZABBIX_URL, "
                          "then the region's zabbix service: its server, frontend port and /api_jsonrpc.php).")
TOKEN_OPTION = typer.Option(None, "--token", help="API token (default: HCOPS_ZABBIX_TOKEN, then the "
                            "sync user's or the role's stored token).")
TIMEOUT_OPTION = typer.Option(None, "--timeout", min=0.1, help="Seconds to wait for each API answer (default 30).")
RETRIES_OPTION = typer.Option(None, "--retries", min=0, help="Retries when the API is unreachable (default 4).")
CA_OPTION = typer.Option(None, "--ca-file", help="CA of an https frontend (default: region CA).")
ADOPT_OPTION = typer.Option(False, "--adopt", help="Take over marked objects the ledger lacks.")
ENABLE_OPTION = typer.Option(False, "--enable-disabled", help="Re-enable hosts an operator disabled.")


def _connect(ctx: typer.Context, reg: Region, url: str | None, token: str | None,  # noqa: PLR0917
             timeout: float | None, retries: int | None, ca_file: str | None = None) -> ZabbixClient:
    client = ZabbixClient.connect(resolve_connection(reg, url, token, timeout, retries, ca_file=ca_file))
    ctx.call_on_close(client.close)  # a password session is logged out, whatever happens next
    return client


def _short(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return "[" + ", ".join(_short(v) if isinstance(v, tuple) else str(v) for v in value) + "]"
    return str(value)


def _describe(change: Change) -> str:
    """One line per changed field; for lists, what is added and removed."""
    if change.action != "update":
        return ""
    lines = []
    for name, (old, new) in change.fields.items():
        if isinstance(old, tuple) and isinstance(new, tuple):
            added = [_short(v) if isinstance(v, tuple) else str(v) for v in new if v not in old]
            removed = [_short(v) if isinstance(v, tuple) else str(v) for v in old if v not in new]
            parts = [f"+{a}" for a in added] + [f"-{r}" for r in removed]
            lines.append(f"{name}: {' '.join(parts)}")
        else:
            lines.append(f"{name}: {_short(old)} → {_short(new)}")
    return "\n".join(lines)


def _show_plan(ctx: typer.Context, plan: Plan) -> None:
    if is_json(ctx):
        emit_json(plan.as_dict())
        return
    counts = plan.counts()
    if plan.empty:
        stdout.print(f"Zabbix matches region {plan.region} ({plan.unchanged} objects): no changes.")
        return
    changes = table("", "kind", "object", "changes", title=f"Zabbix plan for region {plan.region}")
    marks = {"create": "[green]+[/]", "update": "[yellow]~[/]", "delete": "[red]-[/]"}
    for change in plan.changes:
        # keys and values hold Zabbix item keys (`vfs.file.contents[/var/...]`): text, not markup
        changes.add_row(marks[change.action], change.kind, escape(change.key), escape(_describe(change)))
    stdout.print(changes)
    stdout.print(f"Plan: {counts['create']} to create, {counts['update']} to update, "
                 f"{counts['delete']} to delete, {plan.unchanged} unchanged.")
    for note in plan.notes:
        stderr.print(f"note: {note}", markup=False)
    if plan.mass_prune:
        stderr.print(f"[red]warning:[/] this plan deletes {plan.prunes} of the {plan.owned} objects hcops owns; "
                     "apply refuses it without --allow-prune")


@app.command(epilog=examples("hcops monitor plan --region lab", "hcops monitor plan --region lab -o json"))
def plan(
    ctx: typer.Context,
    *,
    region: str | None = REGION_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    timeout: float | None = TIMEOUT_OPTION,
    retries: int | None = RETRIES_OPTION,
    rotate_psk: bool = typer.Option(False, "--rotate-psk", help="Plan new PSKs for every host."),
    ca_file: str | None = CA_OPTION,
    adopt: bool = ADOPT_OPTION,
    enable_disabled: bool = ENABLE_OPTION,
) -> None:
    """Show what apply would change, field by field. Exit 0 no changes, 2 changes, 1 error."""
    reg = region_from(ctx, region)
    client = _connect(ctx, reg, url, token, timeout, retries, ca_file)
    planned = plan_region(client, reg, rotate_psk=rotate_psk, adopt=adopt, enable_disabled=enable_disabled)
    _show_plan(ctx, planned.plan)
    stderr.print(f"{client.total_calls} API calls")
    raise typer.Exit(Exit.OK if planned.plan.empty else Exit.CHANGES)


@app.command(epilog=examples("hcops monitor apply --region lab --yes"))
def apply(
    ctx: typer.Context,
    *,
    region: str | None = REGION_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    timeout: float | None = TIMEOUT_OPTION,
    retries: int | None = RETRIES_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking."),
    rotate_psk: bool = typer.Option(False, "--rotate-psk", help="Generate, send and store a new PSK per host, "
                                    "then give the agents (and the sites' proxies) the new keys in the same run."),
    no_agents: bool = typer.Option(False, "--no-agents", help="With --rotate-psk: change Zabbix's side only; "
                                   "the agents fail until you run hcops deploy --tags zabbix_agent, zabbix_proxy."),
    ca_file: str | None = CA_OPTION,
    adopt: bool = ADOPT_OPTION,
    enable_disabled: bool = ENABLE_OPTION,
    allow_prune: bool = typer.Option(False, "--allow-prune", help="Allow deleting over 25% of what hcops owns."),
) -> None:
    """Bring Zabbix in line with the model: creates, updates, prunes hcops' own objects."""
    reg = region_from(ctx, region)
    client = _connect(ctx, reg, url, token, timeout, retries, ca_file)
    planned = plan_region(client, reg, rotate_psk=rotate_psk, adopt=adopt, enable_disabled=enable_disabled)
    if planned.plan.empty:
        _show_plan(ctx, planned.plan)
        rotated = ensure_sync_token(client, reg.name)  # an unchanged region still rotates the token
        if rotated is not None and rotated.action != "kept":
            stderr.print(f"sync user's API token {rotated.action} (expires {_when(rotated.expires_at)})")
        raise typer.Exit(Exit.OK)
    if not is_json(ctx):
        _show_plan(ctx, planned.plan)
    if not yes:
        if not sys.stdin.isatty():
            raise HcopsError("apply needs confirmation", "review the plan, then rerun with --yes")
        if not typer.confirm("Apply these changes?"):
            stderr.print("nothing applied")
            raise typer.Exit(Exit.ERROR)
    result = apply_planned(client, planned, allow_prune=allow_prune)
    deployed = _deploy_rotated(reg, result.psk_sent) if rotate_psk and not no_agents and result.psk_sent else None
    if is_json(ctx):
        emit_json({**planned.plan.as_dict(), "applied": result.applied, "psk_sent": result.psk_sent,
                   "keys_deployed_to": deployed,
                   "api_calls": client.total_calls,
                   "sync_token": None if result.token is None else {"action": result.token.action,
                                                                     "expires_at": result.token.expires_at}})
    else:
        stdout.print(f"Applied {result.applied} changes to region {reg.name} "
                     f"({client.total_calls} API calls; PSK sent for {len(result.psk_sent)} hosts).")
        if result.token is not None and result.token.action != "kept":
            stderr.print(f"sync user's API token {result.token.action} (expires {_when(result.token.expires_at)})")
        if deployed is not None:
            stdout.print(f"New keys deployed to {', '.join(deployed)}.")
    raise typer.Exit(Exit.OK)


def _deploy_rotated(reg: Region, hosts: list[str]) -> list[str]:
    """The agents' side of a rotation, in the same run: the window in which Zabbix and an agent
    hold different keys lasts seconds, well under the 3 minutes before "agent silent" counts."""
    proxies = sorted({p.host for h in hosts if (p := reg.zabbix_proxy_of(h)) is not None})
    limit = ",".join(sorted(set(hosts) | set(proxies)))
    stderr.print(f"deploying the new keys to {plural(len(hosts), 'agent')}"
                 + (f" and the proxy on {', '.join(proxies)}" if proxies else ""))
    result = run_deploy(reg, limit=limit, tags="zabbix_agent,zabbix_proxy", extra_vars=["hcops_psk_rotated=true"])
    if result.exit_code() != Exit.OK:
        what = ", ".join(result.failed_hosts) or f"ansible-playbook exited {result.returncode}"
        raise HcopsError(f"Zabbix has the new keys but their deploy failed ({what}): those agents cannot "
                         "report until it runs", "fix the cause above, then run: hcops deploy --region "
                         f"{reg.name} --tags zabbix_agent,zabbix_proxy --limit {limit}")
    return limit.split(",")


def _when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _host_list(hosts: str) -> list[str]:
    return [h.strip() for h in hosts.split(",") if h.strip()]


@maintenance_app.command("start", epilog=examples(
    "hcops monitor maintenance start --region lab --hosts db1,db2 --reason 'failover drill' --minutes 30"))
def maintenance_start(
    ctx: typer.Context,
    *,
    region: str | None = REGION_OPTION,
    hosts: str = typer.Option(..., "--hosts", help="Comma-separated host names from the model."),
    reason: str = typer.Option(..., "--reason", help="Why (shown in Zabbix)."),
    minutes: int = typer.Option(60, "--minutes", min=maint.MIN_MINUTES, max=maint.MAX_MINUTES,
                                help="How long the window lasts (5 minutes, Zabbix's shortest, to a week)."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    timeout: float | None = TIMEOUT_OPTION,
    retries: int | None = RETRIES_OPTION,
) -> None:
    """Put hosts into maintenance (data is still collected) for N minutes from now."""
    reg = region_from(ctx, region)
    names = _host_list(hosts)
    maint.check_hosts(reg, names)  # before any connection attempt
    window = maint.start(_connect(ctx, reg, url, token, timeout, retries), reg, names, reason=reason,
                        minutes=minutes)
    if is_json(ctx):
        emit_json(window.as_dict())
    else:
        data = window.as_dict()
        stdout.print(f"maintenance {window.name} for {', '.join(window.hosts)} until {data['until']}: {reason}")


@maintenance_app.command("stop", epilog=examples("hcops monitor maintenance stop --region lab --hosts db1,db2"))
def maintenance_stop(
    ctx: typer.Context,
    *,
    region: str | None = REGION_OPTION,
    hosts: str = typer.Option(..., "--hosts", help="Comma-separated host names from the model."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    timeout: float | None = TIMEOUT_OPTION,
    retries: int | None = RETRIES_OPTION,
) -> None:
    """End hcops' maintenance windows for these hosts now."""
    reg = region_from(ctx, region)
    names = _host_list(hosts)
    maint.check_hosts(reg, names)
    touched = maint.stop(_connect(ctx, reg, url, token, timeout, retries), reg, names)
    if is_json(ctx):
        emit_json({"ended": [w.as_dict() for w in touched]})
    elif touched:
        stdout.print(f"ended maintenance for {hosts} in: {', '.join(w.name for w in touched)}")
    else:
        stderr.print(f"no hcops maintenance window covers {hosts}; nothing to stop")


@maintenance_app.command("list", epilog=examples("hcops monitor maintenance list --region lab -o json"))
def maintenance_list(
    ctx: typer.Context,
    *,
    region: str | None = REGION_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    timeout: float | None = TIMEOUT_OPTION,
    retries: int | None = RETRIES_OPTION,
) -> None:
    """Maintenance windows hcops opened in this region."""
    reg = region_from(ctx, region)
    windows = maint.active(_connect(ctx, reg, url, token, timeout, retries), reg)
    if is_json(ctx):
        emit_json([w.as_dict() for w in windows])
        return
    listing = table("name", "hosts", "from", "until", "reason", title=f"hcops maintenance windows in {reg.name}")
    for w in windows:
        d = w.as_dict()
        listing.add_row(w.name, ", ".join(w.hosts), d["from"], d["until"], w.reason)
    stdout.print(listing)


class SlaPeriod(StrEnum):
    month = "month"
    quarter = "quarter"
    year = "year"


def _verdict(r: SliRow) -> str:
    """Why the state is what it is: judged by the downtime budget of the whole window, not by
    an SLI that may rest on a few observed minutes."""
    used = f"{r.downtime_min:.1f} of {r.budget_min:.1f} min budget used"
    observed = r.uptime_min + r.downtime_min
    if not r.within:
        return f"breached: {used}"
    if r.sli is not None and r.sli < r.target:
        return (f"ok: {used}; the SLI is below {r.target}% over only {observed:.1f} observed min, "
                "but the window's budget is not spent")
    return f"ok: {used}"


WIDE = 110  # below this many columns `monitor sla` prints one block per SLO instead of a table


@app.command(epilog=examples("hcops monitor sla --region lab", "hcops monitor sla --region lab --period year -o json"))
def sla(
    ctx: typer.Context,
    *,
    region: str | None = REGION_OPTION,
    period: SlaPeriod = typer.Option(SlaPeriod.month, "--period", help="The window to report: month, quarter or year."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    timeout: float | None = TIMEOUT_OPTION,
    retries: int | None = RETRIES_OPTION,
) -> None:
    """Per SLO: uptime, downtime, SLI and error budget left in the current month or year, and why ok/breached."""
    reg = region_from(ctx, region)
    rows = report(_connect(ctx, reg, url, token, timeout, retries), reg, period.value)
    if is_json(ctx):
        emit_json([{**r.as_dict(), "verdict": _verdict(r)} for r in rows])
        return
    # Each SLO reports its own window (a yearly SLO is never cut into months), so the window and
    # its start are per row; "observed" is how much status history Zabbix has in it, which
    # says how much the SLI rests on (minutes after a new service, a whole month later on).
    if stdout.width < WIDE:
        stdout.print(f"SLAs of region {reg.name} ({plural(len(rows), 'SLO')}; minutes)")
        for r in rows:
            stdout.print(f"\n[bold]{r.slo}[/] ({r.service}, target {r.target}%)", soft_wrap=True)
            stdout.print(f"  window    {r.period} from {r.period_from:%Y-%m-%d}", soft_wrap=True)
            sli = "n/a" if r.sli is None else f"{r.sli:.3f}%"
            stdout.print(f"  observed  {r.uptime_min + r.downtime_min:.1f}, down {r.downtime_min:.1f}, SLI {sli}",
                         soft_wrap=True)
            stdout.print(f"  budget    {r.budget_left_min:.1f} left of {r.budget_min:.1f}", soft_wrap=True)
            colour = "green" if r.within else "red"
            stdout.print(f"  state     [{colour}]{_verdict(r)}[/]", soft_wrap=True)
        return
    out = table("slo", "window", "observed", "down", "SLI %", "left / budget", "state: why",
                title=f"SLAs of region {reg.name} (minutes)", box=box.SIMPLE)
    for r in rows:
        out.add_row(f"{r.slo} ({r.service}, {r.target}%)", f"{r.period} from {r.period_from:%Y-%m-%d}",
                    f"{r.uptime_min + r.downtime_min:.1f}", f"{r.downtime_min:.1f}",
                    "n/a" if r.sli is None else f"{r.sli:.3f}", f"{r.budget_left_min:.1f} / {r.budget_min:.1f}",
                    f"[{'green' if r.within else 'red'}]{_verdict(r)}[/]")
    stdout.print(out)
