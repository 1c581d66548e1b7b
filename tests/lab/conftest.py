"""Helpers for the lab tests: a bounded TCP transfer between two lab hosts, timed by the receiver."""

from __future__ import annotations

import json
import threading

from tests.fixtures.lab import Lab

PORT = 5201
RECEIVER = r"""
import json, socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", %(port)d)); s.listen(1); s.settimeout(30)
c, _ = s.accept(); c.settimeout(30); n = 0; t0 = None
while True:
    b = c.recv(1 << 16)
    if not b: break
    if t0 is None: t0 = time.monotonic()
    n += len(b)
print(json.dumps({"bytes": n, "seconds": time.monotonic() - t0}))
"""
SENDER = r"""
import socket, time
for _ in range(50):
    try:
        s = socket.create_connection(("%(dst)s", %(port)d), timeout=5); break
    except OSError:
        time.sleep(0.1)
s.sendall(b"x" * %(size)d); s.close()
"""


def measure_mbit(lab: Lab, src: str, dst: str, size: int = 20_000_000, timeout: float = 60) -> float:
    """Send `size` bytes from src to dst over TCP; the receiver's rate in Mbit/s."""
    result: dict[str, str] = {}

    def receive() -> None:
        result["out"] = lab.run(dst, f"timeout {int(timeout)} python3 -c '{RECEIVER % {'port': PORT}}'",
                                timeout=timeout + 10).stdout

    t = threading.Thread(target=receive)
    t.start()
    sender = SENDER % {"dst": lab.address(dst), "port": PORT, "size": size}
    lab.run(src, f"timeout {int(timeout)} python3 -c '{sender}'", timeout=timeout + 10)
    t.join(timeout + 15)
    data = json.loads(result["out"].strip().splitlines()[-1])
    assert data["bytes"] == size
    return float(data["bytes"]) * 8 / float(data["seconds"]) / 1e6
