"""Benchmark: the whole main job (`./run lab`), step by step, from a torn-down lab and again warm.

Runs, in one go on the same machine: `./run lab-down`, then `./run lab` with no lab (hosts,
bridges, SeaweedFS, Zabbix all built again; the caches under /var/cache/hcops kept: base image,
downloaded packages, the Zabbix database template), then `./run lab` again on the standing lab
(the rerun a newcomer does). `--from-nothing` also moves /var/cache/hcops aside first, so the first
run downloads and builds everything a fresh machine does; the cache it built is kept and the old one
removed (the standing lab's hosts are overlays of the new base image: putting the old cache back
under them once broke every host's Python, and the warm rerun with it).

Each run's steps are read from its own output (`==> N/12 title` ... `done in Ns`), so the table
shows what the job itself measured; the last column is the first run's time over the rerun's.
Goals (issue 14): under 20 minutes from nothing, under 5 minutes warm, on 2 cores.

    .venv/bin/python benchmarks/main_job.py [--from-nothing] [--keep-log DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("HCOPS_CACHE_DIR", "/var/cache/hcops"))
STEP = re.compile(r"==> (\d+)/(\d+) (.*)$")
DONE = re.compile(r"^\s+done in (\d+)s$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_job(label: str, log_dir: Path) -> tuple[float, int, list[tuple[str, int | None]]]:
    """`./run lab` once: wall time, exit code, (step title, seconds or None if it failed)."""
    log = log_dir / f"{label}.log"
    started = time.monotonic()
    with log.open("w") as fh:
        rc = subprocess.run([str(ROOT / "run"), "lab"], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                            check=False).returncode
    wall = time.monotonic() - started
    steps: list[tuple[str, int | None]] = []
    for raw in log.read_text(errors="replace").splitlines():
        line = ANSI.sub("", raw)
        if m := STEP.search(line):
            steps.append((m.group(3), None))
        elif (d := DONE.match(line)) and steps and steps[-1][1] is None:
            steps[-1] = (steps[-1][0], int(d.group(1)))
    print(f"{label}: exit {rc}, {wall / 60:.1f} min (log {log})", flush=True)
    return wall, rc, steps


def verdict(run: tuple[float, int, object], limit_s: float) -> str:
    """'met (4.7 min)' or 'NOT met (...)': a run that failed meets no goal, however quick."""
    wall, rc, _ = run
    met = rc == 0 and wall < limit_s
    return f"{'met' if met else 'NOT met'} ({wall / 60:.1f} min" + (f", exit {rc})" if rc else ")")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-nothing", action="store_true",
                        help="move the caches aside for the first run (downloads and builds everything)")
    parser.add_argument("--keep-log", type=Path, help="directory for the runs' logs (default: a temporary one)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("error: the main job needs root (it builds lab hosts)", file=sys.stderr)
        return 1
    log_dir = args.keep_log or Path(tempfile.mkdtemp(prefix="hcops-bench-main-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    down = subprocess.run([str(ROOT / "run"), "lab-down"], cwd=ROOT, capture_output=True, text=True, check=False)
    if down.returncode != 0:
        print(f"error: ./run lab-down failed: {down.stderr[-800:]}", file=sys.stderr)
        return 1
    aside = None
    if args.from_nothing and CACHE.exists():
        aside = CACHE.with_name(CACHE.name + ".bench-aside")
        CACHE.rename(aside)
    completed = False
    try:
        first = run_job("from-nothing" if args.from_nothing else "lab-down-then-lab", log_dir)
        completed = True
    finally:
        if aside is not None and not CACHE.exists():
            aside.rename(CACHE)
        elif aside is not None and completed:
            shutil.rmtree(aside, ignore_errors=True)  # the run built its own: the lab runs on it
    second = run_job("rerun-warm", log_dir)
    print()
    print(f"{'step':<70} {'first s':>8} {'rerun s':>8} {'ratio':>6}")
    titles = [t for t, _ in first[2]] or [t for t, _ in second[2]]
    again = dict(second[2])
    for title, secs in first[2]:
        other = again.get(title)
        ratio = f"{secs / other:.1f}x" if secs is not None and other else "-"
        print(f"{title[:70]:<70} {secs if secs is not None else 'FAIL':>8} "
              f"{other if other is not None else 'FAIL':>8} {ratio:>6}")
    if not titles:
        print("(no step lines were printed: see the logs)")
    whole = first[0] / second[0] if second[0] else 0.0
    print(f"{'whole run':<70} {first[0]:>8.0f} {second[0]:>8.0f} {whole:>5.1f}x")
    goal_first = 20 * 60 if args.from_nothing else None
    goals = [f"warm rerun under 5 min: {verdict(second, 300)}"]
    if goal_first:
        goals.append(f"from nothing under 20 min: {verdict(first, goal_first)}")
    print("goals: " + "; ".join(goals))
    return 0 if first[1] == 0 and second[1] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
