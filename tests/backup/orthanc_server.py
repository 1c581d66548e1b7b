"""A real Orthanc for the PACS tests: the Debian package's server on a free loopback port, its
storage in a temporary directory, authentication on (as the orthanc role configures it)."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from dr.backup.orthanc import USER, Orthanc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.storage = base / "db"
        self.http_port, self.dicom_port = free_port(), free_port()
        self.password = secrets.token_urlsafe(18)
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> dict[str, object]:
        return {
            "Name": "hcops-test", "StorageDirectory": str(self.storage), "IndexDirectory": str(self.storage),
            "StorageCompression": False, "Plugins": [], "HttpPort": self.http_port,
            "DicomPort": self.dicom_port, "DicomAet": "TEST_PACS", "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True, "RegisteredUsers": {USER: self.password},
            "OrthancExplorerEnabled": False, "WebDavEnabled": False, "HttpDescribeErrors": True,
            "ConcurrentJobs": 1, "HttpThreadsCount": 4, "DicomThreadsCount": 1,
            "SaveJobs": False, "LuaScripts": [],
        }

    def start(self) -> None:
        cfg = self.base / "orthanc.json"
        cfg.write_text(json.dumps(self.config(), indent=2))
        cfg.chmod(0o600)
        log = open(self.base / "orthanc.log", "ab")  # noqa: SIM115 (the server writes it while it runs)
        self.proc = subprocess.Popen(["Orthanc", "--logdir=" + str(self.base), str(cfg)],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 90
        while True:
            try:
                self.client().system()
                return
            except Exception:
                assert self.proc.poll() is None, (self.base / "orthanc.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "Orthanc did not answer"
                time.sleep(0.3)

    def client(self, password: str | None = None) -> Orthanc:
        return Orthanc(self.url, USER, self.password if password is None else password, timeout=30)

    def anonymous_status(self) -> int:
        try:
            with urllib.request.urlopen(self.url + "/system", timeout=10) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
