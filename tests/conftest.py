"""Fixtures every test area shares. Area fixtures (lab, zabbix, ...) live in tests/fixtures/
and are registered in `pytest_plugins` below so that any test directory can use them."""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli import common
from cli.app import main

REPO = Path(__file__).resolve().parent.parent

pytest_plugins: list[str] = ["tests.fixtures.zabbix", "tests.fixtures.lab", "tests.fixtures.deploy"]


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def make_runner(monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """A function running `hcops ARGS` in-process, capturing exit code, stdout and stderr."""

    def run(*args: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        # rich consoles are created at import; point them at the captured streams.
        monkeypatch.setattr(common.stdout, "file", out)
        monkeypatch.setattr(common.stderr, "file", err)
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def hcops(monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run `hcops ARGS` in-process and capture its exit code, stdout and stderr."""
    return make_runner(monkeypatch)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
