"""The level-3 evidence as one self-contained HTML page (no network fetch): a summary bar per
host and the clause table, each cell the host's verdict with its evidence."""

from __future__ import annotations

from html import escape

from infra.level3.audit import AuditResult

COLOURS = {"PASS": "#2e7d32", "FAIL": "#c62828", "NA": "#757575"}
LABELS = {"PASS": "pass", "FAIL": "FAIL", "NA": "not applicable here"}


def _bars(result: AuditResult) -> str:
    width, row_h, label_w = 640, 22, 110
    hosts = [*result.hosts, "(model)"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + label_w + 60}" '
             f'height="{row_h * len(hosts) + 10}" role="img" aria-label="verdicts per host">']
    for i, host in enumerate(hosts):
        counts = dict.fromkeys(COLOURS, 0)
        for row in result.rows:
            if host in row.hosts:
                counts[row.hosts[host].status] += 1
        total = sum(counts.values()) or 1
        y = i * row_h + 4
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{escape(host)}</text>')
        x = float(label_w)
        for status, n in counts.items():
            w = width * n / total
            if n:
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 6}" '
                             f'fill="{COLOURS[status]}"><title>{escape(host)}: {n} {LABELS[status]}</title></rect>')
                if w > 18:
                    parts.append(f'<text x="{x + 4:.1f}" y="{y + 12}" font-size="11" fill="#fff">{n}</text>')
            x += w
        parts.append(f'<text x="{label_w + width + 6}" y="{y + 14}" font-size="12">{sum(counts.values())}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(result: AuditResult) -> str:
    counts = result.counts()
    verdict = "every row passes or is honestly not applicable" if not result.failed else \
        f"{len(result.failed)} clause(s) fail: " + ", ".join(r.clause for r in result.failed)
    head = "".join(f"<th>{escape(h)}</th>" for h in [*result.hosts, "(model)"])
    body = []
    for row in result.rows:
        cells = []
        for host in [*result.hosts, "(model)"]:
            res = row.hosts.get(host)
            if res is None:
                cells.append('<td class="none">—</td>')
            else:
                cells.append(f'<td class="{res.status}" title="{escape(res.evidence)}"><b>{LABELS[res.status]}</b>'
                             f'<div class="ev">{escape(res.evidence)}</div></td>')
        body.append(f'<tr><td class="cl">{escape(row.clause)}</td><td><b>{escape(row.title)}</b>'
                    f'<div class="ev">{escape(row.control)}</div><div class="where">{escape(row.where)}</div></td>'
                    f'<td class="{row.status}">{LABELS[row.status]}</td>{"".join(cells)}</tr>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Level-3 evidence: {escape(result.region)}</title>
<style>
body {{ font: 13px/1.4 system-ui, sans-serif; margin: 20px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; table-layout: fixed; }}
th, td {{ border: 1px solid #ccc; padding: 4px 6px; vertical-align: top; word-wrap: break-word; }}
th {{ background: #eee; }}
td.cl {{ width: 70px; font-weight: bold; }}
td.PASS {{ background: #e8f5e9; color: {COLOURS["PASS"]}; }}
td.FAIL {{ background: #ffebee; color: {COLOURS["FAIL"]}; }}
td.NA {{ background: #f5f5f5; color: {COLOURS["NA"]}; }}
td.none {{ color: #bbb; text-align: center; }}
.ev {{ font-size: 11px; color: #444; }}
.where {{ font-size: 11px; color: #777; font-family: monospace; }}
</style></head><body>
<h1>GB/T 22239-2019 level 3: evidence for region {escape(result.region)}</h1>
<p>Checked {escape(result.started)} on {len(result.hosts)} hosts in {result.seconds} s, through the automation
account with sudo (pytest-testinfra). Verdicts: {counts["PASS"]} pass, {counts["FAIL"]} fail,
{counts["NA"]} not applicable here (each with its reason). <b>{escape(verdict)}.</b></p>
{_bars(result)}
<table><thead><tr><th style="width:70px">clause</th><th style="width:260px">control (where configured)</th>
<th style="width:60px">row</th>{head}</tr></thead>
<tbody>{"".join(body)}</tbody></table>
</body></html>
"""
