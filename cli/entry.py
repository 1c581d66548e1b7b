"""The `hcops` executable: take over Ctrl-C first, then import the (slow to import) CLI.

Kept to stdlib imports so that an interrupt during the imports of typer, pydantic or Pulumi is
already handled (exit 130, "interrupted", no traceback).
"""

from __future__ import annotations

import sys


def run() -> None:
    from cli import interrupts  # noqa: PLC0415 (stdlib only: installed before the heavy imports)

    interrupts.install()
    try:
        interrupts.ready()
        from cli.app import main  # noqa: PLC0415 (after the SIGINT handler, on purpose)

        code = main(sys.argv[1:])
    except KeyboardInterrupt:
        code = interrupts.EXIT_INTERRUPTED
    interrupts.finish(code)


if __name__ == "__main__":
    run()
