"""A loopback HTTP proxy in front of the test Zabbix that breaks chosen answers on purpose.

It forwards every JSON-RPC request to the real frontend and, for the methods a test names,
answers like a failing frontend would: a 502 *after* the request ran (a proxy that lost the
answer), a 500 with PHP's out-of-memory error *instead of* running it, or a truncated body.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: dict[str, tuple[str, int]] = {}
        """method -> (mode, times): 'lost' (forward, then 502), 'oom' (500, not forwarded), 'cut' (truncated)"""
        self.seen: Counter[str] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                method = json.loads(body)["method"]
                proxy.seen[method] += 1
                mode, times = proxy.faults.get(method, ("", 0))
                if times:
                    proxy.faults[method] = (mode, times - 1)
                if times and mode == "oom":
                    self._answer(500, b"<br />\n<b>Fatal error</b>:  Allowed memory size of 134217728 bytes "
                                      b"exhausted (tried to allocate 20480 bytes) in <b>/usr/share/zabbix/x.php</b>")
                    return
                req = urllib.request.Request(proxy.upstream, data=body,
                                             headers={"Content-Type": "application/json-rpc"})
                with urllib.request.urlopen(req, timeout=120) as resp:  # loopback only
                    data = resp.read()
                if times and mode == "lost":
                    self._answer(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>")
                elif times and mode == "cut":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self._answer(200, data)

            def _answer(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if status != 200 else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api_jsonrpc.php"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
