"""The offsite store against a real SeaweedFS: multipart in parallel, resume after the endpoint
went away mid-upload, clear failure while it is down, object lock, wrong credentials."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from dr.backup.s3store import S3Settings, S3Store, read_credentials
from dr.backup.stores import StoreError
from tests.backup.conftest import Weed

PART = 5 << 20


def _store(weed: Weed, bucket: str = "offsite", **kw: object) -> S3Store:
    key, secret = read_credentials(weed.ini)
    return S3Store(S3Settings(endpoint=weed.endpoint, bucket=bucket, access_key=key, secret_key=secret,
                              part_size=PART, **kw))  # type: ignore[arg-type]


def _file(tmp_path: Path, mb: int) -> tuple[Path, str]:
    p = tmp_path / "obj"
    p.write_bytes(os.urandom(mb << 20))
    return p, hashlib.sha256(p.read_bytes()).hexdigest()


def test_multipart_parallel_confirmed_and_skipped_when_present(weed: Weed, tmp_path: Path) -> None:
    path, sha = _file(tmp_path, 12)
    s = _store(weed, parallel=3, lock_days=1)
    rep = s.upload_file("t/multi", path, sha)
    assert rep.parts == 3 and not rep.resumed and not rep.skipped
    assert rep.locked_until is not None
    assert s.sha256("t/multi") == sha
    again = s.upload_file("t/multi", path, sha)
    assert again.skipped
    # object lock (COMPLIANCE) really refuses to delete the locked version
    c = s.client
    ver = c.head_object(Bucket="offsite", Key="t/multi")["VersionId"]
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError):
        c.delete_object(Bucket="offsite", Key="t/multi", VersionId=ver)


def test_endpoint_down_mid_upload_fails_clearly_then_resumes(weed: Weed, tmp_path: Path) -> None:
    path, sha = _file(tmp_path, 20)
    sent = []
    stopped = threading.Event()

    def on_part(n: int) -> None:
        sent.append(n)
        if len(sent) == 2 and not stopped.is_set():
            stopped.set()
            weed.stop()  # the endpoint goes away after two parts

    s = _store(weed, parallel=1, retry_for_s=3)
    s.on_part = on_part
    try:
        with pytest.raises(StoreError) as exc:
            s.upload_file("t/resume", path, sha)
        assert "unreachable" in exc.value.message and "resumes" in exc.value.hint
    finally:
        weed.start(buckets=["offsite"])
    s2 = _store(weed, parallel=2)
    rep = s2.upload_file("t/resume", path, sha)
    assert rep.resumed and rep.parts == 4 and rep.parts_reused >= 2
    assert s2.sha256("t/resume") == sha  # no damaged object
    ups = s2.client.list_multipart_uploads(Bucket="offsite", Prefix="t/resume").get("Uploads", [])
    assert ups == []  # no duplicate left behind
    assert s2.list("t/resume") == ["t/resume"]


def test_wrong_credentials_are_refused_clearly(weed: Weed, tmp_path: Path) -> None:
    s = S3Store(S3Settings(endpoint=weed.endpoint, bucket="offsite", access_key=weed.creds[0],
                           secret_key="wrong-secret"))
    with pytest.raises(StoreError, match="refused") as exc:
        s.put_bytes("t/x", b"x")
    assert "credentials" in exc.value.hint


def test_missing_bucket_is_a_clear_error(weed: Weed) -> None:
    with pytest.raises(StoreError, match="no bucket"):
        _store(weed, bucket="nope-not-here").check_bucket()
