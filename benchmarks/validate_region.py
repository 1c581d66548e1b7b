"""Validation of a generated 10,000-host region: parse, schema, cross-checks (goal: under 1 s).

Beside it, in the same run on the same files, the naive approach a script would take:
`yaml.safe_load` with the pure-Python loader (no positions, no duplicate-key detection) plus the
same pydantic schema. The ratio says what position tracking and the cross-checks cost.

    .venv/bin/python benchmarks/validate_region.py [--hosts 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from inventories.loader import load_region, region_files
from inventories.schema import RegionSpec

COUNTIES_PER_FILE = 10


def generate(root: Path, hosts: int, per_site: int = 50) -> None:
    """A city-like region: one cloud site with the shared services, then county sites of
    `per_site` hosts each, ten sites to a file, every county linked to the cloud."""
    root.mkdir(parents=True)
    sites = max(1, hosts // per_site)
    (root / "region.yml").write_text(
        "region:\n  name: bench\n  kind: province\n  require_backup_for: [mysql]\n"
        "  admin_sources: [cloud.mgmt]\n"
        "sites:\n  cloud:\n    kind: public_cloud\n    provider: openstack\n    networks:\n"
        "      mgmt: {cidr: 10.0.0.0/24, purpose: mgmt}\n      db: {cidr: 10.0.1.0/24, purpose: db}\n"
        "    hosts:\n      db1: {roles: [mysql], flavor: m1.large, addresses: {mgmt: 10.0.0.10, db: 10.0.1.10}}\n"
        "      db2: {roles: [mysql], flavor: m1.large, addresses: {mgmt: 10.0.0.11, db: 10.0.1.11}}\n"
        "      bak: {flavor: m1.large, addresses: {mgmt: 10.0.0.12}}\n"
        "services:\n  db:\n    kind: mysql\n    primary: db1\n    replicas: [db2]\n"
        "backup_policies:\n  db-nightly:\n    service: db\n    schedule: '0 1 * * *'\n"
        "    local_target: {host: bak, path: /srv/backup}\n"
        "slos:\n  db:\n    service: db\n    target: 99.95\n"
    )
    for start in range(0, sites, COUNTIES_PER_FILE):
        lines = ["sites:"]
        links = ["links:"]
        for s in range(start, min(start + COUNTIES_PER_FILE, sites)):
            a, b = divmod(s + 1, 256)
            name = f"c{s:05d}"
            lines += [f"  {name}:", "    kind: county_hospital", f"    county: {name}", "    provider: openstack",
                      "    networks:", f"      lan: {{cidr: 10.{16 + a}.{b}.0/24, purpose: app}}", "    hosts:"]
            for h in range(per_site):
                lines += [f"      {name}-h{h:03d}:", "        roles: [app]",
                          "        size: {vcpu: 4, ram_gb: 8, disks_gb: [40]}",
                          f"        addresses: {{lan: 10.{16 + a}.{b}.{10 + h}}}"]
            links += [f"  {name}-line:", "    kind: dedicated_line", f"    between: [{name}, cloud]",
                      "    bandwidth_mbit: 100"]
        (root / f"counties-{start:05d}.yml").write_text("\n".join(lines + links) + "\n")


def timed(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def naive(root: Path) -> RegionSpec:
    merged: dict[str, dict] = {}  # type: ignore[type-arg]
    for file in region_files(root):
        for section, body in (yaml.load(file.read_text(), Loader=yaml.SafeLoader) or {}).items():
            if section == "region":
                merged["region"] = body
            else:
                merged.setdefault(section, {}).update(body)
    return RegionSpec.model_validate(merged)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        generate(root, args.hosts)
        size = sum(p.stat().st_size for p in root.iterdir())
        ours, region = timed(lambda: load_region(str(root)), args.repeat)
        base, _ = timed(lambda: naive(root), args.repeat)
        hosts = len(region.hosts)  # type: ignore[attr-defined]
        print(f"region: {hosts} hosts, {len(region.sites)} sites, {size / 1e6:.1f} MB of YAML")  # type: ignore[attr-defined]
        print(f"hcops load_region (schema + cross-checks; positions only re-read on error): {ours:.3f} s  (goal < 1 s)")
        print(f"naive pure-Python safe_load + schema (no positions, no checks): {base:.3f} s")
        print(f"ratio naive/hcops: {base / ours:.2f}x")


if __name__ == "__main__":
    main()
