"""The `hcops` command: a root with global options and one typer sub-app per noun."""

from __future__ import annotations

import logging
import sys
from importlib.metadata import PackageNotFoundError, version

import typer
from typer.exceptions import Abort, TyperException

from cli import deploy, infra, inventory, lab, monitor
from cli.common import Exit, Options, OutputFormat, setup_logging, stderr
from inventories.errors import HcopsError, RegionInvalid

EXIT_CODES_HELP = (
    "Exit codes: 0 success (plan commands: no changes); 1 error, with the reason on stderr; "
    "2 plan commands: changes pending; 64 command-line usage error; 130 interrupted."
)

app = typer.Typer(
    name="hcops",
    help="Provision, deploy and operate hybrid clouds for regional health platforms.\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# One sub-app per noun; later nouns register here without touching the others.
app.add_typer(inventory.app, name="inventory")
app.add_typer(infra.app, name="infra")
app.add_typer(lab.app, name="lab")
app.add_typer(monitor.app, name="monitor")
app.add_typer(deploy.app, name="deploy")


def _version() -> str:
    try:
        return version("hcops")
    except PackageNotFoundError:  # running from a checkout without install
        return "0+unknown"


def _version_callback(value: bool) -> None:
    if value:
        print(f"hcops {_version()}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    region: str | None = typer.Option(None, "--region", "-r", help="Default region for sub-commands."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o", help="table (human) or json (machine)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logs on stderr; tracebacks on internal errors."),
    _show_version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                       help="Print the version and exit."),
) -> None:
    ctx.obj = Options(region=region, output=output, verbose=verbose)
    setup_logging(verbose)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn every user-facing failure into a message and an exit code."""
    verbose = "-v" in (argv or sys.argv) or "--verbose" in (argv or sys.argv)
    try:
        result = app(args=argv, standalone_mode=False)
        return int(result) if isinstance(result, int) else 0
    except RegionInvalid as exc:
        stderr.print(exc.render(), markup=False, highlight=False, soft_wrap=True)
        stderr.print(f"error: {exc.message}", style="bold red", markup=False)
        return Exit.ERROR
    except HcopsError as exc:
        stderr.print(f"error: {exc.message}", style="bold red", markup=False, highlight=False, soft_wrap=True)
        if exc.hint:
            stderr.print(f"  fix: {exc.hint}", markup=False, highlight=False, soft_wrap=True)
        return Exit.ERROR
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (Abort, KeyboardInterrupt):
        stderr.print("interrupted")
        return Exit.INTERRUPTED
    except TyperException as exc:  # usage errors: unknown option, bad parameter value
        show = getattr(exc, "show", None)
        if callable(show):
            show(file=sys.stderr)
        else:
            stderr.print(f"usage error: {exc}")
        return Exit.USAGE
    except Exception:
        if verbose:
            logging.getLogger("hcops").exception("internal error")
        else:
            stderr.print("internal error: this is a bug in hcops; rerun with --verbose for details",
                         style="bold red")
        return Exit.ERROR


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
