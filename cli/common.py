"""What every `hcops` sub-app shares: global options, output, logging and exit codes.

Data goes to stdout (a rich table or JSON); progress and logs go to stderr, so
`hcops ... --output json | jq` always sees clean JSON.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from inventories.errors import HcopsError
from inventories.loader import load_region
from inventories.model import Region

stdout = Console()
stderr = Console(stderr=True)


class Exit(IntEnum):
    """Exit codes, as in Terraform's -detailed-exitcode where a plan is shown."""

    OK = 0  # success; for plan commands: no changes
    ERROR = 1  # bad input or a failed operation (message on stderr, no traceback)
    CHANGES = 2  # plan commands: changes are pending
    USAGE = 64  # the command line itself is wrong (unknown option, missing argument)
    INTERRUPTED = 130  # Ctrl-C


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


@dataclass
class Options:
    """Global options from the root callback, read by every sub-command."""

    region: str | None = None
    output: OutputFormat = OutputFormat.table
    verbose: bool = False


def options(ctx: typer.Context) -> Options:
    root = ctx.find_root()
    if not isinstance(root.obj, Options):
        root.obj = Options()
    return root.obj


def resolve_region_name(ctx: typer.Context, region: str | None) -> str:
    name = region or options(ctx).region
    if not name:
        raise HcopsError("no region given", "pass --region NAME (e.g. --region lab)")
    return name


def region_from(ctx: typer.Context, region: str | None) -> Region:
    return load_region(resolve_region_name(ctx, region))


def is_json(ctx: typer.Context) -> bool:
    return options(ctx).output is OutputFormat.json


def emit_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, nothing else."""
    print(json.dumps(data, indent=2, default=str, sort_keys=False))


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=stderr, show_path=False, show_time=verbose)],
        force=True,
    )


REGION_OPTION = typer.Option(None, "--region", "-r", help="Region name or directory (overrides the global --region).")
