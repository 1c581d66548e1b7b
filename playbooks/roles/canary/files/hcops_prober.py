#!/usr/bin/python3
"""hcops prober: probes each SLO's service through its real path at a fixed interval and keeps
the results, so availability can be measured independently of Zabbix.

Targets come from the model (inventories/probes.py): `http` (a GET of the VIP's health URL, 200
is up), `mysql` (a TLS write on the writable database host), `tcp` (a connect to any host).
Each probe appends `epoch<TAB>ok<TAB>ms<TAB>detail` to `<history>/<slo>/<YYYY-MM-DD>.tsv`,
flushed and fsynced, and replaces `<last>/<slo>.json` (`{"t", "ok", "ms"}`), which the Zabbix
agent reads for the burn-rate items. Runs on Debian's python3 (+ python3-pymysql).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pymysql

PROBE_TABLE = """CREATE TABLE IF NOT EXISTS canary_probe (
  prober VARCHAR(64) NOT NULL PRIMARY KEY,
  at DATETIME(6) NOT NULL
) ENGINE=InnoDB"""


def probe_http(target: dict[str, Any], ctx: ssl.SSLContext, timeout: float) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(target["url"], timeout=timeout, context=ctx) as answer:  # noqa: S310
            return answer.status == 200, str(answer.status)
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, str(getattr(exc, "reason", exc))[:200]


def probe_mysql(target: dict[str, Any], ctx: ssl.SSLContext, timeout: float, name: str) -> tuple[bool, str]:
    errors = []
    for address in target["addresses"]:
        try:
            conn = pymysql.connect(host=address, port=int(target["port"]), user=target["user"],
                                   password=target["password"], database=target["database"], ssl=ctx,
                                   connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)
        except pymysql.MySQLError as exc:
            errors.append(f"{address}: {exc.args[-1] if exc.args else exc}")
            continue
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@global.read_only")
                (read_only,) = cur.fetchone()
                if int(read_only):
                    errors.append(f"{address}: read-only")
                    continue
                cur.execute(PROBE_TABLE)
                cur.execute("REPLACE INTO canary_probe (prober, at) VALUES (%s, NOW(6))", (name,))
            conn.commit()
            return True, f"written on {address}"
        except pymysql.MySQLError as exc:
            errors.append(f"{address}: {exc.args[-1] if exc.args else exc}")
        finally:
            conn.close()
    return False, "; ".join(errors)[:200]


def probe_tcp(target: dict[str, Any], timeout: float) -> tuple[bool, str]:
    errors = []
    for address in target["addresses"]:
        try:
            with socket.create_connection((address, int(target["port"])), timeout=timeout):
                return True, address
        except OSError as exc:
            errors.append(f"{address}: {exc}")
    return False, "; ".join(errors)[:200]


class Prober:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.interval = float(cfg["interval_s"])
        self.timeout = min(5.0, self.interval / 2)
        self.ctx = ssl.create_default_context(cafile=cfg["ca"])
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(cfg["targets"])))
        self.last_prune = 0.0
        for target in cfg["targets"]:
            os.makedirs(os.path.join(cfg["history_dir"], target["slo"]), exist_ok=True)
        os.makedirs(cfg["last_dir"], exist_ok=True)

    def probe(self, target: dict[str, Any]) -> tuple[bool, float, str]:
        started = time.monotonic()
        if target["kind"] == "http":
            ok, detail = probe_http(target, self.ctx, self.timeout)
        elif target["kind"] == "mysql":
            ok, detail = probe_mysql(target, self.ctx, self.timeout, self.cfg["name"])
        else:
            ok, detail = probe_tcp(target, self.timeout)
        return ok, (time.monotonic() - started) * 1000, detail

    def record(self, slo: str, at: float, ok: bool, ms: float, detail: str) -> None:
        day = datetime.fromtimestamp(at, UTC).date().isoformat()
        clean = "" if ok else detail.replace("\t", " ").replace("\n", " ")
        line = f"{at:.3f}\t{1 if ok else 0}\t{ms:.1f}\t{clean}\n"
        path = os.path.join(self.cfg["history_dir"], slo, f"{day}.tsv")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        last = os.path.join(self.cfg["last_dir"], f"{slo}.json")
        tmp = last + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"t": round(at, 3), "ok": 1 if ok else 0, "ms": round(ms, 1)}, fh)
        os.chmod(tmp, 0o644)
        os.replace(tmp, last)

    def prune(self, now: float) -> None:
        if now - self.last_prune < 3600:
            return
        self.last_prune = now
        oldest = (datetime.fromtimestamp(now, UTC) - timedelta(days=int(self.cfg["retention_days"]))).date()
        for slo in os.listdir(self.cfg["history_dir"]):
            folder = os.path.join(self.cfg["history_dir"], slo)
            for name in os.listdir(folder):
                if name.endswith(".tsv") and name[:10] < oldest.isoformat():
                    os.unlink(os.path.join(folder, name))

    def tick(self) -> None:
        at = time.time()
        futures = [(t["slo"], self.pool.submit(self.probe, t)) for t in self.cfg["targets"]]
        for slo, future in futures:
            ok, ms, detail = future.result()
            self.record(slo, at, ok, ms, detail)
        self.prune(at)

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            self.tick()
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay < 0:  # a slow round: keep the grid, skip the missed slots
                next_at += -delay // self.interval * self.interval + self.interval
                delay = next_at - time.monotonic()
            self.stop.wait(max(0.0, delay))


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as fh:
        cfg = json.load(fh)
    prober = Prober(cfg)
    signal.signal(signal.SIGTERM, lambda *_: prober.stop.set())
    signal.signal(signal.SIGINT, lambda *_: prober.stop.set())
    prober.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
