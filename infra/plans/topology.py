"""A county's topology as a small, self-contained SVG: its networks and hosts, the exit devices
(firewall, VPN), and each line to the far site with the peer host at the other end.

Hand-laid rather than Graphviz: the same model always gives the same bytes, nothing to install,
and the drawing stays readable on a printed A4 page.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from inventories.model import Region
from inventories.schema import Collector

W = 900
HOST_H = 46
HOST_W = 170


def _text(x: float, y: float, s: str, size: int = 12, *, weight: str = "normal", anchor: str = "start",
          fill: str = "#1b2733") -> str:
    return (f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}" font-weight="{weight}" '
            f'text-anchor="{anchor}" fill="{fill}">{escape(s)}</text>')


def _box(x: float, y: float, w: float, h: float, fill: str, *, stroke: str = "#44546a", rx: int = 6,
         dash: bool = False) -> str:
    d = ' stroke-dasharray="6 4"' if dash else ""
    return (f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="{rx}" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.2"{d}/>')


def _line(x1: float, y1: float, x2: float, y2: float, *, stroke: str = "#44546a", width: float = 1.2,
          dash: bool = False) -> str:
    d = ' stroke-dasharray="5 4"' if dash else ""
    return (f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="{stroke}" '
            f'stroke-width="{width}"{d}/>')


BOX_X, BOX_W = 20.0, 470.0


def county_svg(region: Region, county: str) -> str:
    sites = region.county_sites(county)
    parts: list[str] = []
    y, exits = _county_sites(region, county, sites, parts)
    fy = _far_ends(region, sites, exits, parts)
    height_total = max(y, fy) + 4
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height_total:.0f}" '
            f'width="100%" role="img" aria-label="topology of county {escape(county)}" '
            'font-family="DejaVu Sans, Arial, sans-serif">')
    return head + "".join(parts) + "</svg>"


def _county_sites(region: Region, county: str, sites: list[str],
                  parts: list[str]) -> tuple[float, list[tuple[str, float]]]:
    """The county's own sites, stacked: networks as bars, hosts below, exit devices on the right."""
    y = 20.0
    exits: list[tuple[str, float]] = []  # (site, y of its exit)
    box_x, box_w = BOX_X, BOX_W
    for site in sites:
        spec = region.sites[site]
        hosts = list(spec.hosts)
        nets = list(spec.networks.items())
        per_row = 2
        rows = max(1, (len(hosts) + per_row - 1) // per_row)
        height = 44 + 36 * len(nets) + rows * (HOST_H + 22) + 10
        parts.append(_box(box_x, y, box_w, height, "#f3f7fb"))
        parts.append(_text(box_x + 12, y + 22, f"{site} — county {county} ({spec.kind.replace('_', ' ')})",
                           13, weight="bold"))
        ny = y + 44
        bar_x, bar_w = box_x + 14, box_w - 130
        for net_name, net in nets:
            parts.append(_box(bar_x, ny, bar_w, 22, "#dbe8f5", stroke="#5b7fa6", rx=3))
            vlan = f"VLAN {net.vlan}" if net.vlan else "untagged"
            parts.append(_text(bar_x + 8, ny + 15, f"{net_name} {net.cidr} · {vlan} · gw {region.gateway(net)}",
                               11))
            ny += 36
        hy = ny + 6
        for i, host in enumerate(hosts):
            col, row = i % per_row, i // per_row
            hx = bar_x + col * (HOST_W + 14)
            hyy = hy + row * (HOST_H + 22)
            parts.append(_line(hx + HOST_W / 2, ny - 14, hx + HOST_W / 2, hyy, stroke="#5b7fa6"))
            parts.append(_box(hx, hyy, HOST_W, HOST_H, "#ffffff"))
            addr = ", ".join(str(a) for a in spec.hosts[host].addresses.values())
            parts.append(_text(hx + 8, hyy + 18, host, 12, weight="bold"))
            parts.append(_text(hx + 8, hyy + 35, f"{addr} · {', '.join(region.host_roles(host))}"[:30], 10))
        # exit devices: what the site buys of kind firewall / vpn / router, in model order
        ex = box_x + box_w - 104
        ey = y + 44
        for item_name, item in region.spec.equipment.get(site, {}).items():
            hw = region.spec.hardware.get(item.model)
            if hw is None or hw.kind not in ("firewall", "vpn", "router"):
                continue
            parts.append(_box(ex, ey, 92, 34, "#fff4e0", stroke="#b7791f", rx=4))
            parts.append(_text(ex + 46, ey + 14, item_name, 11, weight="bold", anchor="middle"))
            parts.append(_text(ex + 46, ey + 27, hw.kind if hw.kind != item_name else f"× {item.count}", 10,
                               anchor="middle"))
            ey += 44
        exits.append((site, y + 44 + 17))
        y += height + 20
    return y, exits


def _far_ends(region: Region, sites: list[str], exits: list[tuple[str, float]], parts: list[str]) -> float:
    """Each line of the county to its far site, with the collector's tunnel peer there."""
    box_x, box_w = BOX_X, BOX_W
    fx, fw = 610.0, 270.0
    fy = 20.0
    collectors = {svc.link: svc for svc in region.services.values() if isinstance(svc, Collector)}
    for link_name, link in region.links.items():
        here = [s for s in link.between if s in sites]
        if not here:
            continue
        far = next(s for s in link.between if s not in sites) if len(here) == 1 else here[-1]
        far_spec = region.sites[far]
        svc = collectors.get(link_name)
        nets = list(far_spec.networks.items())
        height = 44 + 20 * len(nets) + (HOST_H + 12 if svc else 0)
        parts.append(_box(fx, fy, fw, height, "#f5f3fb", dash=True))
        parts.append(_text(fx + 12, fy + 22, f"{far} ({far_spec.kind.replace('_', ' ')})", 13, weight="bold"))
        ty = fy + 40
        for net_name, net in nets:
            parts.append(_text(fx + 12, ty + 4, f"{net_name} {net.cidr}", 11))
            ty += 20
        if svc:
            parts.append(_box(fx + 12, ty, HOST_W, HOST_H, "#ffffff"))
            parts.append(_text(fx + 20, ty + 18, f"{svc.peer} (tunnel peer)", 12, weight="bold"))
            parts.append(_text(fx + 20, ty + 35, f"{region.hosts[svc.peer].primary_address} udp/{svc.port}", 10))
        exit_y = next(ey for s, ey in exits if s == here[0])
        x1 = box_x + box_w
        end_y = exit_y if fy + 10 <= exit_y <= fy + height - 10 else fy + 22
        parts.append(_line(x1, exit_y, fx, end_y, stroke="#2f855a", width=3))
        mid_x = (x1 + fx) / 2
        mid_y = (exit_y + end_y) / 2
        parts.append(_text(mid_x, mid_y - 9, link_name, 11, weight="bold", anchor="middle", fill="#2f855a"))
        parts.append(_text(mid_x, mid_y + 17, f"{link.bandwidth_mbit} Mbit/s · {link.encryption}", 10,
                           anchor="middle", fill="#2f855a"))
        fy += height + 20
    return fy
