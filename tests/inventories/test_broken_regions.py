"""Every broken region in tests/inventories/broken/ fails with the expected errors, positions and
exit code, through the loader and through the CLI, and never with a traceback.

A case is the lab region with the case's files laid over it (added or replacing a lab file);
`expect.yml` says which errors must be reported, at which file and line.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from inventories.errors import RegionInvalid
from inventories.loader import INVENTORIES_DIR, load_region

BROKEN = Path(__file__).parent / "broken"
CASES = sorted(p.name for p in BROKEN.iterdir() if p.is_dir())


def build_case(case: str, tmp_path: Path) -> Path:
    region = tmp_path / "lab"
    shutil.copytree(INVENTORIES_DIR / "lab", region)
    for file in (BROKEN / case).glob("*.yml"):
        if file.name != "expect.yml":
            shutil.copy(file, region / file.name)
    return region


def test_corpus_covers_at_least_twenty_kinds_of_mistake():
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES)
def test_broken_region_reports_expected_errors(case: str, tmp_path: Path):
    expect = yaml.safe_load((BROKEN / case / "expect.yml").read_text())
    region = build_case(case, tmp_path)
    with pytest.raises(RegionInvalid) as info:
        load_region(str(region))
    errors = info.value.errors
    if "total" in expect:
        assert len(errors) == expect["total"], [e.render() for e in errors]
    for want in expect["errors"]:
        matches = [
            e for e in errors
            if e.position is not None
            and e.position.file == region / want["file"]
            and e.position.line == want["line"]
            and e.path == want["path"]
            and want["message"] in e.message
        ]
        assert matches, f"expected {want} among:\n" + "\n".join(e.render() for e in errors)
    for err in errors:
        assert err.position is not None, err.render()
        assert err.hint, err.render()


@pytest.mark.parametrize("case", CASES)
def test_cli_exits_1_with_position_and_no_traceback(case: str, tmp_path: Path, hcops):
    expect = yaml.safe_load((BROKEN / case / "expect.yml").read_text())
    region = build_case(case, tmp_path)
    res = hcops("inventory", "validate", str(region))
    assert res.code == 1
    first = expect["errors"][0]
    assert f"{region / first['file']}:{first['line']}:" in res.stderr
    assert "fix:" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_every_error_is_reported_at_once(tmp_path: Path):
    """Two unrelated mistakes in two files: both are reported in one run."""
    region = build_case("bad-cron", tmp_path)
    shutil.copy(BROKEN / "slo-unknown-service" / "extra.yml", region / "extra2.yml")
    with pytest.raises(RegionInvalid) as info:
        load_region(str(region))
    messages = " | ".join(e.message for e in info.value.errors)
    assert "not a five-field cron expression" in messages
    assert "SLO on unknown service 'portal'" in messages


def test_json_output_lists_errors_as_data(tmp_path: Path, hcops):
    import json

    region = build_case("gateway-address", tmp_path)
    res = hcops("--output", "json", "inventory", "validate", str(region))
    assert res.code == 1
    (result,) = json.loads(res.stdout)
    assert result["valid"] is False
    (err,) = result["errors"]
    assert err["line"] == 10 and err["column"] == 21
    assert err["path"] == "sites.annex.hosts.web9.addresses.lan"


def test_unreadable_file_is_a_clean_error(tmp_path: Path, hcops):
    region = build_case("bad-cron", tmp_path)
    (region / "binary.yml").write_bytes(b"\xff\xfe\x00garbage")
    res = hcops("inventory", "validate", str(region))
    assert res.code == 1
    assert "binary.yml:1:1: cannot read file" in res.stderr


def test_region_name_must_match_directory(tmp_path: Path):
    region = tmp_path / "other"
    shutil.copytree(INVENTORIES_DIR / "lab", region)
    with pytest.raises(RegionInvalid) as info:
        load_region(str(region))
    (err,) = info.value.errors
    assert err.path == "region.name"
    assert "differs from its directory 'other'" in err.message
