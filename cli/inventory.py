"""`hcops inventory`: validate, show and draw region models."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.tree import Tree

from cli.common import Exit, emit_json, is_json, resolve_region_name, stderr, stdout
from inventories.describe import dot, mermaid, summary
from inventories.errors import HcopsError, RegionInvalid
from inventories.loader import available_regions, load_region

app = typer.Typer(help="Validate, show and draw region models (inventories/<region>/).", no_args_is_help=True)


@app.command()
def validate(
    ctx: typer.Context,
    regions: list[str] = typer.Argument(None, help="Region names or directories; default: every shipped region."),
) -> None:
    """Check regions; report every problem with file, line, column, path and fix. Exit 1 if any is invalid."""
    names = regions or available_regions()
    results: list[dict[str, Any]] = []
    failed = False
    for name in names:
        try:
            region = load_region(name)
        except RegionInvalid as exc:
            failed = True
            results.append({"region": name, "valid": False, "errors": [e.as_dict() for e in exc.errors]})
            if not is_json(ctx):
                stderr.print(exc.render(), markup=False, highlight=False, soft_wrap=True)
                stderr.print(f"[red]✗[/] {name}: {len(exc.errors)} problem(s)")
            continue
        except HcopsError as exc:
            failed = True
            results.append({"region": name, "valid": False, "errors": [{"message": exc.message, "hint": exc.hint}]})
            if not is_json(ctx):
                stderr.print(f"[red]✗[/] {name}: {exc.message}\n    fix: {exc.hint}", highlight=False)
            continue
        totals = region.totals()
        results.append({"region": name, "valid": True, **totals, "sites": len(region.sites)})
        if not is_json(ctx):
            stdout.print(f"[green]✓[/] {name}: {len(region.sites)} sites, {totals['hosts']} hosts, "
                         f"{len(region.services)} services, {len(region.counties)} counties")
    if is_json(ctx):
        emit_json(results)
    if failed:
        raise typer.Exit(Exit.ERROR)


@app.command()
def show(ctx: typer.Context, region: str = typer.Argument(None, help="Region name or directory.")) -> None:
    """Show a region: sites, networks, hosts, services, policies (tree; `--output json` for data)."""
    reg = load_region(resolve_region_name(ctx, region))
    data = summary(reg)
    if is_json(ctx):
        emit_json(data)
        return
    tree = Tree(f"[bold]{reg.name}[/] ({data['kind']}) — {data['totals']['hosts']} hosts, "
                f"{data['totals']['vcpu']} vCPU, {data['totals']['ram_gb']} GB")
    for site_name, site in data["sites"].items():
        county = f", county {site['county']}" if site["county"] else ""
        branch = tree.add(f"[cyan]{site_name}[/] {site['kind']} via {site['provider']}{county}")
        for net, info in site["networks"].items():
            branch.add(f"net {net} {info['cidr']} ({info['purpose']})")
        for host, info in site["hosts"].items():
            addrs = ", ".join(info["addresses"].values())
            branch.add(f"[green]{host}[/] {addrs} — {', '.join(info['roles'])}")
    stdout.print(tree)
    table = Table("service", "kind", "ports", "hosts", title="services")
    for name, svc in data["services"].items():
        table.add_row(name, svc["kind"], ",".join(map(str, svc["ports"])),
                      ", ".join(f"{h}@{a}" for h, a in svc["hosts"].items()))
    stdout.print(table)
    slos = Table("slo", "service", "target %", "window", "allowed downtime (min)", title="SLOs")
    for name, slo in data["slos"].items():
        slos.add_row(name, slo["service"], str(slo["target"]), slo["window"], str(slo["allowed_downtime_minutes"]))
    stdout.print(slos)


@app.command()
def graph(
    ctx: typer.Context,
    region: str = typer.Argument(None, help="Region name or directory."),
    fmt: str = typer.Option("mermaid", "--format", "-f", help="mermaid or dot."),
    svg: Path | None = typer.Option(None, "--svg", help="Also render an SVG here (needs Graphviz `dot`)."),
) -> None:
    """Draw sites, networks, links and hosts as Mermaid or DOT text (and SVG with Graphviz)."""
    if fmt not in ("mermaid", "dot"):
        raise HcopsError(f"unknown format {fmt!r}", "use --format mermaid or --format dot")
    reg = load_region(resolve_region_name(ctx, region))
    text = mermaid(reg) if fmt == "mermaid" else dot(reg)
    print(text, end="")
    if svg is not None:
        exe = shutil.which("dot")
        if exe is None:
            raise HcopsError("Graphviz is not installed, so no SVG was written",
                             "apt-get install graphviz, or drop --svg")
        proc = subprocess.run([exe, "-Tsvg", "-o", str(svg)], input=dot(reg), text=True,
                              capture_output=True, check=False)
        if proc.returncode != 0:
            raise HcopsError(f"Graphviz failed: {proc.stderr.strip()}", "check the output path is writable")
        stderr.print(f"wrote {svg}")
