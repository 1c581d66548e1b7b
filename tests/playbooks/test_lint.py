"""ansible-lint (production profile, .ansible-lint) is clean on the playbooks and roles."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ansible_lint_production_profile_clean() -> None:
    lint = Path(sys.executable).parent / "ansible-lint"
    proc = subprocess.run([str(lint), "--nocolor", "playbooks/"], cwd=REPO, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in proc.stdout + proc.stderr
