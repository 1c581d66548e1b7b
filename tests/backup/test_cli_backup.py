"""`hcops backup` without a lab: key export, list/status JSON, prune --dry-run exit codes, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from dr.backup.catalog import Catalog
from dr.backup.manifest import Manifest
from tests.conftest import CliResult

Run = Callable[..., CliResult]


def _seed(n: int) -> None:
    cat = Catalog.for_region("lab")
    for i in range(n):
        at = f"2026-0{1 + i // 28}-{1 + i % 28:02d}T01:30:00+00:00"
        m = Manifest(backup_id=f"appdb-nightly.full.{i:02d}", region="lab", policy="appdb-nightly", kind="full",
                     source="appdb", started_at=at, finished_at=at)
        cat.record(m, "good")
        cat.confirm(m.backup_id, "local", at)
    cat.close()


def test_key_export_then_refuses_to_overwrite(hcops: Run, state: Path, tmp_path: Path) -> None:
    dest = tmp_path / "lab.key"
    r = hcops("-o", "json", "backup", "key", "export", str(dest), "--region", "lab")
    assert r.code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["fingerprint"] in dest.read_text() and oct(dest.stat().st_mode & 0o777) == "0o600"
    assert "key:" not in r.stdout + r.stderr  # the key itself is never printed
    again = hcops("backup", "key", "export", str(dest), "--region", "lab")
    assert again.code == 1 and "already exists" in again.stderr and "fix:" in again.stderr


def test_list_json_has_policy_status(hcops: Run, state: Path) -> None:
    r = hcops("-o", "json", "backup", "list", "--region", "lab")
    assert r.code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["policies"] == [{"policy": p, "last_verified_at": None, "verified_where": [], "age_s": None}
                                for p in ("appdb-nightly", "pacs-nightly")]
    _seed(3)
    data = json.loads(hcops("-o", "json", "backup", "list", "--region", "lab").stdout)
    assert data["policies"][0]["verified_where"] == ["local"] and len(data["backups"]) == 3
    assert data["policies"][1]["verified_where"] == []
    shown = hcops("-o", "json", "backup", "show", "appdb-nightly.full.02", "--region", "lab")
    assert json.loads(shown.stdout)["chain"] == ["appdb-nightly.full.02"]


def test_prune_dry_run_shows_the_plan_and_exits_2(hcops: Run, state: Path) -> None:
    _seed(12)  # 12 daily fulls; the lab keeps 7 daily, 4 weekly, 12 monthly, 1 yearly
    r = hcops("-o", "json", "backup", "prune", "--policy", "appdb-nightly", "--dry-run", "--region", "lab")
    assert r.code == 2, r.stderr
    changes = json.loads(r.stdout)["changes"]
    deletes = [c["backup_id"] for c in changes if c["action"] == "delete"]
    assert deletes and "appdb-nightly.full.11" not in deletes
    assert len(deletes) == 12 - len([c for c in changes if c["action"] == "keep"])
    no = hcops("backup", "prune", "--policy", "appdb-nightly", "--region", "lab")
    assert no.code == 1 and "--dry-run" in no.stderr


def test_bad_input_is_a_clear_error(hcops: Run, state: Path) -> None:
    r = hcops("backup", "run", "--policy", "nope", "--region", "lab")
    assert r.code == 1 and "no backup policy 'nope'" in r.stderr and "appdb-nightly" in r.stderr
    r = hcops("backup", "show", "missing-id", "--region", "lab")
    assert r.code == 1 and "no backup 'missing-id'" in r.stderr
    r = hcops("backup", "run", "--region", "lab")
    assert r.code == 64
    r = hcops("backup", "verify", "x", "--region", "lab", "--key-file", "/nonexistent")
    assert r.code == 1 and "Traceback" not in r.stderr
    r = hcops("backup", "run", "--policy", "appdb-nightly", "--kind", "weekly", "--region", "lab")
    assert r.code == 1 and "unknown backup kind" in r.stderr


def test_freshness_checks_for_monitoring() -> None:
    from dr.backup.status import freshness_checks, schedule_interval_s
    from inventories.loader import load_region
    checks = freshness_checks(load_region("lab"))
    assert [c.item_key for c in checks] == [f"vfs.file.contents[/var/lib/hcops-backup/{p}.last-verified]"
                                            for p in ("appdb-nightly", "pacs-nightly")]  # database and PACS
    for c in checks:  # both daily: a trigger after one missed run
        assert c.host == "backup1" and c.max_age_s == 2 * 86400
        assert c.trigger_expression == f"now()-last(/backup1/{c.item_key})>172800"
    assert schedule_interval_s("0 3 * * 6") == 7 * 86400 and schedule_interval_s("0 * * * *") == 3600
