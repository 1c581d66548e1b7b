"""MariaDB against a real server: physical full + incremental, binlog archive, restore to a point
in time between two canary writes (by timestamp and by GTID), logical fallback."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from dr.backup import mariadb as mdb
from dr.backup import restore
from dr.backup.pipeline import Context, run_backup
from dr.backup.scratch import scratch_server
from tests.backup.mariadb_server import Server


def _wait_archived(archive: Path, srv: Server) -> None:
    """Until the archive holds all the server wrote, and the server has stopped writing.

    After FLUSH BINARY LOGS the server appends a Binlog_checkpoint event to the new file a moment
    later: a copy taken before it looks complete and then grows (the one flake of this test).
    """
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        want = srv.sql("SHOW MASTER STATUS").split()[:2]
        f = archive / want[0]
        if f.exists() and f.stat().st_size >= int(want[1]):
            if want == seen:
                return
            seen = want
        time.sleep(0.5)
    raise AssertionError(f"archiver did not catch up to {seen}")


def test_physical_incremental_binlog_point_in_time(ctx: Context, mariadb: Server, tmp_path: Path) -> None:
    srv = mariadb
    srv.sql("CREATE DATABASE IF NOT EXISTS canary; CREATE TABLE canary.writes (id INT PRIMARY KEY, note TEXT)"
            " ENGINE=InnoDB; INSERT INTO canary.writes VALUES (1, 'before full')")
    first_binlog = srv.sql("SHOW BINARY LOGS").split()[0]
    archive = tmp_path / "binlog-archive"
    archive.mkdir()
    arch = subprocess.Popen(["mariadb-binlog", "--no-defaults", "--read-from-remote-server", "--raw", "--stop-never",
                             f"--socket={srv.sock}", "--user=root", f"--result-file={archive}/", first_binlog],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        full = run_backup(ctx, mdb.PhysicalSource(mdb.LOCAL, "appdb", client_opts=srv.opts, host="test"))
        assert full.ok, full.error
        assert full.facts["to_lsn"] and full.facts["gtid"]
        srv.sql("INSERT INTO canary.writes VALUES (2, 'after full')")
        inc = run_backup(ctx, mdb.PhysicalSource(mdb.LOCAL, "appdb", client_opts=srv.opts, host="test",
                                                 parent=full.backup_id, base_lsn=int(full.facts["to_lsn"])))  # type: ignore[call-overload]
        assert inc.ok, inc.error and inc.kind == "incremental"
        assert inc.stored_bytes < full.stored_bytes
        srv.sql("INSERT INTO canary.writes VALUES (3, 'canary write A')")
        gtid_a = srv.sql("SELECT @@gtid_current_pos").strip()
        srv.sql("INSERT INTO canary.writes VALUES (4, 'canary write B')")
        srv.sql("FLUSH BINARY LOGS")
        _wait_archived(archive, srv)
        bl = run_backup(ctx, mdb.BinlogSource(mdb.LOCAL, "appdb", str(archive), already={}))
        assert bl.ok and bl.facts["binlogs"]
        again = mdb.BinlogSource(mdb.LOCAL, "appdb", str(archive), already=dict(bl.facts["binlogs"]))  # type: ignore[call-overload]
        assert again.files == {}  # nothing new: nothing stored twice
    finally:
        arch.terminate()
        arch.wait(10)

    # restore the chain, then replay to the point between the two canary writes: by GTID here
    # (by timestamp in the lab test, tests/backup/test_lab_backup.py)
    for how, stop in (("gtid", {"stop_gtid": gtid_a}),):
        dest = tmp_path / f"restored-{how}"
        res = restore.restore_physical(ctx.key, ctx.local, ctx.catalog, inc.backup_id, dest)
        assert res.chain == [full.backup_id, inc.backup_id]
        # encrypted at rest like production: the pages on disk hide the rows, the backup carried
        # the key, and the restore left it beside the data, for root only
        assert b"before full" not in (dest / "canary" / "writes.ibd").read_bytes()
        assert Path(res.keyfile).read_text() == srv.keyfile.read_text()
        assert Path(res.keyfile).stat().st_mode & 0o777 == 0o600
        with scratch_server(dest, tmp_path / f"run-{how}") as s:
            assert s.query("SELECT id FROM canary.writes ORDER BY id").split() == ["1", "2"]
            work = tmp_path / f"bl-{how}"
            work.mkdir()
            files = restore.fetch_binlogs(ctx.key, ctx.local, restore.binlog_entries(ctx.catalog, "p"), work)
            restore.replay_binlogs(files, str(inc.facts["gtid"]), s.client(), **stop)  # type: ignore[arg-type]
            assert s.query("SELECT id FROM canary.writes ORDER BY id").split() == ["1", "2", "3"]

    with pytest.raises(Exception, match="not empty"):
        restore.restore_physical(ctx.key, ctx.local, ctx.catalog, inc.backup_id, tmp_path / "restored-gtid")


def test_logical_fallback_restores(ctx: Context, mariadb: Server, tmp_path: Path) -> None:
    mariadb.sql("CREATE DATABASE IF NOT EXISTS emr; CREATE TABLE IF NOT EXISTS emr.visits (id INT PRIMARY KEY);"
                " REPLACE INTO emr.visits VALUES (7)")
    r = run_backup(ctx, mdb.LogicalSource(mdb.LOCAL, "appdb", client_opts=mariadb.opts, databases=["emr"]))
    assert r.ok, r.error
    assert r.facts["gtid_before"]
    mariadb.sql("DROP DATABASE emr")
    e = ctx.catalog.get(r.backup_id)
    restore.unseal_to(ctx.key, ctx.local, e.manifest, "dump.sql",
                      ["mariadb", "--no-defaults", f"--socket={mariadb.sock}", "--user=root"])
    assert mariadb.sql("SELECT id FROM emr.visits").split() == ["7"]


def test_a_base_whose_manifest_is_gone_is_marked_missing_not_built_on(ctx: Context, mariadb: Server) -> None:
    """A rebuilt backup host keeps no backups, the catalog still lists them: an incremental on one
    of those would be unrestorable (the lab's first `./run lab` after a rebuild hit this)."""
    from dr.backup import engine
    from dr.backup.manifest import manifest_key

    kept = run_backup(ctx, mdb.PhysicalSource(mdb.LOCAL, "appdb", client_opts=mariadb.opts, host="test"))
    lost = run_backup(ctx, mdb.PhysicalSource(mdb.LOCAL, "appdb", client_opts=mariadb.opts, host="test"))
    assert kept.ok and lost.ok
    (ctx.local.root / manifest_key("p", lost.backup_id)).unlink()
    left = engine._drop_lost(ctx, ctx.catalog.entries("p"))
    assert [e.id for e in left] == [kept.backup_id]
    assert ctx.catalog.get(lost.backup_id).state == "missing"
    assert engine._last_good(left, ("full", "incremental")).id == kept.backup_id  # type: ignore[union-attr]


def test_a_lost_binlog_backup_is_neither_counted_stored_nor_replayed(ctx: Context, tmp_path: Path) -> None:
    """CI after a lab rebuild: the catalog still listed a binlog backup of the old backup host, whose
    mysql-bin.000002 was bigger than the new one; the restore picked it and failed on its
    vanished manifest, and a run would have skipped the new file of the same size."""
    from dr.backup import engine
    from dr.backup.manifest import manifest_key
    from inventories.errors import HcopsError

    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "mysql-bin.000001").write_bytes(b"old lineage " * 10)
    (archive / "mysql-bin.000002").write_bytes(b"old lineage " * 50)
    old = run_backup(ctx, mdb.BinlogSource(mdb.LOCAL, "appdb", str(archive), already={}))
    assert old.ok
    (ctx.local.root / manifest_key("p", old.backup_id)).unlink()  # the backup host was rebuilt
    (archive / "mysql-bin.000002").write_bytes(b"new " * 10)
    new = run_backup(ctx, mdb.BinlogSource(mdb.LOCAL, "appdb", str(archive), already={}))
    assert new.ok

    held = restore.binlog_entries(ctx.catalog, "p", ctx.local)
    assert [e.id for e in held] == [new.backup_id]
    assert len(restore.binlog_entries(ctx.catalog, "p")) == 2  # the catalog alone still lists both
    files = restore.fetch_binlogs(ctx.key, ctx.local, held, tmp_path / ".")
    assert {f.name: f.read_bytes() for f in files}["mysql-bin.000002"] == b"new " * 10

    left = engine._drop_lost(ctx, ctx.catalog.entries("p"), ("binlog",))
    assert [e.id for e in left] == [new.backup_id]
    assert ctx.catalog.get(old.backup_id).state == "missing"

    # a hole in the numbering (000003 never archived) is refused, not replayed past
    (archive / "mysql-bin.000004").write_bytes(b"after a hole")
    holed = run_backup(ctx, mdb.BinlogSource(mdb.LOCAL, "appdb", str(archive), already=dict(new.facts["binlogs"])))  # type: ignore[call-overload]
    assert holed.ok and list(holed.facts["binlogs"]) == ["mysql-bin.000004"]  # type: ignore[call-overload]
    with pytest.raises(HcopsError, match=r"binlog file\(s\) 000003 are not stored"):
        restore.fetch_binlogs(ctx.key, ctx.local, restore.binlog_entries(ctx.catalog, "p", ctx.local), tmp_path / "x")
