"""Lay a `CountyPlan` out as HTML (printable, offline), Markdown (for wikis) or PDF.

The HTML carries its stylesheet and the topology SVG inline, so one file opens anywhere with
nothing fetched. The PDF is that HTML printed by headless Chromium (Debian's `chromium`), then
normalised so the same HTML gives the same PDF bytes (Chromium stamps the print time).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from infra.plans.document import CountyPlan, county_plan
from infra.plans.revision import ModelRevision, hcops_version, model_revision
from inventories.errors import HcopsError
from inventories.model import Region

TEMPLATES = Path(__file__).resolve().parent / "templates"
FORMATS = ("html", "md", "pdf")
DATE_NOTES = {"option": "given with --date", "commit": "date of the model's last commit",
              "file times": "newest model file; pass --date for a fixed cover date"}


def money(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}"


_BACKTICKS = re.compile(r"`([^`]+)`")


def inline_code(text: str) -> Markup:
    """Steps are written with `commands` in backticks (as Markdown shows them); HTML gets <code>."""
    return Markup(_BACKTICKS.sub(r"<code>\1</code>", str(escape(text))))  # noqa: S704 (escaped first)


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html.j2"]),
                      undefined=StrictUndefined, trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=True)
    env.globals["money"] = money
    env.filters["code"] = inline_code
    env.globals["css"] = (TEMPLATES / "style.css").read_text()
    return env


def render_html(plan: CountyPlan, env: Environment | None = None) -> str:
    env = env or environment()
    return env.get_template("plan.html.j2").render(p=plan, date_note=DATE_NOTES[plan.revision.date_source])


def render_md(plan: CountyPlan, svg_file: str, env: Environment | None = None) -> str:
    env = env or environment()
    return env.get_template("plan.md.j2").render(p=plan, svg_file=svg_file,
                                                 date_note=DATE_NOTES[plan.revision.date_source])


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise HcopsError("no headless Chromium to print the PDF with",
                     "apt-get install chromium (it is in deps/apt.txt), or use --format html|md")


def chromium_args(user_dir: str) -> list[str]:
    """Flags for a headless Chromium that touches no network and no profile of the user."""
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
            "--disable-default-apps", "--mute-audio", f"--user-data-dir={user_dir}"]


_PDF_DATE = re.compile(rb"\((D:\d{14}[^)]{0,7})\)")


def normalise_pdf(data: bytes, when: date) -> bytes:
    """Replace Chromium's print timestamps with the cover date, same length so offsets hold."""
    stamp = f"D:{when:%Y%m%d}000000"

    def fix(m: re.Match[bytes]) -> bytes:
        old = m.group(1)
        new = (stamp + "+00'00'")[: len(old)].ljust(len(old), "0").encode()
        return b"(" + new + b")"

    return _PDF_DATE.sub(fix, data)


def html_to_pdf(html_file: Path, pdf_file: Path, when: date, timeout: float = 120) -> None:
    with tempfile.TemporaryDirectory(prefix="hcops-chromium-") as profile:
        tmp = pdf_file.with_suffix(".pdf.tmp")
        cmd = chromium_args(profile) + ["--no-pdf-header-footer", f"--print-to-pdf={tmp}",
                                        html_file.resolve().as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                                  env={**os.environ, "HOME": profile})
        except subprocess.TimeoutExpired:
            raise HcopsError(f"Chromium did not print {html_file} within {timeout:.0f} s",
                             "retry on a less loaded machine, or use --format html") from None
        if proc.returncode != 0 or not tmp.exists():
            raise HcopsError(f"Chromium failed to print {html_file} (exit {proc.returncode}): "
                             f"{proc.stderr.strip()[-400:]}", "check that Debian's chromium package works headless")
        pdf_file.write_bytes(normalise_pdf(tmp.read_bytes(), when))
        tmp.unlink()


@dataclass
class Written:
    county: str
    files: list[Path]


def write_plan(plan: CountyPlan, out_dir: Path, formats: tuple[str, ...], env: Environment | None = None) -> Written:
    """Write the plan in each format under `out_dir`; returns the files written (in order)."""
    env = env or environment()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{plan.region}-{plan.county}"
    files: list[Path] = []
    html_file = out_dir / f"{stem}.html"
    if "html" in formats or "pdf" in formats:
        html_file.write_text(render_html(plan, env))
        if "html" in formats:
            files.append(html_file)
    if "md" in formats:
        svg = out_dir / f"{stem}-topology.svg"
        svg.write_text(plan.svg + "\n")
        md = out_dir / f"{stem}.md"
        md.write_text(render_md(plan, svg.name, env))
        files += [md, svg]
    if "pdf" in formats:
        pdf = out_dir / f"{stem}.pdf"
        html_to_pdf(html_file, pdf, plan.revision.date)
        files.append(pdf)
        if "html" not in formats:
            html_file.unlink()
    return Written(plan.county, files)


def write_index(*, region: str, description: str, version: str, revision: ModelRevision, currency: str,
                plans: list[tuple[CountyPlan, list[Path]]], out_dir: Path, env: Environment | None = None) -> Path:
    env = env or environment()
    rows = [(p, [f.name for f in files if not f.name.endswith(".svg")]) for p, files in plans]
    prices = [p.totals["price"] for p, _ in plans]
    totals = {
        "hosts": sum(len(p.hosts) for p, _ in plans),
        "items": sum(int(p.totals["items"] or 0) for p, _ in plans),
        "rack_units": sum(int(p.totals["rack_units"] or 0) for p, _ in plans),
        "power_w": sum(int(p.totals["power_w"] or 0) for p, _ in plans),
        "price": sum(float(x) for x in prices if x is not None) if all(x is not None for x in prices) else None,
        "checks": sum(len(p.checklist) for p, _ in plans),
    }
    index = out_dir / "index.html"
    index.write_text(env.get_template("index.html.j2").render(
        region=region, description=description, version=version, revision=revision, currency=currency,
        plans=rows, totals=totals))
    return index


@dataclass
class RenderResult:
    region: str
    revision: ModelRevision
    written: list[Written]
    index: Path | None

    @property
    def files(self) -> list[Path]:
        out = [f for w in self.written for f in w.files]
        return out + ([self.index] if self.index else [])


def run_render(region: Region, counties: list[str], formats: tuple[str, ...], out_dir: Path, *,
               explicit_date: date | None = None, with_index: bool = False) -> RenderResult:
    """The engine behind `hcops plan render`: one plan per county, and an index page for --all."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise HcopsError(f"unknown format(s) {', '.join(bad)}", f"use --format with one of: {', '.join(FORMATS)}")
    revision = model_revision(region, explicit_date)
    version = hcops_version()
    env = environment()
    plans = [county_plan(region, c, revision, version) for c in counties]  # all validated before writing
    written = [write_plan(p, out_dir, formats, env) for p in plans]
    index = None
    if with_index:
        index = write_index(region=region.name, description=region.spec.region.description, version=version,
                            revision=revision, currency=region.spec.region.currency,
                            plans=[(p, w.files) for p, w in zip(plans, written, strict=True)], out_dir=out_dir, env=env)
    return RenderResult(region.name, revision, written, index)
