"""File trees: incremental by local index, only changes move, deletions kept by older backups,
restore whole or in part with every file's hash checked; tamper and disk-full faults."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dr.backup import filetree, restore, verify
from dr.backup.filetree import Index, TreeSource, index_path
from dr.backup.pipeline import Context, run_backup
from dr.backup.stores import DirStore
from inventories.errors import HcopsError


def _tree(root: Path, n: int = 30) -> None:
    for i in range(n):
        p = root / f"{i % 4:02x}" / f"{i:04d}.dcm"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(200 + i) + b"DICM")


def _run(ctx: Context, root: Path, idx: Index) -> tuple[str, TreeSource]:
    src = TreeSource(root, idx, parent=idx.last_backup(), source="pacs")
    r = run_backup(ctx, src)
    assert r.ok, r.error
    idx.apply(src.upserts, src.deletes, r.backup_id)
    return r.backup_id, src


@pytest.fixture()
def index(ctx: Context) -> Iterator[Index]:
    idx = Index(index_path("t", "p"))
    yield idx
    idx.close()


def test_incremental_only_changes_move_and_snapshots_restore(ctx: Context, index: Index, tmp_path: Path) -> None:
    root = tmp_path / "pacs"
    _tree(root)
    b1, s1 = _run(ctx, root, index)
    assert len(s1.upserts) == 30 and s1.deletes == []
    b2, s2 = _run(ctx, root, index)  # no change: nothing read
    assert s2.upserts == {} and s2.deletes == [] and s2.scanned == 30
    (root / "00" / "0000.dcm").write_bytes(b"changed image")
    os.utime(root / "00" / "0000.dcm", ns=(1, 1))
    (root / "01" / "0001.dcm").unlink()
    (root / "new").mkdir()
    (root / "new" / "x.dcm").write_bytes(b"new image")
    b3, s3 = _run(ctx, root, index)
    assert set(s3.upserts) == {"00/0000.dcm", "new/x.dcm"} and s3.deletes == ["01/0001.dcm"]
    assert ctx.catalog.get(b3).parent == b2 and ctx.catalog.get(b2).parent == b1

    whole = tmp_path / "r3"
    res = restore.restore_tree(ctx.key, ctx.local, ctx.catalog, b3, whole)
    assert res.ok and res.files == 30
    assert (whole / "00/0000.dcm").read_bytes() == b"changed image"
    assert not (whole / "01/0001.dcm").exists()
    diff = subprocess.run(["diff", "-r", str(root), str(whole)], capture_output=True, text=True, check=False)
    assert diff.returncode == 0, diff.stdout
    # the deleted file is not lost: the older snapshot still has it
    old = tmp_path / "r1"
    restore.restore_tree(ctx.key, ctx.local, ctx.catalog, b1, old, paths=["01/0001.dcm"])
    assert [p.name for p in old.rglob("*.dcm")] == ["0001.dcm"]
    part = tmp_path / "part"
    r = restore.restore_tree(ctx.key, ctx.local, ctx.catalog, b3, part, paths=["new"])
    assert r.files == 1 and (part / "new/x.dcm").read_bytes() == b"new image"
    with pytest.raises(HcopsError, match="no file in the backup matches"):
        restore.restore_tree(ctx.key, ctx.local, ctx.catalog, b3, tmp_path / "none", paths=["nope"])
    with pytest.raises(HcopsError, match="not empty"):
        restore.restore_tree(ctx.key, ctx.local, ctx.catalog, b3, whole)

    v = verify.verify(ctx.key, ctx.local, ctx.catalog, b3)
    assert v.ok and "30 files" in v.detail


def test_tampered_and_truncated_objects_are_caught_and_named(ctx: Context, index: Index, tmp_path: Path) -> None:
    root = tmp_path / "pacs"
    _tree(root, 5)
    bid, _ = _run(ctx, root, index)
    assert isinstance(ctx.local, DirStore)
    tar = ctx.local.path(f"p/{bid}/files.tar")
    data = bytearray(tar.read_bytes())
    data[40] ^= 0xFF
    tar.write_bytes(bytes(data))
    v = verify.verify(ctx.key, ctx.local, ctx.catalog, bid)
    assert not v.ok and any("files.tar" in p for p in v.problems)
    chg = ctx.local.path(f"p/{bid}/changes.json")
    chg.write_bytes(chg.read_bytes()[:-5])
    v = verify.verify(ctx.key, ctx.local, ctx.catalog, bid)
    assert any("changes.json" in p for p in v.problems)
    # the status no longer counts this place as verified
    from dr.backup.status import statuses_from
    st = statuses_from(ctx.catalog, ["p"])
    assert st[0].verified_where == ()
    # an edited manifest fails its signature
    man = ctx.local.path(f"p/{bid}/manifest.json")
    man.write_text(man.read_text().replace('"kind": "files"', '"kind": "full"'))
    with pytest.raises(HcopsError, match="signature"):
        restore.check_manifest(ctx.key, ctx.local, ctx.catalog.get(bid))


def test_disk_full_fails_cleanly_and_removes_partial_files(ctx: Context, index: Index, tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=False).returncode != 0:
        pytest.fail("cannot mount a small tmpfs (needs root, as the lab does)")
    try:
        root = tmp_path / "pacs"
        root.mkdir()
        (root / "big.dcm").write_bytes(os.urandom(600_000))
        ctx.local = DirStore(mnt)
        src = TreeSource(root, index, parent=None, source="pacs")
        r = run_backup(ctx, src)
        assert r.state == "failed" and "disk is full" in r.error
        assert [p for p in mnt.rglob("*") if p.is_file()] == []  # partial files removed
        assert ctx.catalog.get(r.backup_id).state == "failed"
        assert index.last_backup() is None  # the index did not move
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_missing_tree_is_a_clear_error(ctx: Context, index: Index, tmp_path: Path) -> None:
    with pytest.raises(HcopsError, match="does not exist"):
        TreeSource(tmp_path / "nope", index, parent=None)


def test_a_tree_on_another_host_indexes_and_restores_alike(ctx: Context, index: Index, tmp_path: Path) -> None:
    """The remote path (scan by python3, GNU tar of the changed files, re-packed here with their
    hashes) through a local shell: the same changes, the same restored tree."""
    shell = ["sh", "-c"]
    root = tmp_path / "pacs"
    _tree(root, 12)
    (root / "00" / "name with space.dcm").write_bytes(b"spaced")
    s1 = TreeSource(root, index, parent=None, source="pacs", shell=shell)
    r1 = run_backup(ctx, s1)
    assert r1.ok and len(s1.upserts) == 13 and s1.scanned == 13
    index.apply(s1.upserts, s1.deletes, r1.backup_id)
    (root / "01" / "0001.dcm").write_bytes(b"changed")
    os.utime(root / "01" / "0001.dcm", ns=(5, 5))
    (root / "02" / "0002.dcm").unlink()
    s2 = TreeSource(root, index, parent=r1.backup_id, source="pacs", shell=shell)
    r2 = run_backup(ctx, s2)
    assert r2.ok and set(s2.upserts) == {"01/0001.dcm"} and s2.deletes == ["02/0002.dcm"]
    assert s2.upserts["01/0001.dcm"][1] == 5  # the scanned mtime, in ns
    out = tmp_path / "r"
    res = restore.restore_tree(ctx.key, ctx.local, ctx.catalog, r2.backup_id, out)
    assert res.ok and res.files == 12
    diff = subprocess.run(["diff", "-r", str(root), str(out)], capture_output=True, text=True, check=False)
    assert diff.returncode == 0, diff.stdout
    with pytest.raises(HcopsError, match="does not exist or is not a directory on its host"):
        TreeSource(tmp_path / "nope", index, parent=None, shell=shell)


@pytest.mark.parametrize("name", ["../outside", "a/../../outside", "/etc/outside", "a//b", "./a"])
def test_a_member_whose_name_leaves_the_restore_directory_is_refused(tmp_path: Path, name: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    buf.seek(0)
    dest = tmp_path / "restore"
    dest.mkdir()
    with pytest.raises(HcopsError, match="escapes the restore directory"):
        filetree.extract(buf, {name: (3, 0, "0" * 64)}, dest)
    assert not (tmp_path / "outside").exists() and not list(dest.rglob("*"))


def _tar_of(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_extract_checks_every_file_across_batches_and_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small files go to the writers in batches, big ones are written inline: a wrong hash is named
    wherever it falls, and every file gets its content and mtime."""
    import hashlib
    monkeypatch.setattr(filetree, "SMALL", 4096)
    files = {f"{i % 7:02x}/{i:04d}.dcm": os.urandom(100 + i % 300) for i in range(filetree.BATCH_FILES * 2 + 9)}
    files["big/0001.dcm"] = os.urandom(50_000)
    meta = {n: (len(d), 10**9 * (i + 1), hashlib.sha256(d).hexdigest()) for i, (n, d) in enumerate(files.items())}
    late_small, big = list(files)[-2], "big/0001.dcm"  # the last small file (last batch); the inline one
    meta[late_small] = (*meta[late_small][:2], "0" * 64)
    meta[big] = (*meta[big][:2], "f" * 64)
    dest = tmp_path / "r"
    dest.mkdir()
    bad, written = filetree.extract(_tar_of(files), meta, dest)
    assert bad == sorted([late_small, big]) and written == set(files)
    for name, data in files.items():
        assert (dest / name).read_bytes() == data
        assert (dest / name).stat().st_mtime_ns == meta[name][1]


def test_a_restore_onto_a_full_disk_stops_with_a_clear_error(tmp_path: Path) -> None:
    import hashlib
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=False).returncode != 0:
        pytest.fail("cannot mount a small tmpfs (needs root, as the lab does)")
    try:
        files = {f"{i:02x}/{i:04d}.dcm": os.urandom(20_000) for i in range(200)}  # 4 MB onto 256 KB
        meta = {n: (len(d), 0, hashlib.sha256(d).hexdigest()) for n, d in files.items()}
        with pytest.raises(HcopsError, match="the disk is full") as err:
            filetree.extract(_tar_of(files), meta, mnt)
        assert "remove them before retrying" in (err.value.hint or "")
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
