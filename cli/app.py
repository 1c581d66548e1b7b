"""The `hcops` command: a root with global options and one typer sub-app per noun.

`main()` builds the click tree once, applies the shared conventions of `cli.common.prepare`
(global options in any position, help without placeholders, examples) and maps every failure
to one exit code: 1 error, 64 usage, 130 interrupted. New nouns only need `app.add_typer`.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import PackageNotFoundError, version

import typer
from typer.exceptions import Abort, TyperException

from cli import (
    audit,
    availability,
    backup,
    deploy,
    drill,
    failover,
    infra,
    interrupts,
    inventory,
    lab,
    monitor,
    plan,
    summary,
)
from cli.common import (
    Exit,
    Options,
    OutputFormat,
    UsageError,
    examples,
    prepare,
    setup_logging,
    stderr,
)
from cli.entry import run as entry_run
from inventories.errors import HcopsError, RegionInvalid

EXIT_CODES_HELP = (
    "Exit codes: 0 success (plan commands: no changes); 1 error, with the reason on stderr; "
    "2 plan commands: changes pending; 64 command-line usage error; 130 interrupted."
)

app = typer.Typer(
    name="hcops",
    help="Provision, deploy and operate hybrid clouds for regional health platforms.\n\n"
    "Global options (-r/--region, -o/--output, -v/--verbose) may go anywhere on the command line.\n\n"
    + EXIT_CODES_HELP,
    epilog=examples("hcops inventory validate", "hcops inventory show lab -o json",
                    "hcops infra preview --region example-city --offline --summary"),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# One sub-app per noun; later nouns register here without touching the others.
app.add_typer(inventory.app, name="inventory")
app.add_typer(infra.app, name="infra")
app.add_typer(lab.app, name="lab")
app.add_typer(monitor.app, name="monitor")
app.command("deploy", epilog=deploy.EPILOG)(deploy.deploy)
app.add_typer(failover.app, name="failover")
app.add_typer(drill.app, name="drill")
app.add_typer(availability.app, name="availability")
app.add_typer(plan.app, name="plan")
app.add_typer(audit.app, name="audit")
app.add_typer(backup.app, name="backup")
app.command("summary", epilog=summary.EPILOG)(summary.summary_cmd)

GLOBAL_OPTIONS = ("region", "output", "verbose")


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
    region: str | None = typer.Option(None, "--region", "-r", metavar="REGION",
                                      help="Region name or directory, for every sub-command."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o", help="table (human) or json (machine)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logs on stderr; tracebacks on internal errors."),
    _show_version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                       help="Print the version and exit."),
) -> None:
    ctx.obj = Options(region=region, output=output, verbose=verbose)
    setup_logging(verbose)


_COMMAND: typer.core.TyperGroup | None = None


def command() -> typer.core.TyperGroup:
    """The prepared click tree (built once per process)."""
    global _COMMAND  # noqa: PLW0603 (a cache of an immutable-after-build tree)
    if _COMMAND is None:
        built = typer.main.get_command(app)
        assert isinstance(built, typer.core.TyperGroup)
        prepare(built, [p for p in built.params if p.name in GLOBAL_OPTIONS])
        _COMMAND = built
    return _COMMAND


def _print_error(exc: HcopsError) -> None:
    stderr.print(f"error: {exc.message}", style="bold red", markup=False, highlight=False, soft_wrap=True)
    if exc.hint:
        stderr.print(f"  fix: {exc.hint}", markup=False, highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn every user-facing failure into a message and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    before_dashes = args[: args.index("--")] if "--" in args else args
    verbose = "-v" in before_dashes or "--verbose" in before_dashes
    try:
        result = command().main(args=args, prog_name="hcops", standalone_mode=False)
        code = int(result) if isinstance(result, int) else 0
    except UsageError as exc:
        _print_error(exc)
        if exc.command:
            stderr.print(f"Try '{exc.command} -h' for help.", markup=False, highlight=False)
        code = Exit.USAGE
    except RegionInvalid as exc:
        stderr.print(exc.render(), markup=False, highlight=False, soft_wrap=True)
        stderr.print(f"error: {exc.message}", style="bold red", markup=False)
        code = Exit.ERROR
    except HcopsError as exc:
        _print_error(exc)
        code = Exit.ERROR
    except typer.Exit as exc:
        code = int(exc.exit_code)
    except SystemExit as exc:  # --install-completion and shell completion end this way
        code = exc.code if isinstance(exc.code, int) else Exit.ERROR
    except (Abort, KeyboardInterrupt):
        if not interrupts.interrupted():
            stderr.print("interrupted")
        code = Exit.INTERRUPTED
    except TyperException as exc:  # usage errors: unknown option, bad parameter value
        show = getattr(exc, "show", None)
        if callable(show):
            show(file=sys.stderr)
        else:
            stderr.print(f"usage error: {exc}")
        code = Exit.USAGE
    except Exception:
        if verbose:
            logging.getLogger("hcops").exception("internal error")
        else:
            stderr.print("internal error: this is a bug in hcops; rerun with --verbose for details",
                         style="bold red")
        code = Exit.ERROR
    return Exit.INTERRUPTED if interrupts.interrupted() else code


def run() -> None:
    entry_run()


if __name__ == "__main__":
    run()
