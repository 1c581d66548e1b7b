"""Ctrl-C for the whole `hcops` process: stop promptly, say "interrupted", exit 130, no traceback.

Some libraries swallow KeyboardInterrupt (Pulumi's mock runtime runs the program on asyncio
loops and worker threads, and an interrupt there could be ignored, hang until a second Ctrl-C, or
print pages of asyncio tracebacks). So the interrupt is not left to them:

* the first SIGINT prints "interrupted", silences stdout and stderr (a plan printed after the
  user pressed Ctrl-C would be a lie, and library tracebacks are noise), raises
  KeyboardInterrupt in the main thread so `finally` blocks and context managers run, and arms a
  watchdog that ends the process with 130 after `GRACE_S` whatever the libraries do;
* a second SIGINT ends the process at once;
* the handler is installed before the heavy imports (by `cli/__init__.py` when the `hcops`
  executable imports the package, and again by `cli.entry`), so Ctrl-C while Python is still
  importing typer, pydantic or Pulumi also ends cleanly. Only the interpreter's own start-up,
  before it runs any of hcops, is outside its reach.

Only stdlib imports here: this module runs before anything else of hcops is imported.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from types import FrameType

EXIT_INTERRUPTED = 130
GRACE_S = 1.5  # time for cleanup (locks, journals) before the watchdog ends the process

_interrupted = threading.Event()
_ready = threading.Event()  # set once the entry point can turn KeyboardInterrupt into exit 130


def ready() -> None:
    _ready.set()


def interrupted() -> bool:
    return _interrupted.is_set()


def _silence() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    except OSError:
        pass


def _watchdog() -> None:
    os._exit(EXIT_INTERRUPTED)


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if _interrupted.is_set():
        os._exit(EXIT_INTERRUPTED)
    _interrupted.set()
    with contextlib.suppress(OSError):
        os.write(2, b"interrupted\n")
    if not _ready.is_set():  # still importing: nothing to clean up, nobody to catch it
        os._exit(EXIT_INTERRUPTED)
    _silence()
    timer = threading.Timer(GRACE_S, _watchdog)
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt


def install() -> None:
    """Take over SIGINT for this process (SIGTERM keeps its default: end at once)."""
    signal.signal(signal.SIGINT, _on_sigint)


def finish(code: int) -> None:
    """End the process: 130 without waiting for library threads when interrupted."""
    if _interrupted.is_set():
        os._exit(EXIT_INTERRUPTED)
    raise SystemExit(code)
