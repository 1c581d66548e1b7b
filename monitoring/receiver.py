"""A small alert receiver: records every page the Zabbix webhook posts, one JSON line each.

It stands in for the SMS / WeChat Work / DingTalk gateway hospitals use, so the lab can prove
that a problem reaches on-call and its recovery follows. Standard library only, so it runs on
any lab host as it is:

    python3 receiver.py --listen 127.0.0.1:8025 --out /var/lib/hcops-alerts/alerts.jsonl

Each line is the posted JSON document (`to`, `subject`, `message`, `event_id`, `event_value`
1 problem / 0 recovery, `severity`, `host`, `trigger`) plus `received_at` (UTC, ISO 8601). A
body that is not JSON is answered 400 and recorded under `invalid`, so a broken media type
shows as a failed alert in Zabbix, never as silence.
"""

from __future__ import annotations

import argparse
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()
MAX_BODY = 64 * 1024


def record(out: Path, entry: dict[str, Any]) -> None:
    with _LOCK, out.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")


def read_alerts(text: str) -> list[dict[str, Any]]:
    """The recorded alerts of a receiver's output file (as text), oldest first."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def make_server(listen: str, out: Path) -> ThreadingHTTPServer:
    host, _, port = listen.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_error(413)
                return
            raw = self.rfile.read(length)
            now = datetime.now(UTC).isoformat()
            try:
                entry = json.loads(raw)
                if not isinstance(entry, dict):
                    raise ValueError("not an object")
            except ValueError:
                record(out, {"invalid": raw.decode("utf-8", errors="replace"), "received_at": now})
                self.send_error(400, "expected a JSON object")
                return
            record(out, {**entry, "path": self.path, "received_at": now})
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8025", help="address:port to listen on")
    parser.add_argument("--out", required=True, type=Path, help="JSON-lines file the alerts are appended to")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    make_server(args.listen, args.out).serve_forever()


if __name__ == "__main__":
    main()
