"""`hcops summary`: one table of where a region stands, and one offline index page linking every
report the main job wrote (drill, availability, county plan, acceptance).

It runs nothing new: it reads what the engines already recorded (host state, the database
topology, the backup catalog, drill journals, the acceptance store) and the availability report
the main job wrote as JSON. Each row says where its figure came from, so a missing or stale
source shows as such instead of as a pass.
"""

from __future__ import annotations

import html
import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from cli.common import REGION_OPTION, emit_json, examples, is_json, region_from, stderr, stdout, table
from inventories.errors import HcopsError
from inventories.model import Region

OK, WARN, FAIL, MISSING = "ok", "warn", "FAIL", "missing"


@dataclass
class Row:
    what: str
    state: str  # ok, warn (needs a look, not failing), FAIL or missing
    detail: str
    link: str | None = None  # a page under the output directory


@dataclass
class Summary:
    region: str
    generated: str
    rows: list[Row] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.state in (OK, WARN) for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "generated": self.generated, "ok": self.ok,
                "rows": [r.__dict__ for r in self.rows]}


def _hosts(region: Region) -> Row:
    if region.spec.region.kind != "lab":
        return Row("hosts up", MISSING, "only lab hosts are observed here; see `hcops infra status`")
    from infra.lab import control  # noqa: PLC0415 (the lab engine, only for lab regions)

    states = {h: control.host_state(region, h) for h in region.hosts}
    up = [h for h, s in states.items() if s == "running"]
    down = [f"{h}: {s}" for h, s in states.items() if s != "running"]
    return Row("hosts up", OK if not down else FAIL, f"{len(up)}/{len(states)} running" +
               (f" ({', '.join(down)})" if down else ""))


def _database(region: Region) -> Row:
    from dr.failover import topology  # noqa: PLC0415

    try:
        name, svc, states = topology.observe(region)
    except HcopsError as exc:
        return Row("database service", FAIL, exc.message)
    primary = topology.current_primary(states)
    writable = [h for h, s in states.items() if s.reachable and s.read_only is False]
    ok = primary == svc.primary and len(writable) == 1
    return Row(f"database {name}", OK if ok else FAIL,
               f"primary {primary or 'none'} (model: {svc.primary}); writable: {', '.join(writable) or 'none'}; "
               f"{len(states) - 1} replica(s)")


def _backups(region: Region) -> list[Row]:
    try:
        from dr.backup.status import policy_status  # noqa: PLC0415
    except ImportError:
        return [Row("backups", MISSING, "the backup engine is not installed")]
    rows = []
    for st in policy_status(region):
        if st.last_verified_at is None:
            rows.append(Row(f"backup {st.policy}", FAIL, "no verified backup yet"))
            continue
        where = " + ".join(st.verified_where) or "nowhere"
        age = f"{st.age_s / 60:.0f} min ago" if st.age_s is not None else ""
        state = OK if "offsite" in st.verified_where and "local" in st.verified_where else FAIL
        rows.append(Row(f"backup {st.policy}", state, f"last verified {age} ({st.last_verified_at:%Y-%m-%d %H:%M} "
                                                      f"UTC), verified {where}"))
    return rows or [Row("backups", MISSING, "the model has no backup policy")]


def _drills(region: Region, out: Path) -> list[Row]:
    from dr.drills.store import list_runs  # noqa: PLC0415

    newest: dict[str, Any] = {}
    for run in list_runs(region):
        newest[run.drill] = run
    rows = []
    for drill, run in sorted(newest.items()):
        h, t = run.hcops, run.hcops.get("targets", {})
        rto, rpo = h.get("rto_s"), h.get("rpo_lost_writes")
        rto_txt = "n/a" if rto is None else f"{rto:.2f} s"
        link = None
        if run.report_html.exists():
            dest = out / "drills" / f"{run.run_id}.html"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run.report_html, dest)
            link = str(dest.relative_to(out))
        rows.append(Row(f"drill {drill}", OK if run.passed else FAIL,
                        f"RTO {rto_txt} (target {t.get('rto_target_s', '?')} s), RPO {rpo} lost write(s) "
                        f"(target {t.get('rpo_target_writes', '?')}), {h.get('failed_requests', '?')} failed "
                        f"request(s); run {run.run_id}", link))
    return rows or [Row("drills", MISSING, "no drill has run: `hcops drill run db-primary-loss --yes`")]


def _availability(out: Path) -> list[Row]:
    data_file = out / "availability.json"
    if not data_file.exists():
        return [Row("availability", MISSING, f"no report at {data_file}: `hcops -o json availability report`")]
    data = json.loads(data_file.read_text())
    link = "availability.html" if (out / "availability.html").exists() else None
    rows = []
    for slo in data.get("slos", []):
        p = slo["probes"]
        avail = p.get("availability_pct")
        # The SLO is the budget over its whole window; a burn-rate page (right after a drill,
        # say) warns that it is being spent fast, but has not failed it.
        firing = [b["rule"] for b in slo.get("burn", []) if b.get("firing") and b.get("severity") == "page"]
        state = FAIL if slo.get("budget_exhausted") else WARN if slo.get("paging") else OK
        rows.append(Row(f"availability {slo['slo']}", state,
                        f"{'n/a' if avail is None else f'{avail:.3f}%'} against {slo['target']}% per {slo['period']}; "
                        f"budget left {p['budget_left_min']:.1f}/{slo['budget_min']:.1f} min; {slo['observed']}"
                        + (f"; burn-rate page firing ({', '.join(firing)})" if firing else ""),
                        link))
    return rows


def _acceptance(region: Region, out: Path) -> list[Row]:
    from infra.plans.store import load_latest  # noqa: PLC0415

    rows = []
    for county in sorted({s.county for s in region.sites.values() if s.county}):
        rep = load_latest(region.name, county)
        plan = out / "plans" / f"{region.name}-{county}.html"
        if rep is None:
            rows.append(Row(f"county {county} acceptance", MISSING, "not verified: `hcops plan verify`",
                            str(plan.relative_to(out)) if plan.exists() else None))
            continue
        failed = [i.id for i in rep.failed]
        detail = f"{len(rep.items) - len(failed)}/{len(rep.items)} items pass" + (
            f"; failing: {', '.join(failed)}" if failed else "") + f"; checked {rep.finished_at}"
        rows.append(Row(f"county {county} acceptance", OK if rep.passed else FAIL, detail,
                        str(plan.relative_to(out)) if plan.exists() else None))
    return rows


def build(region: Region, out: Path) -> Summary:
    s = Summary(region.name, datetime.now(UTC).replace(microsecond=0).isoformat())
    s.rows.append(_hosts(region))
    s.rows.append(_database(region))
    s.rows += _backups(region)
    s.rows += _drills(region, out)
    s.rows += _availability(out)
    s.rows += _acceptance(region, out)
    return s


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hcops: {region}</title>
<style>
body {{ font: 15px/1.45 "DejaVu Sans", sans-serif; margin: 2em auto; max-width: 70em; color: #1d2733; }}
h1 {{ font-size: 1.5em; margin-bottom: .2em; }} .sub {{ color: #5a6573; margin-top: 0; }}
table {{ border-collapse: collapse; width: 100%; }} th, td {{ text-align: left; padding: .45em .6em;
border-bottom: 1px solid #d9dee5; vertical-align: top; }} th {{ background: #eef1f5; }}
.ok {{ color: #0a7d32; font-weight: bold; }}
.warn {{ color: #8a5a00; font-weight: bold; }} .FAIL {{ color: #b3261e; font-weight: bold; }}
.missing {{ color: #8a5a00; font-weight: bold; }} ul {{ padding-left: 1.2em; }}
.verdict {{ display: inline-block; padding: .2em .7em; border-radius: .3em; color: #fff; }}
.v-ok {{ background: #0a7d32; }} .v-warn {{ background: #8a5a00; }} .v-bad {{ background: #b3261e; }}
</style></head><body>
<h1>Region {region}</h1>
<p class="sub">hcops summary, {generated} &middot; <span class="verdict {vclass}">{verdict}</span></p>
<table><tr><th>what</th><th>state</th><th>detail</th><th>report</th></tr>
{rows}
</table>
<h2>Reports</h2><ul>
{links}
</ul>
<p class="sub">Every page here opens offline; nothing is fetched from a network.</p>
</body></html>
"""


def write_index(summary: Summary, out: Path) -> Path:
    rows = "\n".join(
        f'<tr><td>{html.escape(r.what)}</td><td class="{r.state}">{r.state}</td><td>{html.escape(r.detail)}</td>'
        f'<td>{f"<a href={chr(34)}{html.escape(r.link)}{chr(34)}>open</a>" if r.link else ""}</td></tr>'
        for r in summary.rows)
    pages = sorted({r.link for r in summary.rows if r.link})
    for extra in ("acceptance", "level3.html"):
        for p in sorted((out / extra).glob("*.html")) if (out / extra).is_dir() else (
                [out / extra] if (out / extra).exists() else []):
            pages.append(str(p.relative_to(out)))
    links = "\n".join(f'<li><a href="{html.escape(p)}">{html.escape(p)}</a></li>' for p in dict.fromkeys(pages))
    index = out / "index.html"
    warns = sum(r.state == WARN for r in summary.rows)
    verdict = ("something needs a look" if not summary.ok else
               f"nothing failed; {warns} warning(s) to read" if warns else "everything checked is ok")
    index.write_text(PAGE.format(region=html.escape(summary.region), generated=summary.generated,
                                 vclass="v-bad" if not summary.ok else "v-warn" if warns else "v-ok",
                                 verdict=verdict,
                                 rows=rows, links=links or "<li>no report written yet</li>"))
    return index


EPILOG = examples("hcops summary --region lab --out out", "hcops -o json summary --region lab")


def summary_cmd(ctx: typer.Context, region: str | None = REGION_OPTION,
                out: Path = typer.Option(Path("out"), "--out", help="Directory of the main job's reports; the "
                                         "index page is written there."),
                strict: bool = typer.Option(False, "--strict",
                                            help="Exit 1 if a row is FAIL or missing (warn passes).")) -> None:
    """One table of where the region stands, and an index page of its reports (offline HTML)."""
    reg = region_from(ctx, region)
    out.mkdir(parents=True, exist_ok=True)
    result = build(reg, out)
    index = write_index(result, out)
    if is_json(ctx):
        emit_json({**result.as_dict(), "index": str(index)})
    else:
        t = table(title=f"Region {reg.name}: summary")
        t.add_column("what")
        t.add_column("state")
        t.add_column("detail")
        for r in result.rows:
            style = {"ok": "green", "warn": "yellow", "FAIL": "bold red", "missing": "yellow"}[r.state]
            t.add_row(r.what, f"[{style}]{r.state}[/]", r.detail)
        stdout.print(t)
    stderr.print(f"index page: {index.resolve()}")
    if strict and not result.ok:
        raise typer.Exit(1)
