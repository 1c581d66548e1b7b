"""RMAN scripts rendered from the oracle role's templates for example-city's Oracle policy."""

from __future__ import annotations

import re

import pytest

from dr.backup.rman import render
from inventories.errors import HcopsError
from inventories.loader import load_region


def test_rman_scripts_for_the_oracle_policy() -> None:
    region = load_region("example-city")
    s = render(region, "emr-nightly", channels=3)
    assert set(s) == {"level0", "level1", "archivelog"}
    l0, l1, arch = s["level0"], s["level1"], s["archivelog"]
    assert "INCREMENTAL LEVEL 0 DATABASE" in l0 and "INCREMENTAL LEVEL 1 DATABASE" in l1
    assert re.search(r"RECOVERY WINDOW OF 372 DAYS", l0)
    assert l0.count("ALLOCATE CHANNEL") == 3
    assert "/srv/backup/emr/rman/%d_L0_%T_%U" in l0
    assert "ARCHIVELOG ALL NOT BACKED UP 1 TIMES" in arch and "SYSDATE-14" in arch
    assert "TAG 'HCOPS_L0_EMR_NIGHTLY'" in l0
    for text in s.values():  # every RUN block is closed; no template syntax left
        assert text.count("RUN {") == text.count("}\n") and "{{" not in text and "{%" not in text


def test_rman_for_a_non_oracle_policy_is_refused() -> None:
    with pytest.raises(HcopsError, match="not an Oracle service"):
        render(load_region("example-city"), "records-nightly")
