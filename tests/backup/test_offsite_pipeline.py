"""The whole pipeline to a real SeaweedFS: good only when offsite confirms; an upload cut off
resumes on the next run; a fresh controller with only the exported key and the bucket
credentials rebuilds the catalog and restores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dr.backup import restore
from dr.backup.catalog import Catalog
from dr.backup.engine import rebuild_catalog
from dr.backup.filetree import Index, TreeSource, index_path
from dr.backup.keys import RegionKey, export_key, load_key
from dr.backup.pipeline import Context, resume_pending, run_backup
from dr.backup.s3store import S3Settings, S3Store, read_credentials
from dr.backup.status import statuses_from
from inventories.errors import HcopsError
from tests.backup.conftest import Weed


def _offsite(weed: Weed, **kw: object) -> S3Store:
    key, secret = read_credentials(weed.ini)
    return S3Store(S3Settings(endpoint=weed.endpoint, bucket="offsite", access_key=key, secret_key=secret,
                              part_size=5 << 20, lock_days=1, **kw))  # type: ignore[arg-type]


def test_offsite_resume_and_fresh_controller_restore(ctx: Context, weed: Weed, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ctx.policy = f"pacs-{os.getpid()}-{tmp_path.name[-6:]}"
    root = tmp_path / "pacs"
    (root / "ab").mkdir(parents=True)
    (root / "ab" / "study1.dcm").write_bytes(os.urandom(11 << 20))  # incompressible: 3 parts offsite
    (root / "ab" / "study2.dcm").write_bytes(b"small")
    idx = Index(index_path("t", ctx.policy))

    # the endpoint goes away after the first offsite part: local copy good, offsite not, state partial
    calls = []

    def cut(n: int) -> None:
        calls.append(n)
        if len(calls) == 1:
            weed.stop(grace=2)  # the endpoint dies (killed if it does not stop at once)

    ctx.offsite = _offsite(weed, parallel=1, retry_for_s=3)
    ctx.offsite.on_part = cut
    src = TreeSource(root, idx, parent=None, source="pacs")
    try:
        r = run_backup(ctx, src)
    finally:
        weed.start(buckets=["offsite"])
    assert r.state == "partial" and "unreachable" in r.error
    e = ctx.catalog.get(r.backup_id)
    assert e.state == "partial" and set(e.places) == {"local"}
    # the next run finishes it from what the server holds
    ctx.offsite = _offsite(weed)
    [done] = resume_pending(ctx)
    assert done.ok and done.uploads[0].resumed and done.uploads[0].parts_reused >= 1
    e = ctx.catalog.get(r.backup_id)
    assert e.state == "good" and set(e.places) == {"local", "offsite"}
    idx.apply(src.upserts, src.deletes, r.backup_id)
    idx.close()
    st = statuses_from(ctx.catalog, [ctx.policy])[0]
    assert st.verified_where == ("local", "offsite") and st.age_s is not None and st.age_s < 600

    # key custody: a fresh controller has only the exported key and the bucket credentials
    exported = tmp_path / "offline" / "lab-backup.key"
    exported.parent.mkdir()
    export_key(ctx.key, exported)
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "fresh-controller"))
    with pytest.raises(HcopsError, match="no backup key"):
        load_key("t")
    key = load_key("t", key_file=exported)
    fresh = Catalog.for_region("t")
    offsite = _offsite(weed)
    assert rebuild_catalog(fresh, key, offsite) >= 1
    dest = tmp_path / "restored"
    res = restore.restore_tree(key, offsite, fresh, r.backup_id, dest)
    assert res.ok and (dest / "ab/study1.dcm").read_bytes() == (root / "ab/study1.dcm").read_bytes()
    # a wrong key is a clear error, not garbage
    wrong = RegionKey("t", os.urandom(32))
    with pytest.raises(HcopsError, match=r"signature|wrong key"):
        restore.restore_tree(wrong, offsite, fresh, r.backup_id, tmp_path / "wrong")
    fresh.close()
