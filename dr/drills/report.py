"""Drill reports: Markdown, and one self-contained HTML page with an inline SVG timeline.

Nothing in the HTML is fetched from anywhere (no scripts, fonts or images from outside): it opens
the same on an on-call laptop without a network.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

W, LANE, LEFT, TOP = 1100, 26, 170, 64
COLORS = ["#2b7bb9", "#8e44ad", "#16a085", "#d35400"]


def _t(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


def _steps(journal: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for phase, runs in (("method", journal.get("run", [])), ("rollback", journal.get("rollbacks", []))):
        for r in runs or []:
            act = r.get("activity", {})
            rows.append({"phase": phase, "name": act.get("name", "?"), "type": act.get("type", "?"),
                         "start": str(r.get("start", ""))[11:23], "end": str(r.get("end", ""))[11:23],
                         "status": r.get("status", "?"),
                         "output": str(r.get("output") if r.get("status") == "succeeded" else r.get("exception", ""))})
    return rows


def _fmt(v: Any, unit: str = "") -> str:
    return "n/a" if v is None else f"{v}{unit}"


def markdown(journal: dict[str, Any]) -> str:
    h = journal["hcops"]
    t = h["targets"]
    v = h.get("verdict", {})
    lines = [f"# Drill {h['drill']}: {'PASSED' if v.get('passed') else 'FAILED'}", "",
             f"Region `{h.get('region')}`, run `{h['run_id']}`, {h['started']} to {h['ended']}; "
             f"Chaos Toolkit status `{journal.get('status')}`" + (", deviated" if journal.get("deviated") else ""), "",
             "| measure | value | target |", "|---|---|---|",
             f"| RTO (first failed to first acknowledged write) | {_fmt(h.get('rto_s'), ' s')} | "
             f"{t['rto_target_s']} s |",
             f"| RPO (acknowledged writes lost) | {h.get('rpo_lost_writes')} | {t['rpo_target_writes']} |",
             f"| failed requests through the VIP | {h.get('failed_requests')} of {h.get('requests', 0)} | "
             f"{t['max_failed_requests']} (app-node-loss) |",
             f"| most servers writable at once | {h.get('max_writable')} | 1 |"]
    lw = h.get("local_writer")
    if lw:
        lines.append(f"| write stall on {lw['host']} (longest commit) | {lw['max_commit_s']} s | "
                     f"{t['max_write_stall_s']} s |")
    fm = h.get("far_monitoring")
    if fm:
        lines.append(f"| far-side values collected during the cut, held by Zabbix then / after "
                     f"(proxy {fm['proxy']}) | {fm['during']} / {fm['after']} | 0 / more than 0 |")
    lines += ["", "## Checks", ""]
    lines += [f"- {'ok' if c['ok'] else 'FAILED'}: {c['check']}" for c in v.get("checks", [])]
    lines += ["", "## Outages", ""]
    lines += [f"- {o['start'][11:23]} to {o['end'][11:23]} ({o.get('seconds', '?')} s): {o['what']}"
              for o in h.get("outages", [])] or ["- none"]
    lines += ["", "## Timeline", ""]
    lines += [f"- {m['at'][11:23]} {m['what']}" for m in h.get("marks", [])]
    lines += [f"- {d['at'][11:23]} manager: {d['action']}: {d['reason']}" for d in h.get("manager", [])
              if d.get("action") != "ok"]
    lines += ["", "## Steps (Chaos Toolkit journal)", "", "| phase | activity | start | end | status |",
              "|---|---|---|---|---|"]
    lines += [f"| {s['phase']} | {s['name']} | {s['start']} | {s['end']} | {s['status']} |" for s in _steps(journal)]
    lines += ["", f"Zabbix maintenance: {h.get('maintenance', {}).get('open')}; "
                  f"{h.get('maintenance', {}).get('close')}", ""]
    return "\n".join(lines)


def timeline_svg(h: dict[str, Any]) -> str:
    t0, t1 = _t(h["started"]), _t(h["ended"])
    span = max(t1 - t0, 1.0)
    series = h.get("series", {})
    lanes: list[tuple[str, list[list[Any]]]] = [("requests via VIP", series.get("requests", []))]
    lanes += [(f"writes {host}", pts) for host, pts in sorted(series.get("writes", {}).items())]
    height = TOP + LANE * (len(lanes) + 1) + 40

    def x(t: float) -> float:
        return LEFT + (t - t0) / span * (W - LEFT - 20)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
           f'viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="11" role="img" '
           f'aria-label="drill timeline">']
    for o in h.get("outages", []):
        a, b = x(_t(o["start"])), x(_t(o["end"]))
        out.append(f'<rect x="{a:.1f}" y="{TOP - 8}" width="{max(b - a, 1.5):.1f}" '
                   f'height="{LANE * (len(lanes) + 1) + 4}" '
                   f'fill="#e74c3c" opacity="0.12"><title>{escape(o["what"])} {o.get("seconds")} s</title></rect>')
    for i, (name, pts) in enumerate(lanes):
        y = TOP + i * LANE
        out.append(f'<text x="6" y="{y + 12}">{escape(name)}</text>')
        out.append(f'<line x1="{LEFT}" y1="{y + 8}" x2="{W - 20}" y2="{y + 8}" stroke="#ddd"/>')
        for t, ok in pts:
            out.append(f'<rect x="{x(float(t)):.1f}" y="{y + 2}" width="2" height="12" '
                       f'fill="{"#27ae60" if ok else "#c0392b"}"/>')
    y = TOP + len(lanes) * LANE
    out.append(f'<text x="6" y="{y + 12}">writable DB</text>')
    hosts = sorted({w for _t0, ws in series.get("writable", []) for w in ws})
    for t, ws in series.get("writable", []):
        color = "#c0392b" if len(ws) > 1 else (COLORS[hosts.index(ws[0]) % len(COLORS)] if ws else "#bbb")
        out.append(f'<rect x="{x(float(t)):.1f}" y="{y + 2}" width="4" height="12" fill="{color}">'
                   f'<title>{escape(", ".join(ws) or "none")}</title></rect>')
    for j, host in enumerate(hosts):
        out.append(f'<rect x="{LEFT + j * 90}" y="{y + 22}" width="10" height="10" fill="{COLORS[j % len(COLORS)]}"/>'
                   f'<text x="{LEFT + j * 90 + 14}" y="{y + 31}">{escape(host)}</text>')
    for k, m in enumerate(h.get("marks", [])):
        mx = x(_t(m["at"]))
        out.append(f'<line x1="{mx:.1f}" y1="{TOP - 12}" x2="{mx:.1f}" y2="{y + 18}" stroke="#555" '
                   f'stroke-dasharray="3,2"/><text x="{mx + 2:.1f}" y="{TOP - 16 - (k % 3) * 14}" '
                   f'font-size="10">{escape(m["what"])}</text>')
    for s in range(0, int(span) + 1, max(1, int(span // 10) or 1)):
        out.append(f'<text x="{x(t0 + s):.1f}" y="{height - 6}" fill="#666">+{s}s</text>')
    out.append("</svg>")
    return "\n".join(out)


def html(journal: dict[str, Any]) -> str:
    h = journal["hcops"]
    v = h.get("verdict", {})
    md_rows = markdown(journal).split("## Checks")[0]
    table = []
    for line in md_rows.splitlines():
        if line.startswith("| ") and not line.startswith("|---") and "measure" not in line:
            cells = [escape(c.strip()) for c in line.strip("|").split("|")]
            table.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    checks = "".join(f'<li class="{"ok" if c["ok"] else "bad"}">{"ok" if c["ok"] else "FAILED"}: '
                     f'{escape(c["check"])}</li>' for c in v.get("checks", []))
    steps = "".join(f"<tr><td>{s['phase']}</td><td>{escape(s['name'])}</td><td>{s['start']}</td><td>{s['end']}</td>"
                    f"<td>{escape(str(s['status']))}</td><td>{escape(s['output'][:160])}</td></tr>"
                    for s in _steps(journal))
    outages = "".join(f"<li>{o['start'][11:23]} to {o['end'][11:23]} ({o.get('seconds')} s): {escape(o['what'])}</li>"
                      for o in h.get("outages", [])) or "<li>none</li>"
    verdict = "PASSED" if v.get("passed") else "FAILED"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hcops drill {escape(h['drill'])} {escape(h['run_id'])}</title>
<style>body{{font-family:sans-serif;margin:24px;color:#222}} table{{border-collapse:collapse;margin:8px 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}} .ok{{color:#1e8449}}
.bad{{color:#c0392b;font-weight:bold}} h1 span{{font-size:0.7em;padding:2px 8px;border-radius:4px;color:#fff;
background:{'#27ae60' if v.get('passed') else '#c0392b'}}}</style></head>
<body><h1>Drill {escape(h['drill'])} <span>{verdict}</span></h1>
<p>Region <b>{escape(str(h.get('region')))}</b>, run {escape(h['run_id'])}, {escape(h['started'])} to
{escape(h['ended'])}; Chaos Toolkit status <b>{escape(str(journal.get('status')))}</b>.</p>
<table><tr><th>measure</th><th>value</th><th>target</th></tr>{''.join(table)}</table>
<h2>Timeline</h2>{timeline_svg(h) if h.get('series') else '<p>no measurements (the drill did not start)</p>'}
<p>Green: acknowledged write or successful request; red: failed. Shaded: outages. Dashed: what the drill did.</p>
<h2>Checks</h2><ul>{checks}</ul><h2>Outages</h2><ul>{outages}</ul>
<h2>Steps</h2><table><tr><th>phase</th><th>activity</th><th>start</th><th>end</th><th>status</th><th>output</th></tr>
{steps}</table>
<p>Zabbix maintenance: {escape(str(h.get('maintenance', {}).get('open')))};
{escape(str(h.get('maintenance', {}).get('close')))}</p></body></html>
"""
