"""Benchmark: first converge of a fresh lab region vs a no-change rerun of site.yml.

    .venv/bin/python benchmarks/deploy_converge.py            # builds a scratch lab, measures, removes it
    .venv/bin/python benchmarks/deploy_converge.py --region lab --rerun-only

The scratch region is a copy of the lab model on its own address range (10.231.111/112.0/24), so
the shared `lab` region is never touched. Goal: the rerun takes under 25% of the first converge
(idempotent roles that check before they change, no package index refresh within a day).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from infra.deploy import DeployResult, deploy_env, run_deploy  # noqa: E402
from inventories.loader import load_region  # noqa: E402
from tests.fixtures.lab import make_scratch_region  # noqa: E402

HCOPS = str(Path(sys.executable).parent / "hcops")


def deploy(region_ref: str) -> DeployResult:
    lines: list[str] = []
    result = run_deploy(load_region(region_ref), echo=lines.append)
    if result.exit_code() != 0:
        print("\n".join(lines[-40:]), file=sys.stderr)
        raise SystemExit(f"deploy failed on {region_ref}")
    return result


def deploy_with(region_ref: str, switch_off: str) -> DeployResult:
    """A deploy with one of hcops' speed-ups turned off (`HCOPS_FACT_CACHE`, `HCOPS_MITOGEN` = 0)."""
    os.environ[switch_off] = "0"
    try:
        return deploy(region_ref)
    finally:
        del os.environ[switch_off]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--region", help="an existing, provisioned region (default: a scratch copy of the lab)")
    ap.add_argument("--rerun-only", action="store_true", help="measure only the no-change rerun")
    ap.add_argument("--keep", action="store_true", help="keep the scratch region afterwards")
    ap.add_argument("--compare-fact-cache", action="store_true",
                    help="also time the rerun without the per-region fact cache (HCOPS_FACT_CACHE=0)")
    ap.add_argument("--compare-linear", action="store_true",
                    help="also time the rerun with Ansible's own linear strategy (HCOPS_MITOGEN=0)")
    args = ap.parse_args()

    scratch = None
    ref = args.region
    if ref is None:
        scratch = make_scratch_region(Path(tempfile.mkdtemp(prefix="hcops-bench-")), "bench", octets=(111, 112))
        ref = str(scratch)
        t0 = time.monotonic()
        subprocess.run([HCOPS, "infra", "up", "--region", ref, "--yes"], check=True, cwd=REPO)
        print(f"provision (infra up, scratch lab): {time.monotonic() - t0:7.1f} s")
    try:
        first = None
        if not args.rerun_only:
            first = deploy(ref)
            print(f"first converge:   {first.seconds:7.1f} s  changed={first.changed:4d} "
                  f"over {len(first.recap)} hosts")
        rerun = deploy(ref)
        strategy = deploy_env().get("ANSIBLE_STRATEGY", "linear")
        print(f"no-change rerun:  {rerun.seconds:7.1f} s  changed={rerun.changed:4d}  (fact cache warm, {strategy})")
        if args.compare_fact_cache:
            cold = deploy_with(ref, "HCOPS_FACT_CACHE")
            print(f"rerun, no cache:  {cold.seconds:7.1f} s  changed={cold.changed:4d}  "
                  f"(cache saves {1 - rerun.seconds / cold.seconds:.0%})")
        if args.compare_linear:
            plain = deploy_with(ref, "HCOPS_MITOGEN")
            print(f"rerun, linear:    {plain.seconds:7.1f} s  changed={plain.changed:4d}  "
                  f"(Mitogen's strategy {plain.seconds / rerun.seconds:.2f}x faster)")
        if first:
            ratio = rerun.seconds / first.seconds
            print(f"rerun / first:    {ratio:7.1%}  (goal < 25%: {'met' if ratio < 0.25 else 'NOT met'})")
    finally:
        if scratch is not None and not args.keep:
            subprocess.run([HCOPS, "infra", "destroy", "--region", ref, "--yes"], check=False, cwd=REPO)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
