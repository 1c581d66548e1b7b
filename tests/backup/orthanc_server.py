"""A real Orthanc for the PACS tests: the production scratch server (dr/backup/scratch_orthanc.py,
Debian's package on a free loopback port, authentication on) with start/stop, storage in
base/db, kept across a restart so a test can stop the PACS and start it again on its tree."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from pathlib import Path

from dr.backup.orthanc import Orthanc
from dr.backup.scratch_orthanc import ScratchOrthanc, free_port, scratch_orthanc

__all__ = ["Server", "free_port"]


class Server:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.storage = base / "db"
        self._stack: contextlib.ExitStack | None = None
        self._srv: ScratchOrthanc | None = None  # the last one started, still readable once stopped

    @property
    def running(self) -> ScratchOrthanc:
        assert self._srv is not None, "Server.start() first"
        return self._srv

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def password(self) -> str:
        return self.running.password

    def start(self) -> None:
        self.stop()
        stack = contextlib.ExitStack()
        self._srv = stack.enter_context(scratch_orthanc(self.base, self.storage, name="hcops-test"))
        self._stack = stack

    def client(self, password: str | None = None) -> Orthanc:
        return self.running.client(password, timeout=30)

    def anonymous_status(self) -> int:
        try:
            with urllib.request.urlopen(self.url + "/system", timeout=10) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
