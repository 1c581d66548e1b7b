"""Fixtures for the playbook tests: one converge of the lab per session, then a rerun and a
--check run whose recaps the idempotency tests read. Lab tests hold /tmp/hcops-playbooks-busy
while a playbook runs, so other engineers' destructive lab tests wait."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.deploy import DeployResult, run_deploy
from tests.fixtures.lab import BUSY_FLAG, Lab

REPO = Path(__file__).resolve().parents[2]
HCOPS = str(Path(sys.executable).parent / "hcops")


@contextmanager
def playbooks_busy() -> Iterator[None]:
    BUSY_FLAG.touch()
    try:
        yield
    finally:
        BUSY_FLAG.unlink(missing_ok=True)


@dataclass
class Deploys:
    first: DeployResult
    log: list[str]


def _deploy(lab: Lab, **kwargs: object) -> tuple[DeployResult, list[str]]:
    lines: list[str] = []
    with playbooks_busy():
        result = run_deploy(lab.region, echo=lines.append, **kwargs)  # type: ignore[arg-type]
    return result, lines


@pytest.fixture(scope="session")
def deployed(lab: Lab) -> Deploys:
    """`hcops deploy --region lab`, once per session (converges a fresh lab, or confirms one)."""
    result, lines = _deploy(lab)
    if result.exit_code() != 0:
        tail = "\n".join(lines[-60:])
        pytest.fail(f"hcops deploy --region lab failed (exit {result.exit_code()}):\n{tail}")
    return Deploys(result, lines)


@pytest.fixture(scope="session")
def rerun(deployed: Deploys, lab: Lab) -> DeployResult:
    """A second `site.yml` run on the converged lab."""
    result, _ = _deploy(lab)
    return result


@pytest.fixture(scope="session")
def check_run(rerun: DeployResult, lab: Lab) -> DeployResult:
    """`--check` on the converged lab."""
    result, _ = _deploy(lab, check=True)
    return result


def wait_for(predicate, timeout: float = 30, interval: float = 1.0):  # type: ignore[no-untyped-def]
    """Poll until predicate() is truthy (bounded); return its last value."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


def hcops_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HCOPS, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False)
