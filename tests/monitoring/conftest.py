"""Fixtures for the Zabbix sync tests: region copies with one fact changed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"


@pytest.fixture
def lab_copy(tmp_path: Path) -> Callable[[dict[str, tuple[str, str]]], str]:
    """A copy of inventories/lab with text edits {file: (old, new)}; returns its path for --region."""

    def make(edits: dict[str, tuple[str, str]]) -> str:
        root = tmp_path / "regions" / "lab"
        if root.exists():
            shutil.rmtree(root)
        shutil.copytree(LAB, root)
        for name, (old, new) in edits.items():
            path = root / name
            text = path.read_text()
            assert old in text, f"{old!r} not in {name}"
            path.write_text(text.replace(old, new, 1))
        return str(root)

    return make
