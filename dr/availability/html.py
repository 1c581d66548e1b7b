"""The availability report as one HTML file: tables and inline SVG charts, nothing fetched.

Per SLO: error budget spent over the period (probe downtime against the budget line), the 1 h
burn rate over time (with the 14.4x and 6x page thresholds), and incidents as bars on a
timeline, with drills drawn as annotations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from dr.availability.report import AvailabilityReport, SloReport

W, H, PAD = 860, 180, 48
CSS = """
body{font-family:DejaVu Sans,Arial,sans-serif;margin:24px;color:#222;max-width:980px}
h1{font-size:22px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}
th{background:#f0f0f0;text-align:left} .bad{color:#b00020;font-weight:bold} .ok{color:#1b7f3b;font-weight:bold}
.note{color:#555;font-size:13px} svg{background:#fafafa;border:1px solid #ddd;margin:6px 0}
"""


def _x(t: float, start: float, end: float) -> float:
    return PAD + (W - 2 * PAD) * ((t - start) / (end - start) if end > start else 0)


def _y(v: float, top: float) -> float:
    return H - PAD / 2 - (H - PAD) * (min(v, top) / top if top > 0 else 0)


def _axis(start: float, end: float, label: str, top: float, unit: str) -> str:
    out = [f'<line x1="{PAD}" y1="{H - PAD / 2}" x2="{W - PAD}" y2="{H - PAD / 2}" stroke="#888"/>',
           f'<line x1="{PAD}" y1="{PAD / 2}" x2="{PAD}" y2="{H - PAD / 2}" stroke="#888"/>',
           f'<text x="{PAD}" y="14" font-size="12">{escape(label)}</text>',
           f'<text x="4" y="{PAD / 2 + 4}" font-size="10">{top:g}{unit}</text>',
           f'<text x="4" y="{H - PAD / 2}" font-size="10">0</text>']
    for k in range(5):
        t = start + (end - start) * k / 4
        stamp = datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M")
        out.append(f'<text x="{_x(t, start, end) - 30}" y="{H - 4}" font-size="10">{stamp}</text>')
    return "".join(out)


def _drills(rep: SloReport, start: float, end: float) -> str:
    out = []
    for run in rep.drills:
        for o in run.outages or ():
            x1 = _x(max(start, o.start.timestamp()), start, end)
            x2 = _x(min(end, o.end.timestamp()), start, end)
            out.append(f'<rect x="{x1:.1f}" y="{PAD / 2}" width="{max(1.5, x2 - x1):.1f}" height="{H - PAD}" '
                       f'fill="#7b61ff" opacity="0.18"><title>drill {escape(run.drill)} {escape(run.run_id)}: '
                       f'{escape(o.what)}</title></rect>')
        x = _x(max(start, run.started.timestamp()), start, end)
        out.append(f'<text x="{x + 2:.1f}" y="{PAD / 2 + 10}" font-size="10" fill="#5a3fd6">'
                   f'drill {escape(run.drill)}</text>')
    return "".join(out)


def budget_chart(rep: SloReport) -> str:
    start, end = rep.start.timestamp(), rep.end.timestamp()
    spent = [(t, s / 60) for t, s in rep.spent_timeline] + [(end, rep.probes.down_s / 60)]
    top = max(rep.budget_min, spent[-1][1]) * 1.15 or 1.0
    pts = " ".join(f"{_x(t, start, end):.1f},{_y(v, top):.1f}" for t, v in spent)
    budget_y = _y(rep.budget_min, top)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" '
            f'aria-label="budget spent">'
            f'{_axis(start, end, "error budget spent (min of downtime, probes)", top, " min")}'
            f'{_drills(rep, start, end)}'
            f'<line x1="{PAD}" y1="{budget_y:.1f}" x2="{W - PAD}" y2="{budget_y:.1f}" '
            f'stroke="#b00020" '
            f'stroke-dasharray="6,4"/><text x="{W - PAD - 120}" y="{budget_y - 4:.1f}" font-size="11" '
            f'fill="#b00020">budget {rep.budget_min:g} min</text>'
            f'<polyline points="{pts}" fill="none" stroke="#1f5fbf" stroke-width="2"/></svg>')


def burn_chart(rep: SloReport) -> str:
    start, end = rep.start.timestamp(), rep.end.timestamp()
    values = [v for _, v in rep.burn_timeline if v is not None]
    top = max([16.0, *values]) * 1.1
    segs: list[list[str]] = []
    cur: list[str] = []
    for t, v in rep.burn_timeline:
        if v is None:
            if cur:
                segs.append(cur)
            cur = []
        else:
            cur.append(f"{_x(t, start, end):.1f},{_y(v, top):.1f}")
    if cur:
        segs.append(cur)
    lines = "".join(f'<polyline points="{" ".join(s)}" fill="none" stroke="#e07b00" stroke-width="2"/>'
                    for s in segs)
    marks = "".join(
        f'<line x1="{PAD}" y1="{_y(f, top):.1f}" x2="{W - PAD}" y2="{_y(f, top):.1f}" stroke="#b00020" '
        f'stroke-dasharray="3,3"/><text x="{W - PAD + 2}" y="{_y(f, top) + 4:.1f}" font-size="10">{f:g}x</text>'
        for f in (14.4, 6.0))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="burn rate">'
            f'{_axis(start, end, "burn rate, 1 h window (probes)", round(top, 1), "x")}{_drills(rep, start, end)}'
            f'{marks}{lines}</svg>')


def incident_chart(rep: SloReport) -> str:
    start, end = rep.start.timestamp(), rep.end.timestamp()
    bars = []
    for inc in rep.probes.incidents:
        x1, x2 = _x(inc.start, start, end), _x(inc.end, start, end)
        bars.append(f'<rect x="{x1:.1f}" y="{PAD}" width="{max(2.0, x2 - x1):.1f}" height="40" fill="#b00020">'
                    f'<title>{escape(datetime.fromtimestamp(inc.start, UTC).isoformat())}: {inc.seconds:.0f} s '
                    f'{escape(inc.detail)}</title></rect>')
    for gap in rep.probes.gaps:
        x1, x2 = _x(gap.start, start, end), _x(gap.end, start, end)
        bars.append(f'<rect x="{x1:.1f}" y="{PAD + 50}" width="{max(2.0, x2 - x1):.1f}" height="14" fill="#999">'
                    f'<title>not observed: {gap.seconds:.0f} s</title></rect>')
    if rep.probes.first is not None:
        x1 = _x(rep.probes.first, start, end)
        x2 = _x(rep.probes.last or rep.probes.first, start, end)
        bars.append(f'<rect x="{x1:.1f}" y="{PAD + 70}" width="{max(2.0, x2 - x1):.1f}" height="6" fill="#1b7f3b">'
                    '<title>observed by the prober</title></rect>')
    legend = ('<text x="60" y="30" font-size="11" fill="#b00020">incidents (probes)</text>'
              '<text x="200" y="30" font-size="11" fill="#555">gaps (not observed)</text>'
              '<text x="350" y="30" font-size="11" fill="#1b7f3b">observed span</text>'
              '<text x="470" y="30" font-size="11" fill="#5a3fd6">drills</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="incidents">'
            f'{_axis(start, end, "incidents on the timeline", 1, "")}{_drills(rep, start, end)}{legend}'
            f'{"".join(bars)}</svg>')


def _cls(good: bool) -> str:
    return "ok" if good else "bad"


def slo_section(rep: SloReport) -> str:
    z = rep.zabbix
    rows = [
        ("availability", f"{rep.probes.availability * 100:.4f}%" if rep.probes.availability is not None else "no data",
         f"{z.sli:.4f}%" if z and z.sli is not None else (escape(rep.zabbix_error or "no data"))),
        ("downtime", f"{rep.probes.down_s / 60:.2f} min", f"{z.downtime_min:.2f} min" if z else "-"),
        ("error budget left", f'<span class="{_cls(rep.probe_budget_left_min >= 0)}">'
                              f"{rep.probe_budget_left_min:.2f} of {rep.budget_min:g} min</span>",
         f'<span class="{_cls(z.budget_left_min >= 0)}">{z.budget_left_min:.2f} of {z.budget_min:g} min</span>'
         if z else "-"),
        ("incidents", str(len(rep.probes.incidents)), "-"),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{a}</td><td>{b}</td></tr>" for k, a, b in rows)
    burn_rows = "".join(
        f"<tr><td>{a.window.severity}</td><td>{escape(a.window.name)}</td>"
        f"<td>{'-' if a.long.burn is None else f'{a.long.burn:.2f}x'} ({a.long.observed * 100:.0f}% observed)</td>"
        f"<td>{'-' if a.short.burn is None else f'{a.short.burn:.2f}x'} ({a.short.observed * 100:.0f}% observed)</td>"
        f'<td class="{_cls(not a.firing)}">{"FIRING" if a.firing else "ok"}</td></tr>' for a in rep.alerts)
    expl = "".join(f"<li>{escape(e)}</li>" for e in rep.explanation) or (
        f"<li>no comparison: Zabbix {escape(rep.zabbix_error or 'gave no row')}</li>" if rep.zabbix is None
        else "<li>the sources agree (within a Zabbix poll and two probe intervals)</li>")
    drills = "".join(f"<li>drill {escape(d.drill)} ({escape(d.run_id)}), started {d.started.isoformat()}, "
                     f"RTO {d.rto_s if d.rto_s is not None else '-'} s</li>" for d in rep.drills)
    return (f"<h2>SLO {escape(rep.slo)}: service {escape(rep.service)}, {rep.target}% per {rep.period}</h2>"
            f'<p class="note">{escape(rep.observed_note())}; from {rep.start.isoformat()} to {rep.end.isoformat()}</p>'
            f"<table><tr><th></th><th>canary probes (hcops)</th><th>Zabbix SLA</th></tr>{table}</table>"
            f"<p><b>Difference</b></p><ul>{expl}</ul>"
            f"<table><tr><th>severity</th><th>rule</th><th>long window</th><th>short window</th><th>status</th></tr>"
            f"{burn_rows}</table>"
            f"{budget_chart(rep)}{burn_chart(rep)}{incident_chart(rep)}"
            + (f"<p><b>Drills</b></p><ul>{drills}</ul>" if drills else ""))


def render(report: AvailabilityReport) -> str:
    verdict = ('<p class="bad">FAILING: a budget is exhausted or a page-level burn is on</p>' if report.failing
               else '<p class="ok">within budget, no page-level burn</p>')
    body = "".join(slo_section(s) for s in report.slos)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Availability: '
            f"{escape(report.region)}</title><style>{CSS}</style></head><body>"
            f"<h1>Availability of region {escape(report.region)}</h1>"
            f'<p class="note">generated {report.generated.isoformat()}; probe history {escape(report.history_source)}'
            f" every {report.interval_s:g} s</p>{verdict}{body}</body></html>\n")
