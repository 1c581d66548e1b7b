"""Offline preview of example-city: time and resource count (goal: under 10 s).

Runs the region program under Pulumi's mock runtime, as `hcops infra preview --offline` does,
and prints the time of each stage (model load, program run, policy checks, plan rendering),
the resource count, and ratios against the goal and against the same program on the small lab
region. The alternative a user would otherwise run, `pulumi preview` against a cloud, needs the
Pulumi CLI, its OpenStack plugin and cloud credentials; none exists here, so no figure for it is
invented: its engine start-up alone is typically seconds before the first API call.

    .venv/bin/python benchmarks/preview_offline.py [--runs N]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console

GOAL_S = 10.0
REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("HCOPS_STATE_DIR", tempfile.mkdtemp(prefix="hcops-bench-"))

    t0 = time.perf_counter()
    from infra.openstack import planview  # noqa: PLC0415  (import time is part of the first run)
    from infra.openstack.config import build_config  # noqa: PLC0415
    from infra.openstack.mocks import run_offline  # noqa: PLC0415
    from infra.openstack.policy import PolicyContext, check  # noqa: PLC0415
    from infra.openstack.stackfile import stack_values  # noqa: PLC0415
    from inventories.loader import load_region  # noqa: PLC0415
    import_s = time.perf_counter() - t0

    def one(region_ref: str) -> dict[str, float]:
        t = time.perf_counter()
        region = load_region(region_ref)
        t_load = time.perf_counter()
        cfg = build_config(region.name, stack_values(region.name), offline=True)  # strict: schema-checked
        plan = run_offline(region, cfg)
        t_run = time.perf_counter()
        findings = check(plan.graph, PolicyContext.from_region(region, cfg.encrypted_volume_types))
        t_policy = time.perf_counter()
        planview.render(Console(file=io.StringIO(), width=120), plan, region, findings)
        t_render = time.perf_counter()
        return {"load": t_load - t, "program": t_run - t_load, "policy": t_policy - t_run,
                "render": t_render - t_policy, "total": t_render - t,
                "resources": float(len(plan.graph.custom_resources())), "findings": float(len(findings)),
                "schema_findings": float(len(plan.schema_findings))}

    city = [one("example-city") for _ in range(args.runs)]
    tmp = Path(tempfile.mkdtemp(prefix="hcops-bench-lab-"))
    shutil.copytree(REPO / "inventories" / "lab", tmp / "lab")
    sites = tmp / "lab" / "sites.yml"
    sites.write_text(sites.read_text().replace("provider: lab", "provider: openstack"))
    lab = [one(str(tmp / "lab")) for _ in range(args.runs)]

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(f"offline preview, example-city ({args.runs} runs, median; imports once: {import_s:.2f} s)")
    for key in ("load", "program", "policy", "render", "total"):
        print(f"  {key:<8} {med(city, key):7.3f} s")
    n_city, n_lab = int(med(city, "resources")), int(med(lab, "resources"))
    total = med(city, "total")
    print(f"  resources {n_city}, policy findings {int(med(city, 'findings'))}, "
          f"schema findings {int(med(city, 'schema_findings'))}")
    print(f"  first run incl. imports: {import_s + city[0]['total']:.2f} s")
    print(f"  per resource: {total / n_city * 1000:.2f} ms")
    print(f"goal {GOAL_S:.0f} s: median total is {total / GOAL_S:.1%} of it ({GOAL_S / total:.0f}x headroom)")
    print(f"lab on OpenStack: {n_lab} resources in {med(lab, 'total'):.3f} s; "
          f"example-city has {n_city / n_lab:.1f}x the resources for {total / med(lab, 'total'):.1f}x the time")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
