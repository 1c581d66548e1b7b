"""Benchmark: how long the lab takes to build, from nothing and from the cached image.

Prints the base image build time (cold, only when the image is not cached yet, or with
`--cold` into a scratch cache dir), `up` of the 7-host lab from the cached image, and the no-op
second `up`, with the ratio of a cold build to a warm `up`. It builds a scratch copy of the lab
region on its own addresses (10.231.121/122.0/24), so a running shared lab is left alone, and
removes it at the end.

    .venv/bin/python benchmarks/lab_up.py [--cold]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.lab import image, ops
from infra.lab.layout import Layout
from inventories.loader import load_region
from tests.fixtures.lab import make_scratch_region


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true",
                        help="also build the base image from scratch in a temporary cache dir")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the lab benchmark needs root")
        return 1
    cold_s: float | None = None
    if args.cold:
        with tempfile.TemporaryDirectory(prefix="hcops-bench-cache-") as cache:
            previous = os.environ.get("HCOPS_CACHE_DIR")
            os.environ["HCOPS_CACHE_DIR"] = cache
            try:
                started = time.monotonic()
                image.ensure()
                cold_s = time.monotonic() - started
            finally:
                if previous is None:
                    del os.environ["HCOPS_CACHE_DIR"]
                else:
                    os.environ["HCOPS_CACHE_DIR"] = previous
    if not image.is_built():
        started = time.monotonic()
        image.ensure()
        cold_s = time.monotonic() - started
    with tempfile.TemporaryDirectory(prefix="hcops-bench-region-") as tmp:
        region = load_region(str(make_scratch_region(Path(tmp), "labbench", (121, 122))))
        layout = Layout(region)
        try:
            started = time.monotonic()
            ops.ensure_up(region)
            warm_s = time.monotonic() - started
            started = time.monotonic()
            changes = ops.ensure_up(region)
            noop_s = time.monotonic() - started
        finally:
            started = time.monotonic()
            ops.teardown(layout)
            down_s = time.monotonic() - started
    hosts = len(layout.hosts)
    cold = f"{cold_s:.1f} s" if cold_s is not None else "cached (run with --cold to measure)"
    print(f"base image build (debootstrap, cold):   {cold}")
    print(f"up, {hosts} hosts from the cached image:   {warm_s:.1f} s  (goal: < 60 s for 6 hosts)")
    print(f"second up (no-op, {len(changes)} changes):        {noop_s:.2f} s")
    print(f"down:                                   {down_s:.1f} s")
    if cold_s is not None:
        print(f"cold image build / warm up:             {cold_s / warm_s:.1f}x")
    print(f"warm up / no-op up:                     {warm_s / noop_s:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
