"""Backup tests: a throwaway state dir per test, so keys, catalogs and indexes never leak."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dr.backup.catalog import Catalog
from dr.backup.keys import RegionKey, load_key
from dr.backup.pipeline import Context
from dr.backup.stores import DirStore


@pytest.fixture()
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("HCOPS_STATE_DIR", str(d))
    return d


@pytest.fixture()
def key(state: Path) -> RegionKey:
    return load_key("t", create=True)


@pytest.fixture()
def ctx(state: Path, key: RegionKey, tmp_path: Path) -> Iterator[Context]:
    cat = Catalog.for_region("t")
    yield Context(region="t", policy="p", key=key, local=DirStore(tmp_path / "store"), offsite=None, catalog=cat)
    cat.close()


class Weed:
    """A real SeaweedFS (master + volume + filer + S3) on loopback, restartable on the same data."""

    def __init__(self, base: Path, port: int) -> None:
        import secrets as _s

        from infra.lab import s3 as labs3
        self.labs3 = labs3
        self.base, self.port = base, port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.creds = (f"HC{_s.token_hex(6).upper()}", _s.token_urlsafe(24))
        self.ident = base / "identities.json"
        self.ident.write_text(labs3.identities(*self.creds))
        self.ini = base / "credentials.ini"
        self.ini.write_text(f"[default]\naws_access_key_id = {self.creds[0]}\n"
                            f"aws_secret_access_key = {self.creds[1]}\n")
        self.proc: object = None

    def start(self, buckets: list[str] | None = None) -> None:
        proc = self.labs3.start_server("127.0.0.1", self.port, self.base / "data", self.ident, self.base / "weed.log")
        self.proc = proc
        self.labs3.wait_ready(self.endpoint, self.creds, lambda: proc.poll() is None, self.base / "weed.log",
                              buckets=buckets)

    def stop(self, grace: float = 20) -> None:
        import subprocess

        from dr.backup.scratch import stop_process
        if isinstance(self.proc, subprocess.Popen):
            stop_process(self.proc, grace)
        self.proc = None

    def client(self) -> object:
        return self.labs3.s3_client(self.endpoint, self.creds)


def _free_base() -> int:
    import socket
    for base in range(23100, 23900, 10):
        ok = True
        for p in (base, base + 1, base + 2, base + 3):
            for q in (p, p + 10000):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", q)) == 0:
                        ok = False
        if ok:
            return base
    raise RuntimeError("no free port range for SeaweedFS")


@pytest.fixture(scope="session")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weed]:
    import shutil
    import tempfile
    # outside /tmp, so the server gets a private /tmp for its port-named sockets (as in the lab)
    base = Path(tempfile.mkdtemp(prefix="hcops-test-weed-", dir="/var/tmp"))
    w = Weed(base, _free_base())
    w.start()
    c = w.client()
    from infra.lab.s3 import create_buckets
    create_buckets(c, {"offsite": (True, True), "plain": (True, False)}, ["offsite", "plain"])
    yield w
    w.stop(grace=2)  # its data is thrown away with the session
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    import socket

    from tests.backup.mariadb_server import Server
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = Server(tmp_path_factory.mktemp("mariadb"), port)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture()
def orthanc() -> Iterator[object]:
    """A real Orthanc (Debian package) on a free loopback port, storage in a fresh directory."""
    import shutil
    import tempfile

    from tests.backup.orthanc_server import Server
    base = Path(tempfile.mkdtemp(prefix="hcops-test-orthanc-", dir="/var/tmp"))
    srv = Server(base)
    srv.start()
    yield srv
    srv.stop()
    shutil.rmtree(base, ignore_errors=True)
