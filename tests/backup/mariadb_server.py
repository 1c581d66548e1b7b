"""A real MariaDB server for the backup tests: its own data dir, socket and a loopback port."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


class Server:
    def __init__(self, base: Path, port: int) -> None:
        self.base, self.port = base, port
        self.datadir = base / "data"
        self.sock = base / "mysqld.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def opts(self) -> str:
        return f"--socket={self.sock} --user=root"

    def start(self) -> None:
        if not self.datadir.exists():
            self.datadir.mkdir(parents=True)
            subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}", "--user=root",
                            "--auth-root-authentication-method=socket", "--skip-test-db"],
                           check=True, capture_output=True)
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.sock}", "--user=root",
             "--bind-address=127.0.0.1", f"--port={self.port}", "--log-bin=mysql-bin", "--server-id=1",
             "--binlog-format=ROW", "--innodb-buffer-pool-size=64M", f"--log-error={self.base}/err.log",
             f"--pid-file={self.base}/pid"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while subprocess.run(["mariadb", "--no-defaults", f"--socket={self.sock}", "-uroot", "-e", "SELECT 1"],
                             capture_output=True, check=False).returncode != 0:
            assert self.proc.poll() is None, (self.base / "err.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "MariaDB did not start"
            time.sleep(0.3)

    def sql(self, q: str) -> str:
        return subprocess.run(["mariadb", "--no-defaults", f"--socket={self.sock}", "-uroot", "-N", "-B", "-e", q],
                              capture_output=True, text=True, check=True).stdout

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(60)
            self.proc = None
