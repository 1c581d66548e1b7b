"""A throwaway Orthanc (Debian's package) on loopback: how verify proves that Orthanc itself reads
a restored PACS tree, and how a restore rebuilds a consistent index by re-ingesting the images.

Loopback only: REST on a free 127.0.0.1 port (remote access refused, and bound to loopback once
the package knows `HttpBindAddresses`), the DICOM server off, no plugins, no Lua, no Explorer,
no WebDAV; authentication on with a random password in a 0600 configuration file. The server
always stops when the block ends (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dr.backup.orthanc import USER, Orthanc
from dr.backup.scratch import stop_process
from inventories.errors import HcopsError

BINARY = "Orthanc"
INSTALL = "install Debian's orthanc package (./run test does)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ScratchOrthanc:
    url: str
    password: str
    storage: Path  # image files and SQLite index
    log: Path
    proc: subprocess.Popen[bytes]

    def client(self, password: str | None = None, timeout: float = 60) -> Orthanc:
        return Orthanc(self.url, USER, self.password if password is None else password, timeout=timeout)

    @property
    def stopped_cleanly(self) -> bool:
        """Exited by itself on SIGTERM (its index closed), not killed."""
        return self.proc.returncode == 0


def config(storage: Path, http_port: int, password: str, name: str = "hcops-scratch") -> dict[str, object]:
    return {
        "Name": name, "StorageDirectory": str(storage), "IndexDirectory": str(storage),
        "StorageCompression": False,  # as the orthanc role: the images stay plain DICOM files
        "MaximumStorageSize": 0, "MaximumPatientCount": 0, "Plugins": [], "LuaScripts": [],
        "HttpServerEnabled": True, "HttpPort": http_port, "HttpBindAddresses": ["127.0.0.1"],
        "RemoteAccessAllowed": False, "AuthenticationEnabled": True, "RegisteredUsers": {USER: password},
        "SslEnabled": False, "HttpDescribeErrors": True, "OrthancExplorerEnabled": False, "WebDavEnabled": False,
        "DicomServerEnabled": False, "DicomModalities": {}, "OrthancPeers": {}, "ExecuteLuaEnabled": False,
        "RestApiWriteToFileSystemEnabled": False, "ConcurrentJobs": 1, "SaveJobs": False,
        "HttpThreadsCount": 4,
    }


def _tail(log: Path, n: int = 1500) -> str:
    try:
        return log.read_text(errors="replace")[-n:].strip()
    except OSError:
        return ""


@contextlib.contextmanager
def scratch_orthanc(base: Path, storage: Path | None = None, *, timeout: float = 90,
                    name: str = "hcops-scratch") -> Iterator[ScratchOrthanc]:
    """Orthanc with its configuration and log in `base`, images and index in `storage` (default
    base/db; created if absent), answering REST calls for the duration of the block."""
    if shutil.which(BINARY) is None:
        raise HcopsError(f"{BINARY} is not installed on this machine (needed to check or re-index a PACS tree)",
                         INSTALL)
    storage = storage if storage is not None else base / "db"
    base.mkdir(parents=True, exist_ok=True)
    storage.mkdir(parents=True, exist_ok=True)
    port, password = free_port(), secrets.token_urlsafe(18)
    cfg = base / "orthanc.json"
    fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)  # also when the file was already there
        json.dump(config(storage, port, password, name), fh, indent=2)
    log = base / "orthanc.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([BINARY, "--no-jobs", str(cfg)], stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    s = ScratchOrthanc(f"http://127.0.0.1:{port}", password, storage, log, proc)
    try:
        probe = s.client(timeout=5)
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise HcopsError(f"the scratch Orthanc on {storage} exited (code {proc.returncode}) before it "
                                 f"answered: {_tail(log)}", f"see {log}; if the binary is broken, {INSTALL}")
            try:
                probe.system()
                break
            except HcopsError:
                if time.monotonic() > deadline:
                    raise HcopsError(f"the scratch Orthanc on {storage} did not answer within {timeout:.0f} s: "
                                     f"{_tail(log)}", f"see {log}") from None
                time.sleep(0.2)
        yield s
    finally:
        stop_process(proc, 30)
