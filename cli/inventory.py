"""`hcops inventory`: validate, show and draw region models.

These commands take the region positionally (`inventory show lab`, `inventory validate . ../x`)
or with the global `--region/-r` anywhere on the line, as every other command does.
"""

from __future__ import annotations

import shutil
import subprocess
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.tree import Tree

from cli.common import (
    emit_json,
    examples,
    is_json,
    options,
    plural,
    resolve_region_name,
    stderr,
    stdout,
    table,
    usage_error,
)
from inventories.describe import dot, graph_data, mermaid, summary
from inventories.errors import HcopsError, RegionInvalid
from inventories.loader import available_regions, load_region

app = typer.Typer(help="Validate, show and draw region models (inventories/<region>/).", no_args_is_help=True)

REGION_ARG_HELP = ("Region name (from inventories/ or HCOPS_INVENTORIES) or a path to a region directory "
                   "(., .., ./x, /abs); same as --region.")


def _one_region(ctx: typer.Context, region: str | None) -> str:
    given = options(ctx).region
    if region and given and region != given:
        raise usage_error(f"two regions given: {region!r} and --region {given!r}", "name one region", ctx)
    return resolve_region_name(ctx, region)


@app.command(epilog=examples("hcops inventory validate", "hcops inventory validate ./my-region lab -o json"))
def validate(
    ctx: typer.Context,
    regions: list[str] = typer.Argument(None, metavar="REGION...",
                                        help="Region names or directories; default: --region, else every "
                                             "shipped region."),
) -> None:
    """Check regions; report every problem with file, line, column, path and fix. Exit 1 if any is invalid."""
    given = options(ctx).region
    names = list(regions or ([given] if given else available_regions()))
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
                stderr.print(f"[red]✗[/] {name}: {plural(len(exc.errors), 'problem')}", soft_wrap=True)
            continue
        except HcopsError as exc:
            failed = True
            results.append({"region": name, "valid": False, "errors": [{"message": exc.message, "hint": exc.hint}]})
            if not is_json(ctx):
                stderr.print(f"[red]✗[/] {name}: {exc.message}", highlight=False, soft_wrap=True)
                stderr.print(f"    fix: {exc.hint}", markup=False, highlight=False, soft_wrap=True)
            continue
        totals = region.totals()
        results.append({"region": name, "valid": True, **totals, "sites": len(region.sites)})
        if not is_json(ctx):
            stdout.print(f"[green]✓[/] {name}: {plural(len(region.sites), 'site')}, "
                         f"{plural(totals['hosts'], 'host')}, {plural(len(region.services), 'service')}, "
                         f"{plural(len(region.counties), 'county')}", soft_wrap=True)
    if is_json(ctx):
        emit_json(results)
    if failed:
        raise typer.Exit(1)


@app.command(epilog=examples("hcops inventory show lab", "hcops inventory show example-city -o json | jq .totals"))
def show(ctx: typer.Context, region: str = typer.Argument(None, metavar="REGION", help=REGION_ARG_HELP)) -> None:
    """Show a region: sites, networks, hosts, services, SLOs (tree and tables; `-o json` for data)."""
    reg = load_region(_one_region(ctx, region))
    data = summary(reg)
    if is_json(ctx):
        emit_json(data)
        return
    totals = data["totals"]
    tree = Tree(f"[bold]{reg.name}[/] ({data['kind']}): {plural(totals['hosts'], 'host')}, "
                f"{totals['vcpu']} vCPU, {totals['ram_gb']} GB")
    for site_name, site in data["sites"].items():
        county = f", county {site['county']}" if site["county"] else ""
        branch = tree.add(f"[cyan]{site_name}[/] {site['kind']} via {site['provider']}{county}")
        for net, info in site["networks"].items():
            branch.add(f"net {net} {info['cidr']} ({info['purpose']})")
        for host, info in site["hosts"].items():
            addrs = ", ".join(info["addresses"].values())
            branch.add(f"[green]{host}[/] {addrs}: {', '.join(info['roles'])}")
    stdout.print(tree, soft_wrap=True)  # one line per item, never cut; a pipe gets whole lines
    services = table("service", "kind", "ports", "hosts", title="services")
    for name, svc in data["services"].items():
        services.add_row(name, svc["kind"], ", ".join(map(str, svc["ports"])),
                         ", ".join(f"{h}@{a}" for h, a in svc["hosts"].items()))
    stdout.print(services)
    slos = table("slo", "service", "target %", "window", "allowed downtime (min)", title="SLOs")
    for name, slo in data["slos"].items():
        slos.add_row(name, slo["service"], str(slo["target"]), slo["window"], str(slo["allowed_downtime_minutes"]))
    stdout.print(slos)


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"


def _render(exe: str, text: str, fmt: str, path: Path) -> None:
    proc = subprocess.run([exe, f"-T{fmt}", "-o", str(path)], input=text, text=True, capture_output=True,
                          check=False)
    if proc.returncode != 0:
        raise HcopsError(f"Graphviz could not write {path}: {proc.stderr.strip()}",
                         "check the output directory exists and is writable")
    stderr.print(f"wrote {path}", highlight=False)


@app.command(epilog=examples("hcops inventory graph lab --format mermaid",
                             "hcops inventory graph example-city --format dot --svg city.svg --png city.png",
                             "hcops inventory graph lab -o json"))
def graph(
    ctx: typer.Context,
    region: str = typer.Argument(None, metavar="REGION", help=REGION_ARG_HELP),
    fmt: GraphFormat = typer.Option(GraphFormat.mermaid, "--format", "-f",
                                    help="Text printed on stdout: mermaid or dot (`-o json`: nodes and edges)."),
    svg: Path | None = typer.Option(None, "--svg", metavar="FILE",
                                    help="Also draw the Graphviz picture as SVG (whatever --format; needs `dot`)."),
    png: Path | None = typer.Option(None, "--png", metavar="FILE",
                                    help="Also draw the Graphviz picture as PNG (needs `dot`)."),
) -> None:
    """Draw sites, networks, links and hosts as Mermaid or DOT text, or JSON; SVG/PNG with Graphviz."""
    reg = load_region(_one_region(ctx, region))
    if is_json(ctx):
        emit_json(graph_data(reg))
    else:
        print(mermaid(reg) if fmt is GraphFormat.mermaid else dot(reg), end="")
    if svg is None and png is None:
        return
    exe = shutil.which("dot")
    if exe is None:
        raise HcopsError("Graphviz is not installed, so no picture was drawn",
                         "apt-get install graphviz, or drop --svg/--png")
    drawing = dot(reg)
    for fmt_name, path in (("svg", svg), ("png", png)):
        if path is not None:
            _render(exe, drawing, fmt_name, path)
