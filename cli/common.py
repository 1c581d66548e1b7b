"""What every `hcops` sub-app shares: global options, output, logging, exit codes, help style.

Data goes to stdout (a rich table or JSON); progress and logs go to stderr, so
`hcops ... --output json | jq` always sees clean JSON.

Conventions (a new sub-app `cli/<noun>.py`, registered with `app.add_typer` in `cli/app.py`,
inherits the automatic ones without any per-command work):

* **Global options anywhere.** `-r/--region`, `-o/--output` and `-v/--verbose` are accepted
  before the noun, between noun and verb, or after the verb: `prepare()` adds them to every
  command and group of the tree (automatic). Read them with `options(ctx)`, `is_json(ctx)`.
* **The region.** Every command that works on a region takes `region: str | None = REGION_OPTION`
  and calls `region_from(ctx, region)` (or `resolve_region_name`). The region is a name (looked
  up under `inventories/` and `HCOPS_INVENTORIES`) or a path to a directory (`.`, `../x`,
  `/abs`). There is no silent default: without one the command stops with a usage error (64)
  whose fix text is true for every command. `inventory` commands also take it positionally.
* **Usage errors exit 64.** Unknown options, bad choices, missing arguments (click) and
  anything a command finds wrong with its own command line: `raise usage_error(...)` (or
  `UsageError`). Validate arguments before any network call. Choices are Enums (click checks
  them), numbers get `min=`/`max=`, URLs go through `check_url`.
* **Help.** Flags show no `<bool>` placeholder, arguments are named as a person writes them
  (`REGION...`, `HOST`), string options show their own name (`--hosts HOSTS`), docstring
  paragraphs are reflowed to the terminal's width: automatic.
  Every option needs `help=`. End each command with examples:
  `@app.command(epilog=examples("hcops noun verb --region lab", ...))`; a command without one
  gets a plain generated example from its own required parameters.
* **Tables never cut.** Build tables with `table(...)`: every column folds instead of
  truncating, so nothing is lost at 80 columns or in a pipe. `plural(n, "host")` for counts.
* **Exit codes** (`Exit`): 0 ok / no changes, 1 error (message + `fix:` on stderr), 2 plan with
  changes, 64 usage, 130 interrupted (Ctrl-C is handled for the whole process, `cli.interrupts`).
* **Engines never print or prompt.** Ask for confirmation in the CLI (`confirm(...)`), pass the
  decision to the engine, render what it returns.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from typer.core import TyperArgument, TyperGroup, TyperOption

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
    """Global options from the root callback (or any later position), read by every sub-command."""

    region: str | None = None
    output: OutputFormat = OutputFormat.table
    verbose: bool = False


class UsageError(HcopsError):
    """The command line is wrong (a missing region, a bad value): exit 64, reason and fix on stderr."""

    def __init__(self, message: str, hint: str = "", command: str = "") -> None:
        super().__init__(message, hint)
        self.command = command


def usage_error(message: str, hint: str = "", ctx: typer.Context | None = None) -> UsageError:
    """Build a UsageError naming the command's help (`raise usage_error(...)`)."""
    return UsageError(message, hint, ctx.command_path if ctx is not None else "")


def options(ctx: typer.Context) -> Options:
    root = ctx.find_root()
    if not isinstance(root.obj, Options):
        root.obj = Options()
    return root.obj


REGION_HINT = ("name the region with --region REGION (anywhere on the command line): a region name "
               "such as lab or example-city, or a path to a region directory such as ./my-region")


def resolve_region_name(ctx: typer.Context, region: str | None) -> str:
    name = region or options(ctx).region
    if not name:
        raise usage_error("no region given", REGION_HINT, ctx)
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


REGION_OPTION = typer.Option(None, "--region", "-r", metavar="REGION",
                             help="Region name or directory (same as the global --region).")


# ---------------------------------------------------------------- small rendering helpers

def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 host`, `2 hosts`, `1 county`, `3 counties`."""
    if count == 1:
        return f"{count} {word}"
    if many is None:
        many = word[:-1] + "ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else word + "s"
    return f"{count} {many}"


def table(*columns: str, title: str | None = None, **kwargs: Any) -> Table:
    """A rich table whose cells fold instead of being cut with an ellipsis (80 columns, pipes)."""
    out = Table(title=title, **kwargs)
    for col in columns:
        out.add_column(col, overflow="fold")
    return out


def examples(*commands: str) -> str:
    """The epilog of a command's help: one example command per line."""
    return "\n".join(["Examples:", *(f"  $ {c}" for c in commands)])


def check_url(value: str | None, option: str = "--url") -> str | None:
    """A URL given on the command line: http(s), a host, parseable; else a usage error."""
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        raise UsageError(f"{option} {value!r} is not a valid URL: {exc}",
                         f"write {option} like http://10.231.2.13:8081/api_jsonrpc.php") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{option} {value!r} is not an http(s) URL with a host",
                         f"write {option} like http://10.231.2.13:8081/api_jsonrpc.php")
    return value


def confirm(question: str, yes: bool, what: str) -> bool:
    """The confirmation decision an engine takes as a parameter: --yes, or ask on a terminal."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise HcopsError(f"{what} needs confirmation",
                         "pass --yes (stdin is not a terminal, so hcops cannot ask)")
    return bool(typer.confirm(question, default=False))


# ---------------------------------------------------------------- the command tree

GLOBAL_PANEL = "Global options (anywhere on the line)"
GLOBAL_PREFIX = "global_"  # the copies' names: never the same as a command's own parameter


def _global_callback(ctx: Any, param: Any, value: Any) -> Any:
    """Store a global option given after a sub-command in the root's Options."""
    source = ctx.get_parameter_source(param.name)
    if value is None or getattr(source, "name", "") != "COMMANDLINE":
        return value
    opts = options(ctx)
    name = param.name.removeprefix(GLOBAL_PREFIX)
    if name == "output":
        opts.output = OutputFormat(value)
    elif name == "verbose" and value:
        opts.verbose = True
        setup_logging(True)
    elif name == "region":
        opts.region = str(value)
    return value


def _long_name(opt: TyperOption) -> str:
    longs = [o for o in opt.opts if o.startswith("--")]
    return longs[0][2:] if longs else opt.name or "value"


def _no_help_placeholder(cmd: Any) -> None:
    original = cmd.get_help_option

    def get_help_option(ctx: Any) -> Any:
        opt = original(ctx)
        if opt is not None:
            opt.metavar = ""
        return opt

    cmd.get_help_option = get_help_option


def _reflow(text: str) -> str:
    """Docstring paragraphs as paragraphs: the terminal wraps them, not the source's line breaks."""
    paragraphs = []
    for para in text.strip().split("\n\n"):
        lines = [ln.strip() for ln in para.strip().splitlines()]
        indented = any(ln.startswith("  ") for ln in para.splitlines()[1:])
        paragraphs.append(para.strip() if indented else " ".join(ln for ln in lines if ln))
    return "\n\n".join(paragraphs)


def _fix_help(cmd: Any) -> None:
    _no_help_placeholder(cmd)
    if cmd.help:
        cmd.help = _reflow(cmd.help)
    for param in cmd.params:
        if isinstance(param, TyperArgument) and param.metavar is None:
            name = (param.name or "value").upper().replace("_", "-")
            if param.nargs != 1:
                name = name.rstrip("S") if name.endswith("S") else name
                name += "..."
            param.metavar = name
        elif isinstance(param, TyperOption) and param.metavar is None:
            if param.is_flag or param.count:
                param.metavar = ""  # a flag takes no value: no `<bool>`
            elif param.type_descriptor.annotation in (str, list[str]) and not param.type_descriptor.is_choice:
                param.metavar = _long_name(param).upper()


def _example(path: str, cmd: Any) -> str:
    parts = [path]
    for param in cmd.params:
        if isinstance(param, TyperArgument) and param.required:
            parts.append(str(param.metavar or param.name).strip("[]").rstrip("."))
        elif isinstance(param, TyperOption) and param.required:
            parts += [param.opts[0], _long_name(param).upper()]
        elif isinstance(param, TyperOption) and param.name == "region":
            parts += ["--region", "lab"]
    return " ".join(parts)


def prepare(root: Any, global_params: Iterable[Any]) -> Any:
    """Apply the conventions above to a built click tree (called once per run by `cli.app`)."""
    templates = list(global_params)

    def visit(cmd: Any, path: str, is_root: bool) -> None:
        _fix_help(cmd)
        if not is_root:
            taken = {o for p in cmd.params for o in getattr(p, "opts", [])}
            for tpl in templates:
                if taken & set(tpl.opts):
                    continue  # the command has its own (e.g. REGION_OPTION); it still falls back
                param = copy.copy(tpl)
                param.name = GLOBAL_PREFIX + str(tpl.name)
                param.expose_value = False
                param.callback = _global_callback
                param.is_eager = False
                param.default = None if not param.is_flag else False
                param.show_default = False
                param.rich_help_panel = GLOBAL_PANEL
                cmd.params.append(param)
            if not cmd.epilog and not isinstance(cmd, TyperGroup):
                cmd.epilog = examples(_example(path, cmd))
        if isinstance(cmd, TyperGroup):
            for name, sub in cmd.commands.items():
                visit(sub, f"{path} {name}", False)

    visit(root, "hcops", True)
    return root


def walk(root: Any, path: str = "hcops") -> Iterable[tuple[str, Any]]:
    """Every command and group of the tree with its command path (for tests and docs)."""
    yield path, root
    if isinstance(root, TyperGroup):
        for name, sub in root.commands.items():
            yield from walk(sub, f"{path} {name}")

