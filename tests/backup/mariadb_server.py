"""A real MariaDB server for the backup tests: its own data dir, socket and a loopback port."""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path


class Server:
    """Encrypted at rest like the lab's servers (level-3 role: file_key_management, AES-CTR), so
    backups and restores are tested against the pages and redo log production has."""

    def __init__(self, base: Path, port: int) -> None:
        self.base, self.port = base, port
        self.keyfile = base / "keyfile"
        self.datadir = base / "data"
        self.sock = base / "mysqld.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def opts(self) -> str:
        return f"--socket={self.sock} --user=root"

    def start(self) -> None:
        if not self.keyfile.exists():
            self.keyfile.write_text(f"1;{secrets.token_hex(32)}\n")
            self.keyfile.chmod(0o600)
        if not self.datadir.exists():
            self.datadir.mkdir(parents=True)
            subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}", "--user=root",
                            "--auth-root-authentication-method=socket", "--skip-test-db"],
                           check=True, capture_output=True)
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.sock}", "--user=root",
             "--bind-address=127.0.0.1", f"--port={self.port}", "--log-bin=mysql-bin", "--server-id=1",
             "--binlog-format=ROW", "--innodb-buffer-pool-size=64M", f"--log-error={self.base}/err.log",
             f"--pid-file={self.base}/pid", "--plugin-load-add=file_key_management",
             f"--file-key-management-filename={self.keyfile}", "--file-key-management-encryption-algorithm=AES_CTR",
             "--encrypt-binlog=ON", "--innodb-encrypt-tables=ON", "--innodb-encrypt-log=ON"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
