"""A throwaway MariaDB server on a restored data directory: how verify and point-in-time
restore check a backup without touching any real server (socket only, no network)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inventories.errors import HcopsError


@dataclass
class Scratch:
    datadir: Path
    socket: Path
    proc: subprocess.Popen[bytes]

    def client(self) -> list[str]:
        return ["mariadb", "--no-defaults", f"--socket={self.socket}", "--user=root"]

    def query(self, sql: str) -> str:
        proc = subprocess.run([*self.client(), "-N", "-B", "-e", sql], capture_output=True, text=True,
                              timeout=120, check=False)
        if proc.returncode != 0:
            raise HcopsError(f"scratch server query failed: {proc.stderr.strip()[-300:]}", "see the message above")
        return proc.stdout


def encryption_options(datadir: Path) -> list[str]:
    """Server options to open a restored data directory encrypted at rest.

    mariabackup writes the source server's key management settings into backup-my.cnf, and the
    restore points its key file at the backup's own copy of the key (restore.restore_physical).
    """
    cnf = datadir / "backup-my.cnf"
    if not cnf.is_file():
        return []
    found = dict(line.strip().partition("=")[::2] for line in cnf.read_text().splitlines() if "=" in line)
    if not found.get("file_key_management_filename"):
        return []
    algorithm = found.get("file_key_management_encryption_algorithm") or "aes_cbc"  # the plugin's default
    return ["--plugin-load-add=file_key_management",
            f"--file-key-management-filename={found['file_key_management_filename']}",
            f"--file-key-management-encryption-algorithm={algorithm}"]


def stop_process(proc: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM, `grace` seconds to exit cleanly, then SIGKILL (scratch servers of every kind)."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def scratch_server(datadir: Path, run_dir: Path, timeout: float = 120) -> Iterator[Scratch]:
    if shutil.which("mariadbd") is None:
        raise HcopsError("mariadbd is not installed on this machine (needed to check a restored backup)",
                         "apt-get install mariadb-server (it is in deps/apt.txt)")
    run_dir.mkdir(parents=True, exist_ok=True)
    sock = run_dir / "scratch.sock"
    log = run_dir / "scratch.err"
    argv = ["mariadbd", "--no-defaults", f"--datadir={datadir}", f"--socket={sock}", "--skip-networking",
            "--user=root", f"--log-error={log}", f"--pid-file={run_dir}/scratch.pid", "--innodb-buffer-pool-size=64M",
            "--skip-slave-start", "--server-id=99", *encryption_options(datadir)]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    s = Scratch(datadir, sock, proc)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise HcopsError(f"the scratch server did not start on {datadir}: "
                                 f"{log.read_text()[-600:] if log.exists() else ''}", "the restored data is unusable")
            if sock.exists() and subprocess.run([*s.client(), "-e", "SELECT 1"], capture_output=True,
                                                check=False).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise HcopsError("the scratch server did not answer in time", f"see {log}")
            time.sleep(0.3)
        yield s
    finally:
        stop_process(proc, 60)
