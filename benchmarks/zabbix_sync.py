"""Benchmark: syncing a generated 10,000-host region into a real Zabbix 6.0.

Prints the first apply time, the unchanged re-plan time and its API call count (goal: at most
20 calls and under 10 s), beside what users would otherwise script: a naive loop that asks
Zabbix about each host in turn (`host.get` per host, compare, `host.update` when it differs),
run in the same session against the same server, with the ratio.

    .venv/bin/python benchmarks/zabbix_sync.py [--hosts 10000] [--naive-hosts N]

The region is generated into a temp directory: 18 county hospital sites (the Jiangxi city's
counties) plus a cloud site, hosts spread over them with app, database and proxy roles, two
SLOs. Zabbix runs from the test fixture (tests/fixtures/zabbix.py): its own MariaDB and PHP's
built-in server on loopback; no agent is contacted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from inventories.loader import load_region  # noqa: E402
from inventories.model import Region  # noqa: E402
from monitoring.actual import HOST_QUERY, host_from_row  # noqa: E402
from monitoring.apply import chunk_size  # noqa: E402
from monitoring.client import Connection, ZabbixClient  # noqa: E402
from monitoring.desired import desired_state  # noqa: E402
from monitoring.diff import field_changes  # noqa: E402
from monitoring.sync import apply_planned, plan_region  # noqa: E402
from tests.fixtures.zabbix import ZabbixTestServer, role_php_settings  # noqa: E402

COUNTIES = ["zhanggong", "nankang", "ganxian", "xinfeng", "dayu", "shangyou", "chongyi", "anyuan", "longnan",
            "dingnan", "quannan", "ningdu", "yudu", "xingguo", "huichang", "xunwu", "shicheng", "ruijin"]


def generate_region(root: Path, hosts: int) -> Path:
    """Write a valid region of `hosts` hosts; returns its directory."""
    root.mkdir(parents=True, exist_ok=True)
    per_site = -(-(hosts - 6) // len(COUNTIES))
    lines = ["sites:"]
    made = 0
    for index, county in enumerate(COUNTIES):
        third = 4 * (index + 1)  # a /22 per county: 10.231.4.0/22, 10.231.8.0/22, ...
        lines += [f"  {county}-dc:", "    kind: county_hospital", f"    county: {county}", "    provider: openstack",
                  "    networks:", f"      lan: {{cidr: 10.231.{third}.0/22, purpose: app}}"]
        count = max(min(per_site, hosts - 6 - made), 0)
        lines.append("    hosts:" if count else "    hosts: {}")
        for n in range(count):
            role = "mysql" if n % 10 == 0 else ("nginx" if n % 25 == 1 else "app")
            addr = f"10.231.{third + (n + 10) // 256}.{(n + 10) % 256}"
            lines += [f"      {county}-{role}-{n:04d}:", f"        roles: [{role}]", "        flavor: m1.small",
                      f"        addresses: {{lan: {addr}}}"]
            made += 1
    lines += ["  cloud:", "    kind: public_cloud", "    provider: openstack", "    networks:",
              "      vpc: {cidr: 10.231.200.0/24, purpose: app}", "    hosts:"]
    for name, addr in (("app1", 10), ("app2", 11), ("db1", 12), ("db2", 13), ("zbx1", 14), ("proxy1", 15)):
        lines += [f"      {name}:", "        flavor: m1.large", f"        addresses: {{vpc: 10.231.200.{addr}}}"]
    (root / "sites.yml").write_text("\n".join(lines) + "\n")
    (root / "region.yml").write_text(
        "region:\n  name: bench\n  kind: city\n  require_backup_for: []\n")
    (root / "services.yml").write_text("""services:
  appdb: {kind: mysql, primary: db1, replicas: [db2]}
  canary: {kind: canary, hosts: [app1, app2], database: appdb}
  front:
    kind: nginx
    hosts: [proxy1]
    vip: 10.231.200.100
    listeners: [{port: 443, protocol: https, pool: canary}]
    pools: {canary: {service: canary}}
  monitoring: {kind: zabbix, server: zbx1}
slos:
  platform: {service: front, target: 99.95, window: month}
  records-db: {service: appdb, target: 99.95, window: year}
""")
    # the model refuses a replica that no rule lets reach its primary (replication on 3306)
    (root / "security.yml").write_text("rules:\n  app-to-db: {from: cloud.vpc, to: appdb}\n")
    return root


def php_peak_mb(port: int) -> str:
    """Peak resident memory (VmHWM) of the PHP processes serving the test frontend."""
    peaks = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if not cmdline.startswith("php ") or f"127.0.0.1:{port}" not in cmdline:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) // 1024)
        except OSError:
            continue
    return f"{max(peaks)} MB (of {len(peaks)} processes)" if peaks else "n/a"


def naive_replan(client: ZabbixClient, region: Region, limit: int) -> int:
    """What a hand-written sync does: one host.get per model host, update only if it differs."""
    desired = desired_state(region)
    updates = 0
    for name, want in list(desired.objects["host"].items())[:limit]:
        rows = client.call("host.get", {**HOST_QUERY, "filter": {"host": name}})
        if not rows or field_changes(want, host_from_row(rows[0])):
            updates += 1  # (would call host.update; an unchanged region never gets here)
    return updates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--naive-hosts", type=int, default=0,
                        help="run the naive loop over only this many hosts and scale (0: all hosts)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="hcops-zbxbench-"))  # region + PSKs: removed at the end
    try:
        return _run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, tmp: Path) -> int:
    os.environ["HCOPS_STATE_DIR"] = str(tmp / "state")
    region_dir = generate_region(tmp / "regions" / "bench", args.hosts)
    region = load_region(str(region_dir))
    print(f"region: {len(region.hosts)} hosts in {len(region.sites)} sites, {len(region.slos)} SLOs "
          f"(generated in {region_dir})")

    server = ZabbixTestServer()
    started = time.perf_counter()
    server.start()
    print(f"zabbix 6.0 test server up in {time.perf_counter() - started:.1f} s ({'; '.join(server.log)})")
    limits = role_php_settings()
    print("PHP as the zabbix_server role configures the frontend: "
          + ", ".join(f"{k}={v}" for k, v in limits.items()) + f"; hosts per request: {chunk_size('host')}, "
          f"other objects per request: {chunk_size('trigger')}")
    conn = Connection(server.url, token=server.token, source="benchmark", timeout=3600, retries=0)
    try:
        client = ZabbixClient.connect(conn)
        t0 = time.perf_counter()
        planned = plan_region(client, region)
        counts = planned.plan.counts()
        result = apply_planned(client, planned)
        first = time.perf_counter() - t0
        print(f"first apply: {result.applied} changes ({counts['create']} creates) in {first:.1f} s, "
              f"{client.total_calls} API calls; PHP peak RSS per worker {php_peak_mb(server.port)}")

        t0 = time.perf_counter()
        client = ZabbixClient.connect(conn)  # a fresh run of `hcops monitor plan`: connect counts too
        replan = plan_region(client, region)
        replan_s = time.perf_counter() - t0
        replan_calls = client.total_calls
        ok = replan.plan.empty and replan_calls <= 20 and replan_s < 10
        print(f"unchanged re-plan: {len(replan.plan.changes)} changes, {replan_s:.2f} s, {replan_calls} API calls "
              f"({dict(client.calls)}) -> goal <= 20 calls and < 10 s: {'MET' if ok else 'NOT MET'}")

        naive_client = ZabbixClient.connect(conn)
        sample = args.naive_hosts or len(region.hosts)
        t0 = time.perf_counter()
        updates = naive_replan(naive_client, region, sample)
        naive_s = (time.perf_counter() - t0) * len(region.hosts) / sample
        naive_calls = naive_client.total_calls * len(region.hosts) // sample
        scaled = "" if sample == len(region.hosts) else f" (measured on {sample} hosts, scaled)"
        print(f"naive per-host loop: {naive_s:.1f} s, {naive_calls} API calls, {updates} updates{scaled}")
        print(f"ratio naive/hcops: time x{naive_s / replan_s:.1f}, calls x{naive_calls / replan_calls:.0f}")
        return 0 if ok else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
