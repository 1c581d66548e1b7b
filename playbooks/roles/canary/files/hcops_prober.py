#!/usr/bin/python3
"""hcops prober: probes each SLO's service through its real path at a fixed interval and keeps
the results, so availability can be measured independently of Zabbix.

Targets come from the model (inventories/probes.py): `http` (a GET of the VIP's health URL, 200
is up), `mysql` (a TLS write on the writable database host), `tcp` (a connect to any host).
Each probe appends `epoch<TAB>ok<TAB>ms<TAB>detail` to `<history>/<slo>/<YYYY-MM-DD>.tsv`,
flushed and fsynced, and replaces `<last>/<slo>.json` (`{"t", "ok", "ms"}`), which the Zabbix
agent reads for the burn-rate items. Runs on Debian's python3 (+ python3-pymysql).

`hcops_prober.py --check CONFIG` (the hcops-slo-check timer) reads the same history and writes
`<state>/check.json`: per SLO the downtime and budget left in the SLO's current window and the
multi-window burn rates; `"exit": 3` when a budget is exhausted or a page-level burn is on (the
command exits 3 too). Zabbix reads the file (hcops monitor apply adds the item and trigger).
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

# The SRE workbook's multiwindow rules: (severity, long s, short s, factor); the same as
# dr/availability/burn.py WINDOWS (tests/availability checks that they agree).
WINDOWS = (("page", 3600, 300, 14.4), ("page", 21600, 1800, 6.0), ("ticket", 259200, 21600, 1.0))

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
    import pymysql  # noqa: PLC0415 (only the prober needs the driver; --check does not)

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


def window_start(window: str, now: datetime) -> datetime:
    month = {"month": now.month, "quarter": (now.month - 1) // 3 * 3 + 1, "year": 1}[window]
    return datetime(now.year, month, 1, tzinfo=UTC)


def read_day(path: str) -> list[tuple[float, bool]]:
    out = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                parts = line.split("\t")
                if len(parts) >= 2 and parts[1] in ("0", "1"):
                    out.append((float(parts[0]), parts[1] == "1"))
    except (OSError, ValueError):
        pass
    return out


def day_counts(cfg: dict[str, Any], slo: str, day: str, today: str) -> tuple[int, int]:
    """(probes, failed) of one day; past days are summarised once and cached."""
    cache = os.path.join(cfg["state_dir"], "summary", slo, f"{day}.json")
    if day < today and os.path.exists(cache):
        with open(cache, encoding="utf-8") as fh:
            data = json.load(fh)
        return int(data["count"]), int(data["bad"])
    rows = read_day(os.path.join(cfg["history_dir"], slo, f"{day}.tsv"))
    counts = (len(rows), sum(1 for _, ok in rows if not ok))
    if day < today:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        with open(cache, "w", encoding="utf-8") as fh:
            json.dump({"count": counts[0], "bad": counts[1]}, fh)
    return counts


def check(cfg: dict[str, Any], now: datetime) -> dict[str, Any]:
    interval = float(cfg["interval_s"])
    today = now.date().isoformat()
    result: dict[str, Any] = {"t": round(now.timestamp(), 3), "slos": {}}
    failing = False
    for target in cfg["targets"]:
        slo = target["slo"]
        start = window_start(target["window"], now)
        bad = count = 0
        day = start.date()
        while day <= now.date():
            c, b = day_counts(cfg, slo, day.isoformat(), today)
            count, bad = count + c, bad + b
            day += timedelta(days=1)
        downtime = bad * interval / 60
        recent: list[tuple[float, bool]] = []
        for back in range(3, -1, -1):
            recent += read_day(os.path.join(cfg["history_dir"], slo, f"{(now - timedelta(days=back)).date()}.tsv"))
        budget_ratio = (100.0 - float(target["target"])) / 100.0
        burns = []
        for severity, long_s, short_s, factor in WINDOWS:
            rates = []
            for seconds in (long_s, short_s):
                inside = [ok for t, ok in recent if now.timestamp() - seconds < t <= now.timestamp()]
                rates.append(None if not inside else (inside.count(False) / len(inside)) / budget_ratio)
            firing = all(r is not None and r >= factor for r in rates)
            burns.append({"severity": severity, "long_s": long_s, "short_s": short_s, "factor": factor,
                          "long": rates[0], "short": rates[1], "firing": firing})
            failing = failing or (firing and severity == "page")
        left = float(target["allowed_min"]) - downtime
        failing = failing or left < 0
        result["slos"][slo] = {"window": target["window"], "probes": count, "downtime_min": round(downtime, 2),
                               "budget_left_min": round(left, 2), "burn": burns}
    result["failing"] = failing
    result["exit"] = 3 if failing else 0
    return result


def run_check(cfg: dict[str, Any]) -> int:
    result = check(cfg, datetime.now(UTC))
    path = os.path.join(cfg["state_dir"], "check.json")
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    os.chmod(path + ".tmp", 0o644)
    os.replace(path + ".tmp", path)
    print(json.dumps({"failing": result["failing"]}))
    return int(result["exit"])


def main() -> int:
    if sys.argv[1] == "--check":
        with open(sys.argv[2], encoding="utf-8") as fh:
            return run_check(json.load(fh))
    with open(sys.argv[1], encoding="utf-8") as fh:
        cfg = json.load(fh)
    prober = Prober(cfg)
    signal.signal(signal.SIGTERM, lambda *_: prober.stop.set())
    signal.signal(signal.SIGINT, lambda *_: prober.stop.set())
    prober.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
