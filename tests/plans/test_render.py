"""County plans from the example region: every county renders in HTML, Markdown and PDF, with
every host and address, totals that add up, the same bytes twice, and a page Chromium draws."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from infra.plans.checklist import checklist
from infra.plans.render import chromium_args
from inventories.loader import load_region

DATE = "2026-12-01"


@pytest.fixture(scope="module")
def city():  # type: ignore[no-untyped-def]
    return load_region("example-city")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """`plan render --all` twice (html + md) into two directories."""
    from tests.conftest import make_runner

    mp = pytest.MonkeyPatch()
    run = make_runner(mp)
    dirs = []
    for n in (1, 2):
        out = tmp_path_factory.mktemp(f"plans{n}")
        res = run("plan", "render", "--region", "example-city", "--all", "-f", "html", "-f", "md",
                  "--out", str(out), "--date", DATE)
        assert res.code == 0, res.stderr
        dirs.append(out)
    mp.undo()
    return dirs[0], dirs[1]


def test_all_eighteen_counties_render_with_an_index(city, rendered) -> None:  # type: ignore[no-untyped-def]
    out, _ = rendered
    assert len(city.counties) == 18
    for county in city.counties:
        for suffix in (".html", ".md", "-topology.svg"):
            assert (out / f"example-city-{county}{suffix}").stat().st_size > 1000
    index = (out / "index.html").read_text()
    for county in city.counties:
        assert f'href="example-city-{county}.html"' in index and f'href="example-city-{county}.md"' in index
    assert "18 counties" in index


def test_same_model_same_bytes(rendered) -> None:  # type: ignore[no-untyped-def]
    a, b = rendered
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and len(names) == 18 * 3 + 1
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_every_host_address_network_and_link_of_the_county_is_in_its_plan(city, rendered) -> None:  # type: ignore[no-untyped-def]
    out, _ = rendered
    for county in city.counties:
        html = (out / f"example-city-{county}.html").read_text()
        md = (out / f"example-city-{county}.md").read_text()
        sites = city.county_sites(county)
        for site in sites:
            for net in city.sites[site].networks.values():
                assert str(net.cidr) in html and str(net.cidr) in md
                assert str(city.gateway(net)) in html
                assert f"<td>{net.vlan}</td>" in html
            for host, spec in city.sites[site].hosts.items():
                assert host in html and host in md
                for addr in spec.addresses.values():
                    assert str(addr) in html and str(addr) in md
        for name, link in city.links.items():
            if set(link.between) & set(sites):
                assert name in html and f"{link.bandwidth_mbit}" in html and link.encryption in html
        for item in checklist(city, county):
            assert f'<td class="id">{item.id}</td>' in html and f"`{item.id}`" in md
        # the other counties' ranges are listed as not to be used
        other = next(c for c in city.counties if c != county)
        other_net = next(iter(city.sites[city.county_sites(other)[0]].networks.values())).cidr
        assert re.search(rf"<code>{re.escape(str(other_net))}</code></td><td>[^<]*another site", html)


def test_a_county_behind_a_proxy_opens_the_proxy_flows_not_the_servers_polling(city, rendered) -> None:  # type: ignore[no-untyped-def]
    out, _ = rendered
    for county in city.counties:
        md = (out / f"example-city-{county}.md").read_text()
        proxy = city.zabbix_proxies[city.county_sites(county)[0]]
        agents = next(row for row in md.splitlines() if f"`({proxy.name} agents)`" in row)
        assert f"{proxy.host} {proxy.address} | 10051 | tcp" in agents
        upstream = next(row for row in md.splitlines() if f"`({proxy.name} to server)`" in row)
        assert f"| {proxy.host} | `{proxy.address}` | monitoring | zbx1 " in upstream
        assert "passive checks)" not in md  # the server polls no county agent across the line


def _money(v: float) -> str:
    return f"{v:,.0f}"


def test_bill_of_materials_totals_add_up(city, rendered) -> None:  # type: ignore[no-untyped-def]
    out, _ = rendered
    grand = 0.0
    for county in city.counties:
        (site,) = city.county_sites(county)
        lines = [(e.model, len(e.hosts) or e.quantity or 1) for e in city.spec.equipment[site].values()]
        hw = city.spec.hardware
        price = sum(hw[m].unit_price * q for m, q in lines)  # type: ignore[operator]
        units = sum(hw[m].rack_units * q for m, q in lines)
        items = sum(q for _, q in lines)
        grand += price
        html = (out / f"example-city-{county}.html").read_text()
        foot = html.split("<tfoot>")[1].split("</tfoot>")[0]
        assert f'<td class="num">{items}</td>' in foot
        assert f'<td class="num">{units}</td>' in foot
        assert f'<td class="num">{_money(price)}</td>' in foot
        assert f"{units} U used of 42 U" in html
    # 11 counties with one access switch, 7 with two: 116,700 and 123,200 CNY
    assert grand == 11 * 110200 + 7 * 116700
    assert _money(grand) in (out / "index.html").read_text()


def test_html_is_self_contained_offline(rendered) -> None:  # type: ignore[no-untyped-def]
    out, _ = rendered
    html = (out / "example-city-ruijin.html").read_text()
    assert "<svg" in html and "<style>" in html
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"' >]+)""", html)
    assert refs == []  # nothing loaded from anywhere: no scripts, images, stylesheets or fonts
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "`" not in html and "<code>hcops deploy --region example-city --limit ruijin-fe1</code>" in html


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def png_distinct_rows(path: Path) -> int:
    """How many different scanlines a PNG has (a blank page has one): decode IDAT, unfilter."""
    data = path.read_bytes()
    w, h = png_size(path)
    bpp = {2: 3, 6: 4}[data[25]]
    pos, idat = 8, b""
    while pos < len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        if data[pos + 4:pos + 8] == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    rows = set()
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.add(bytes(line))
        prev = line
    return len(rows)


needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed")


@needs_chromium
def test_headless_chromium_draws_the_plan(rendered, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, _ = rendered
    shot = tmp_path / "plan.png"
    profile = tmp_path / "profile"
    proc = subprocess.run(chromium_args(str(profile)) + [f"--screenshot={shot}", "--window-size=1280,1600",
                                                         (out / "example-city-ruijin.html").as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert png_size(shot) == (1280, 1600)
    assert png_distinct_rows(shot) > 300  # cover, tables and the topology: far from a blank page


@needs_chromium
def test_pdf_pages_via_pdftoppm(hcops, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = hcops("plan", "render", "--region", "example-city", "--county", "ruijin", "-f", "pdf",
                "--out", str(tmp_path), "--date", DATE)
    assert res.code == 0, res.stderr
    pdf = tmp_path / "example-city-ruijin.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert not (tmp_path / "example-city-ruijin.html").exists()  # only what was asked for
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    # cover, topology, hardware, network (2 pages of tables), steps and checklist
    assert len(pages) == 6, [p.name for p in pages]
    assert all(png_size(p)[0] in (248, 249) for p in pages)  # A4 portrait at 30 dpi
    first = pdf.read_bytes()
    res = hcops("plan", "render", "--region", "example-city", "--county", "ruijin", "-f", "pdf",
                "--out", str(tmp_path), "--date", DATE)
    assert pdf.read_bytes() == first  # the print timestamp is the cover date: same bytes


def test_markdown_links_its_topology(rendered) -> None:  # type: ignore[no-untyped-def]
    out, _ = rendered
    md = (out / "example-city-dayu.md").read_text()
    assert "![topology of county dayu](example-city-dayu-topology.svg)" in md
    svg = (out / "example-city-dayu-topology.svg").read_text()
    assert svg.startswith("<svg") and "dayu-fe1" in svg and "dayu-line" in svg and "city-fe1" in svg


def test_cover_carries_version_date_and_model_revision(city, rendered) -> None:  # type: ignore[no-untyped-def]
    from infra.plans.revision import model_revision

    out, _ = rendered
    html = (out / "example-city-zhanggong.html").read_text()
    rev = model_revision(city)
    assert rev.digest in html and f"<td>{DATE} " in html
    assert "Document version</th><td>" in html
