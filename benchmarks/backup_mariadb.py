"""Benchmark: MariaDB physical backup (mariabackup, streamed through zstd + AES-256-GCM to the
local store) of a database of --gb gigabytes: throughput, and the write latency a canary sees
on the same server during the backup beside before it.

    .venv/bin/python benchmarks/backup_mariadb.py [--gb 2]

The server is a real MariaDB started on loopback for the run (as the tests' fixture does), on the
same 2 cores as the backup: the worst case for the canary (in the lab the backup is taken from
the replica, so the primary does not carry it at all).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dr.backup import mariadb as mdb  # noqa: E402
from dr.backup.catalog import Catalog  # noqa: E402
from dr.backup.keys import RegionKey  # noqa: E402
from dr.backup.pipeline import Context, run_backup  # noqa: E402
from dr.backup.stores import DirStore  # noqa: E402
from tests.backup.mariadb_server import Server  # noqa: E402

_SEQ = itertools.count(1)


def canary(srv: Server, stop: threading.Event, out: list[float]) -> None:
    # --unbuffered: the client answers each statement at once (on a pipe it would hold its output)
    p = subprocess.Popen(["mariadb", "--no-defaults", f"--socket={srv.sock}", "-uroot", "-N", "-B", "--unbuffered",
                          "canary"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    assert p.stdin and p.stdout
    while not stop.is_set():
        i = next(_SEQ)  # one sequence for every canary of the run (the table's key)
        t0 = time.monotonic()
        p.stdin.write(f"INSERT INTO seq VALUES ({i}, NOW(6)); SELECT {i};\n")
        p.stdin.flush()
        p.stdout.readline()
        out.append((time.monotonic() - t0) * 1000)
        time.sleep(0.1)
    p.stdin.close()
    p.wait()


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=2.0)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="hcops-bench-mariadb-", dir="/var/tmp"))
    os.environ["HCOPS_STATE_DIR"] = str(base / "state")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (base / "srv").mkdir()  # the server writes its key file there before it creates the data directory
    srv = Server(base / "srv", port)
    srv.start()
    try:
        t0 = time.monotonic()
        srv.sql("CREATE DATABASE emr; CREATE TABLE emr.docs (id BIGINT AUTO_INCREMENT PRIMARY KEY, body TEXT) "
                "ENGINE=InnoDB; CREATE DATABASE canary; CREATE TABLE canary.seq (n INT PRIMARY KEY, at DATETIME(6))")
        srv.sql("INSERT INTO emr.docs (body) SELECT REPEAT(MD5(RAND()), 30) FROM emr.seq_1_to_10000")
        target = args.gb * (1 << 30)
        while True:
            size = int(srv.sql("SELECT data_length FROM information_schema.tables WHERE table_name='docs'"))
            if size >= target:
                break
            rows = int(srv.sql("SELECT COUNT(*) FROM emr.docs"))
            need = min(rows, int((target - size) / 1000) + 1000)
            srv.sql(f"INSERT INTO emr.docs (body) SELECT REPEAT(MD5(RAND()), 30) FROM emr.docs LIMIT {need}")
        print(f"database: {size / (1 << 30):.2f} GiB in emr.docs, built in {time.monotonic() - t0:.0f} s")

        lat_before: list[float] = []
        stop = threading.Event()
        th = threading.Thread(target=canary, args=(srv, stop, lat_before))
        th.start()
        time.sleep(10)
        stop.set()
        th.join()

        key = RegionKey("bench", os.urandom(32))
        cat = Catalog(base / "catalog.db")
        ctx = Context(region="bench", policy="db", key=key, local=DirStore(base / "store"), offsite=None,
                      catalog=cat)
        lat_during: list[float] = []
        stop = threading.Event()
        th = threading.Thread(target=canary, args=(srv, stop, lat_during))
        th.start()
        r = run_backup(ctx, mdb.PhysicalSource(mdb.LOCAL, "emr", client_opts=srv.opts, host="bench"))
        stop.set()
        th.join()
        assert r.ok, r.error
        mib = r.plain_bytes / (1 << 20)
        print(f"mariabackup full: read {mib:,.0f} MiB, stored {r.stored_bytes / (1 << 20):,.0f} MiB "
              f"(zstd+AES-GCM), {r.seconds:.1f} s = {mib / r.seconds:,.1f} MiB/s")
        print(f"canary write latency before: p50 {statistics.median(lat_before):.1f} ms, "
              f"p99 {pct(lat_before, 0.99):.1f} ms ({len(lat_before)} writes)")
        print(f"canary write latency during: p50 {statistics.median(lat_during):.1f} ms, "
              f"p99 {pct(lat_during, 0.99):.1f} ms ({len(lat_during)} writes); p99 ratio "
              f"{pct(lat_during, 0.99) / pct(lat_before, 0.99):.1f}x")
        t0 = time.monotonic()
        subprocess.run(["sh", "-c", f"mariabackup --backup {srv.opts} --stream=mbstream --target-dir={base}/t "
                        f"| zstd -q -3 > {base}/plain.zst"], check=True, capture_output=True)
        plain = time.monotonic() - t0
        print(f"mariabackup | zstd -3 to a file (no encryption, no checksums): {plain:.1f} s; hcops/plain time "
              f"ratio {r.seconds / plain:.2f}")
        cat.close()
    finally:
        srv.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
