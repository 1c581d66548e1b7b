"""The lab end to end (one lean scenario): timers and binlog archiver on backup1 from the model;
the lab's database backed up from the healthy replica to backup1 and across the shaped line to
the cloud's SeaweedFS; incremental; binlogs; restore to a point in time between two canary
writes; verify from the offsite copy by scratch restore; status for monitoring."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dr.backup.scratch import scratch_server
from tests.conftest import CliResult
from tests.fixtures.deploy import Deploys
from tests.fixtures.lab import Lab

POLICY = "appdb-nightly"


def _sql(lab: Lab, host: str, q: str) -> str:
    return lab.run(host, f"mariadb -NBe {json.dumps(q)}").stdout.strip()


@pytest.mark.lab
def test_lab_backup_offsite_pitr_and_verify(deployed: Deploys, lab: Lab, hcops: Callable[..., CliResult],
                                            tmp_path: Path) -> None:
    lab.wait_not_busy()
    reg = lab.region_arg
    # the schedule from the model is a systemd timer on the backup host; the archiver runs
    assert lab.run("backup1", f"systemctl is-enabled hcops-backup@{POLICY}.timer").stdout.strip() == "enabled"
    cal = lab.run("backup1", f"systemctl show -p TimersCalendar --value hcops-backup@{POLICY}.timer").stdout
    assert "01:30:00" in cal
    assert lab.run("backup1", f"systemctl is-active hcops-binlog@{POLICY}.service", check=False).stdout.strip() \
        == "active"

    def run(*args: str) -> dict[str, object]:
        r = hcops("-o", "json", "backup", *args, "--region", reg)
        assert r.code == 0, r.stderr + r.stdout
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    full = run("run", "--policy", POLICY, "--kind", "full")
    assert full["host"] == "db2" and "replica db2 healthy" in str(full["why"])  # not loading the primary
    fres = full["results"][-1]  # type: ignore[index]
    assert fres["state"] == "good" and fres["kind"] == "full" and fres["uploads"]
    inc = run("run", "--policy", POLICY, "--kind", "incremental")["results"][-1]  # type: ignore[index]
    assert inc["state"] == "good" and inc["kind"] == "incremental"

    # a point between two canary writes (the canary writes through the primary every second)
    time.sleep(2)
    point = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    time.sleep(3)
    before = int(_sql(lab, "db1", f"SELECT COUNT(*) FROM canary.canary_seq WHERE written_at < '{point}'"))
    after = int(_sql(lab, "db1", f"SELECT COUNT(*) FROM canary.canary_seq WHERE written_at >= '{point}'"))
    assert after > 0
    time.sleep(2)  # the archiver streams continuously; give it a moment
    bl = run("run", "--policy", POLICY, "--kind", "binlog")["results"][-1]  # type: ignore[index]
    assert bl["state"] == "good"

    dest = tmp_path / "pitr"
    r = hcops("backup", "restore", str(inc["backup_id"]), "--target-dir", str(dest), "--until", point,
              "--region", reg)
    assert r.code == 0, r.stderr
    with scratch_server(dest, tmp_path / "run") as s:
        got_before = int(s.query(f"SELECT COUNT(*) FROM canary.canary_seq WHERE written_at < '{point}'"))
        got_after = int(s.query(f"SELECT COUNT(*) FROM canary.canary_seq WHERE written_at >= '{point}'"))
    assert (got_before, got_after) == (before, 0)

    v = run("verify", str(inc["backup_id"]), "--from", "offsite")
    assert v["ok"] and "canary rows" in str(v["detail"])
    listing = run("list", "--policy", POLICY)
    st = next(p for p in listing["policies"] if p["policy"] == POLICY)  # type: ignore[union-attr]
    assert st["verified_where"] == ["local", "offsite"] and st["age_s"] < 3600
    published = int(lab.run("backup1", f"cat /var/lib/hcops-backup/{POLICY}.last-verified").stdout)
    assert abs(published - time.time()) < 3600
    # a tampered local object is caught by verify, named, and the exit code says so
    obj = f"/srv/backup/appdb/{POLICY}/{inc['backup_id']}/backup.mbstream"
    lab.run("backup1", f"printf 'X' | dd of={obj} bs=1 seek=100 conv=notrunc status=none")
    bad = hcops("backup", "verify", str(inc["backup_id"]), "--region", reg)
    assert bad.code == 1 and "backup.mbstream" in bad.stderr


@pytest.mark.lab
def test_a_line_cut_during_the_offsite_upload_loses_nothing_and_duplicates_nothing(deployed: Deploys,
                                                                                   lab: Lab) -> None:
    """The issue's "line cut mid-upload": backup1 sends the offsite copy across the line; the line
    is cut as the backup starts and mended 15 s later. The backup ends good (riding it out, or
    resumed by the next run), each object is offsite once with the manifest's checksum, no
    multipart upload is left open, and the offsite copy restores."""
    from dr.backup import engine
    from dr.drills import backup_actions
    from dr.drills.context import dedicated_line, reset
    from infra.lab import control

    lab.wait_not_busy()
    reset(lab.region)
    line = dedicated_line(lab.region)
    try:
        found = backup_actions.backup_through_outage(15, "line", {"hcops_region": lab.region_arg})
    finally:
        if control.link_is_cut(lab.region, line):
            lab.restore_link(line)
    assert found["stopped_during_backup"] and found["fault"] == "line", found
    assert found["state"] == "good" and found["verified_offsite"], found
    ctx = engine.context(lab.region, found["policy"], engine.Overrides(), offsite=True)
    try:
        entry = ctx.catalog.get(found["backup_id"])
        assert ctx.offsite is not None
        keys = ctx.offsite.list(f"{found['policy']}/{entry.id}/")
        names = [k.rsplit("/", 1)[1] for k in keys]
        assert sorted(names) == sorted([o.name for o in entry.manifest.objects] + ["manifest.json"]), names
        for o in entry.manifest.objects:
            assert ctx.offsite.sha256(f"{found['policy']}/{entry.id}/{o.name}") == o.sha256, o.name
        open_uploads = ctx.offsite.client.list_multipart_uploads(Bucket=ctx.offsite.s.bucket).get("Uploads", [])
        assert [u for u in open_uploads if entry.id in u["Key"]] == []
    finally:
        ctx.catalog.close()
    print(json.dumps({k: found[k] for k in ("backup_id", "outage_s", "good_after_restart_s", "backup_s", "runs")}))
