"""Ctrl-C during `hcops infra preview --region example-city --offline`, N times (default 20).

Each try starts the real `hcops` executable, sends SIGINT after a delay spread over the run
(from the first moments, while Python still imports, to the middle of the mock Pulumi run),
and records how the process ended: exit code, seconds from the signal to the exit, whether
stderr said "interrupted", and whether a traceback or a plan leaked out. The issue's goal:
every try exits 130, promptly, with "interrupted" and no traceback.

    .venv/bin/python benchmarks/ctrl_c_preview.py [--tries 20] [--spread 3.0]
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HCOPS = Path(sys.executable).parent / "hcops"
ARGS = ["infra", "preview", "--region", "example-city", "--offline"]


@dataclass
class Try:
    delay: float
    code: int | None
    seconds_to_exit: float
    said_interrupted: bool
    traceback: bool
    plan_printed: bool

    @property
    def good(self) -> bool:
        return (self.code == 130 and self.said_interrupted and not self.traceback and not self.plan_printed
                and self.seconds_to_exit < 3.0)

    @property
    def before_hcops(self) -> bool:
        """Ended inside the interpreter's own start-up, before any hcops code ran: killed by the
        signal (a shell shows 130) or Python's KeyboardInterrupt from `site`."""
        return not self.said_interrupted and (self.code == -signal.SIGINT or (self.code == 1 and self.traceback))


def one(delay: float, hang_after: float = 20.0) -> Try:
    proc = subprocess.Popen([str(HCOPS), *ARGS], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "100"})
    time.sleep(delay)
    sent = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=hang_after)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        code = None  # a hang
    took = time.monotonic() - sent
    text_err, text_out = err.decode(errors="replace"), out.decode(errors="replace")
    return Try(delay, code, took, "interrupted" in text_err, "Traceback" in text_err + text_out,
               "resources to create" in text_out)


def run(tries: int, spread: float) -> list[Try]:
    results = []
    for i in range(tries):
        delay = 0.05 + spread * i / max(1, tries - 1)
        results.append(one(delay))
        r = results[-1]
        print(f"try {i + 1:2d}: SIGINT after {delay:4.2f} s -> exit {r.code}, {r.seconds_to_exit:4.2f} s later, "
              f"interrupted={r.said_interrupted} traceback={r.traceback} plan={r.plan_printed}", flush=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tries", type=int, default=20)
    ap.add_argument("--spread", type=float, default=3.0, help="last delay in seconds (first is 0.05)")
    ns = ap.parse_args()
    results = run(ns.tries, ns.spread)
    codes = collections.Counter("hang" if r.code is None else r.code for r in results)
    worst = max(r.seconds_to_exit for r in results)
    early = [r for r in results if r.before_hcops]
    print(f"\n{len(results)} tries: exit codes {dict(codes)}; good {sum(r.good for r in results)}; "
          f"in the interpreter's start-up before hcops ran {len(early)} "
          f"(latest at {max((r.delay for r in early), default=0):.2f} s); "
          f"tracebacks {sum(r.traceback for r in results)}; plans printed {sum(r.plan_printed for r in results)}; "
          f"slowest exit after SIGINT {worst:.2f} s")
    return 0 if all(r.good or r.before_hcops for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
