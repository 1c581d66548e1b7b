#!/usr/bin/python3
"""hcops canary: writes a monotonically increasing sequence to the application database through
whichever server is writable now (read_only=OFF), reads each write back, and reports over HTTP the
last write the database acknowledged.

Failover drills read it to measure RTO (how long no write was acknowledged) and RPO (acknowledged
writes missing on the new primary). Runs on Debian's python3 with python3-pymysql; no other
dependency.

    GET /          JSON status (always 200 while the process lives)
    GET /health    200 when a write was acknowledged within `stale_after_s`, else 503
    GET /events?since=EPOCH   every write attempt since then (the last `events_kept`): its time,
                   sequence number, whether the database acknowledged the commit, where it went,
                   and the error; drills compute RTO and RPO from these
"""

from __future__ import annotations

import contextlib
import json
import signal
import ssl
import sys
import threading
import time
from collections import deque
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pymysql

SCHEMA = """CREATE TABLE IF NOT EXISTS canary_seq (
  writer VARCHAR(64) NOT NULL,
  seq BIGINT NOT NULL,
  written_at DATETIME(6) NOT NULL,
  PRIMARY KEY (writer, seq)
) ENGINE=InnoDB"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Canary:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.db = cfg["db"]
        self.name = cfg["host"]
        self.lock = threading.Lock()
        self.conn: pymysql.connections.Connection | None = None
        self.primary: str | None = None
        self.last_seq = 0
        self.last_ack: dict[str, Any] | None = None
        self.last_ack_mono = 0.0
        self.writes_ok = 0
        self.writes_failed = 0
        self.last_error: str | None = None
        self.started_at = now_iso()
        self.stop = threading.Event()
        self.events: deque[dict[str, Any]] = deque(maxlen=int(cfg.get("events_kept", 3600)))

    def _event(self, seq: int | None, acked: bool, ok: bool, error: str | None = None) -> None:
        with self.lock:
            self.events.append({"t": round(time.time(), 3), "seq": seq, "acked": acked, "ok": ok,
                                "primary": self.primary, "error": error})

    def events_since(self, since: float) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["t"] >= since]

    def _connect(self, host: str) -> pymysql.connections.Connection:
        ctx = ssl.create_default_context(cafile=self.db["ca"])
        return pymysql.connect(host=host, port=int(self.db["port"]), user=self.db["user"],
                               password=self.db["password"], database=self.db["name"],
                               connect_timeout=2, read_timeout=5, write_timeout=5,
                               ssl=ctx, autocommit=False)

    def _find_primary(self) -> None:
        errors = []
        for host in self.db["hosts"]:
            try:
                conn = self._connect(host)
                with conn.cursor() as cur:
                    cur.execute("SELECT @@global.read_only")
                    (read_only,) = cur.fetchone()
                if int(read_only) == 0:
                    with conn.cursor() as cur:
                        cur.execute(SCHEMA)
                        cur.execute("SELECT COALESCE(MAX(seq), 0) FROM canary_seq WHERE writer=%s", (self.name,))
                        (db_max,) = cur.fetchone()
                    conn.commit()
                    self.conn, self.primary = conn, host
                    # Never go backwards: after a lossy failover the gap shows the lost writes.
                    self.last_seq = max(self.last_seq, int(db_max))
                    return
                conn.close()
                errors.append(f"{host}: read-only")
            except pymysql.MySQLError as exc:
                errors.append(f"{host}: {exc}")
        raise RuntimeError("no writable database: " + "; ".join(errors))

    def tick(self) -> None:
        seq: int | None = None
        acked = False
        try:
            if self.conn is None:
                self._find_primary()
            assert self.conn is not None
            seq = self.last_seq + 1
            with self.conn.cursor() as cur:
                cur.execute("INSERT INTO canary_seq (writer, seq, written_at) VALUES (%s, %s, NOW(6))",
                            (self.name, seq))
            self.conn.commit()
            acked = True  # the database said committed: from here on losing it counts against RPO
            self.last_seq = seq
            with self.conn.cursor() as cur:
                cur.execute("SELECT MAX(seq) FROM canary_seq WHERE writer=%s", (self.name,))
                (back,) = cur.fetchone()
            if int(back) != seq:
                raise RuntimeError(f"read back {back} after writing {seq}")
            with self.lock:
                self.last_ack = {"seq": seq, "at": now_iso(), "primary": self.primary}
                self.last_ack_mono = time.monotonic()
                self.writes_ok += 1
                self.last_error = None
            self._event(seq, True, True)
        except (pymysql.MySQLError, RuntimeError, OSError) as exc:
            self._event(seq, acked, False, str(exc)[:200])
            with self.lock:
                self.writes_failed += 1
                self.last_error = f"{now_iso()} {exc}"
            if self.conn is not None:
                with contextlib.suppress(pymysql.MySQLError):
                    self.conn.close()
            self.conn, self.primary = None, None

    def run(self) -> None:
        interval = float(self.cfg["interval_s"])
        while not self.stop.is_set():
            started = time.monotonic()
            self.tick()
            self.stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def status(self) -> dict[str, Any]:
        with self.lock:
            age = time.monotonic() - self.last_ack_mono if self.last_ack else None
            return {
                "host": self.name,
                "primary": self.primary,
                "last_ack": self.last_ack,
                "last_ack_age_s": round(age, 3) if age is not None else None,
                "writes_ok": self.writes_ok,
                "writes_failed": self.writes_failed,
                "last_error": self.last_error,
                "interval_s": self.cfg["interval_s"],
                "started_at": self.started_at,
                "healthy": age is not None and age <= float(self.cfg["stale_after_s"]),
            }


def handler_for(canary: Canary) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "hcops-canary"
        sys_version = ""

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            status: Any = canary.status()
            if url.path in ("/", "/status"):
                code = 200
            elif url.path == "/events":
                try:
                    since = float(parse_qs(url.query).get("since", ["0"])[0])
                    code, status = 200, {"host": canary.name, "events": canary.events_since(since)}
                except ValueError:
                    code, status = 400, {"error": "since must be a UNIX time in seconds"}
            elif url.path == "/health":
                code = 200 if status["healthy"] else 503
            else:
                code, status = 404, {"error": "not found"}
            body = (json.dumps(status) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Served-By", canary.name)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # nginx keeps the access log; journald keeps ours quiet

    return Handler


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as fh:
        cfg = json.load(fh)
    canary = Canary(cfg)
    server = ThreadingHTTPServer((cfg["listen"], int(cfg["port"])), handler_for(canary))
    server.daemon_threads = True

    def _stop(*_: Any) -> None:
        canary.stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    writer = threading.Thread(target=canary.run, name="writer", daemon=True)
    writer.start()
    server.serve_forever()
    writer.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
