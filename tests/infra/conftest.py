"""Fixtures for the OpenStack program's tests: regions, offline plans, a real S3 endpoint (moto).

Offline plans are computed once per session (the mock runtime takes well under a second per
region) and shared; the moto server is one subprocess for the session, bound to 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from inventories.loader import load_region
from inventories.model import Region

if TYPE_CHECKING:
    from infra.openstack.config import ProgramConfig
    from infra.openstack.mocks import OfflinePlan

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="package", autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep these tests away from /var/lib/hcops (keys, outputs, secrets).

    Package scope: the override ends with tests/infra, so later areas (the lab above all) see the
    real state dir and find a lab that `./run lab` left running instead of building a twin of it.
    """
    path = tmp_path_factory.mktemp("hcops-state")
    old = os.environ.get("HCOPS_STATE_DIR")
    os.environ["HCOPS_STATE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("HCOPS_STATE_DIR", None)
    else:
        os.environ["HCOPS_STATE_DIR"] = old


def copy_region(src: str, dest: Path, edits: list[tuple[str, str, str]]) -> Path:
    """Copy inventories/<src> to dest/<src> and apply (file, old, new) text edits."""
    target = dest / src
    shutil.copytree(REPO / "inventories" / src, target)
    for file, old, new in edits:
        path = target / file
        text = path.read_text()
        assert old in text, f"{old!r} not in {path}"
        path.write_text(text.replace(old, new))
    return target


OPENSTACK_LAB = [("sites.yml", "provider: lab", "provider: openstack")]


@pytest.fixture(scope="session")
def make_region(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    def make(src: str, edits: list[tuple[str, str, str]]) -> Path:
        return copy_region(src, tmp_path_factory.mktemp("region"), edits)

    return make


@pytest.fixture(scope="session")
def lab_os_dir(make_region: Callable[..., Path]) -> Path:
    """The lab region with both sites on OpenStack (local-dc private, cloud public)."""
    return make_region("lab", OPENSTACK_LAB)


@pytest.fixture(scope="session")
def lab_os(lab_os_dir: Path) -> Region:
    return load_region(str(lab_os_dir))


@pytest.fixture(scope="session")
def city() -> Region:
    return load_region("example-city")


def offline_config(region: Region, **values: object) -> ProgramConfig:
    from infra.openstack.config import build_config

    return build_config(region.name, dict(values), offline=True)


@pytest.fixture(scope="session")
def city_plan(city: Region) -> OfflinePlan:
    """example-city as `hcops infra preview --offline` and the checks before `up` run it: through
    `ops.offline_check`, with the stack file's settings."""
    from infra.openstack.ops import offline_check

    return offline_check(city).plan


@pytest.fixture(scope="session")
def lab_plan(lab_os: Region) -> OfflinePlan:
    from infra.openstack.mocks import run_offline

    return run_offline(lab_os, offline_config(lab_os))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 HTTP endpoint (moto_server) on loopback, for the bucket provider's tests."""
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    assert exe, "moto_server is missing: pip install 'moto[server]' (a dev dependency)"
    port = _free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("moto_server exited at start") from None
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("moto_server did not start listening within 30 s")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def s3_credentials(tmp_path: Path) -> Path:
    path = tmp_path / "s3.ini"
    path.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    path.chmod(0o600)
    return path


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_openstack warns about its own deprecated aliases on import; not ours to fix.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_openstack.*")
