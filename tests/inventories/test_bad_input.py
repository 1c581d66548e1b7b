"""Bad input that used to break the model loader (issue 9): each a clear error naming the file, fast,
through the CLI as a user meets it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from inventories.loader import INVENTORIES_DIR
from inventories.source import MAX_VALUES, ExpansionError, expanded_size
from tests.conftest import CliResult

Hcops = Callable[..., CliResult]
HCOPS = Path(sys.executable).parent / "hcops"


@pytest.fixture
def lab_copy(tmp_path: Path) -> Path:
    region = tmp_path / "lab"
    shutil.copytree(INVENTORIES_DIR / "lab", region)
    return region


def _only_error(res: CliResult) -> str:
    assert res.code == 1, res.stderr
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    return res.stderr


def alias_bomb(levels: int = 9) -> str:
    """The billion-laughs document: 9 levels of 9 aliases, 9**9 (387 million) values expanded."""
    lines = ['lol0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"lol{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_once_naming_the_file(lab_copy: Path) -> None:
    (lab_copy / "laughs.yml").write_text(alias_bomb())
    # the real executable, with a hang guard: before the cap it gave no answer in 20 s
    proc = subprocess.run([str(HCOPS), "inventory", "validate", str(lab_copy)], capture_output=True, text=True,
                          timeout=90, check=False)
    assert proc.returncode == 1, proc.stderr
    assert f"{lab_copy / 'laughs.yml'}:1:1: YAML aliases: its aliases expand to more than {MAX_VALUES:,} values" \
        in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("fix:") == 1  # the unreadable file is the only report, no cascade


def test_few_small_aliases_still_load(lab_copy: Path, hcops: Hcops) -> None:
    text = (lab_copy / "operations.yml").read_text()
    assert "99.95" in text
    anchored = text.replace("target: 99.95", "target: &goal 99.95", 1).replace("target: 99.95", "target: *goal")
    (lab_copy / "operations.yml").write_text(anchored)
    res = hcops("inventory", "validate", str(lab_copy))
    assert res.code == 0, res.stderr


def test_expansion_counting_is_shared_nodes_once_and_catches_cycles() -> None:
    leaf = ["x"] * 9
    level = leaf
    for _ in range(5):
        level = [level] * 9
    assert expanded_size(level, lambda v: v if isinstance(v, list) else []) == sum(9 ** i for i in range(7))
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ExpansionError, match="refers to the value that contains it"):
        expanded_size(loop, lambda v: v if isinstance(v, list) else [])


def test_recursive_alias_is_a_clear_error(lab_copy: Path, hcops: Hcops) -> None:
    (lab_copy / "loop.yml").write_text("sites: &s\n  again: *s\n")
    err = _only_error(hcops("inventory", "validate", str(lab_copy)))
    assert "loop.yml" in err and ("refers to the value that contains it" in err or "recursive" in err)


def test_oversized_file_is_refused_before_parsing(lab_copy: Path, hcops: Hcops,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from inventories import source

    monkeypatch.setattr(source, "MAX_FILE_BYTES", 1024)
    (lab_copy / "big.yml").write_text("# padding\n" * 200)
    err = _only_error(hcops("inventory", "validate", str(lab_copy)))
    assert f"{lab_copy / 'big.yml'}:1:1: the file is 0 MB; region files may be at most 0 MB" in err


def test_integer_of_5000_digits_is_a_clear_error(lab_copy: Path, hcops: Hcops) -> None:
    text = (lab_copy / "region.yml").read_text()
    assert "bandwidth_mbit: 100" in text
    (lab_copy / "region.yml").write_text(text.replace("bandwidth_mbit: 100", "bandwidth_mbit: " + "9" * 5000))
    err = _only_error(hcops("inventory", "validate", str(lab_copy)))
    assert "region.yml:" in err and "links.dedicated-line.bandwidth_mbit: a number of 5,000 characters is too long" \
        in err
    assert err.count("fix:") == 1  # one report for the value, not a second "valid integer" for the same spot


def test_empty_sites_file_is_reported_against_sites_yml(lab_copy: Path, hcops: Hcops) -> None:
    (lab_copy / "sites.yml").write_text("# nothing here yet\n")
    err = _only_error(hcops("inventory", "validate", str(lab_copy)))
    assert f"{lab_copy / 'sites.yml'}:1:1: sites: section `sites` is missing (sites.yml is empty)" in err
    assert "operations.yml" not in err


def test_broken_sites_file_is_not_also_reported_against_other_files(lab_copy: Path, hcops: Hcops) -> None:
    text = (lab_copy / "sites.yml").read_text()
    (lab_copy / "sites.yml").write_text(text.replace("sites:", "sites:\n  - [unclosed", 1))
    err = _only_error(hcops("inventory", "validate", str(lab_copy)))
    assert "sites.yml:" in err and "YAML syntax error" in err
    for other in ("operations.yml", "services.yml", "security.yml", "region.yml:"):
        assert other not in err, err
