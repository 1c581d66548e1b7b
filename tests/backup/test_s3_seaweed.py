"""The offsite store against a real SeaweedFS: multipart in parallel, object lock, wrong credentials,
parts sent by the backup host itself. (The endpoint going away mid-upload and the resume are in
test_offsite_pipeline.py.)"""

from __future__ import annotations

import hashlib
import os
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


def test_wrong_credentials_are_refused_clearly(weed: Weed, tmp_path: Path) -> None:
    s = S3Store(S3Settings(endpoint=weed.endpoint, bucket="offsite", access_key=weed.creds[0],
                           secret_key="wrong-secret"))
    with pytest.raises(StoreError, match="refused") as exc:
        s.put_bytes("t/x", b"x")
    assert "credentials" in exc.value.hint


def test_missing_bucket_is_a_clear_error(weed: Weed) -> None:
    with pytest.raises(StoreError, match="no bucket"):
        _store(weed, bucket="nope-not-here").check_bucket()


def test_backup_host_sends_parts_itself_via_presigned_urls(weed: Weed, tmp_path: Path) -> None:
    """The ssh store path (here through a local shell): the host holding the backup sends each part
    with curl to a presigned URL; the second upload finds the object there and sends nothing."""
    from dr.backup.stores import SshDirStore, part_reader, remote_part_sender
    store = SshDirStore(["sh", "-c"], str(tmp_path / "bk"), "localhost")
    data = os.urandom((11 << 20) + 5)
    with store.writer("p/b1/obj") as fh:
        fh.write(data)
    assert store.list("p") == ["p/b1/obj"]
    sha = hashlib.sha256(data).hexdigest()
    assert store.sha256("p/b1/obj") == sha
    s = _store(weed, parallel=2, bandwidth_bytes_s=50e6)
    size, read = part_reader(store, "p/b1/obj")
    assert size == len(data)
    rep = s.upload("t/remote", size, read, sha, remote=remote_part_sender(store, "p/b1/obj", 50e6))
    assert rep.parts == 3 and rep.parts_reused == 0
    assert s.sha256("t/remote") == sha
    again = s.upload("t/remote", size, read, sha, remote=remote_part_sender(store, "p/b1/obj"))
    assert again.skipped
    store.delete("p/b1/obj")
    assert store.list("p") == []


def test_backup_host_resumes_from_the_parts_the_server_holds_and_keeps_urls_off_argv(
        weed: Weed, tmp_path: Path) -> None:
    """An upload cut after its first part: the next run finds the upload, the host checksums each
    part and sends only the two the server lacks (parts_reused counts the one it skipped), in one
    round trip each; no signed URL is ever on a command line (the store's shell is wrapped to
    record every script it is given)."""
    from dr.backup.stores import SshDirStore, part_reader, remote_part_sender
    scripts = tmp_path / "scripts.log"
    wrapper = tmp_path / "sh-logged"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n---\\n" "$1" >> {scripts}\nexec sh -c "$1"\n')
    wrapper.chmod(0o755)
    store = SshDirStore([str(wrapper)], str(tmp_path / "bk"), "localhost")
    data = os.urandom((2 * PART) + 77)
    with store.writer("p/obj") as fh:
        fh.write(data)
    sha = hashlib.sha256(data).hexdigest()
    s = _store(weed, parallel=2)
    c = s.client
    up = c.create_multipart_upload(Bucket="offsite", Key="t/resumed", Metadata={"sha256": sha})["UploadId"]
    c.upload_part(Bucket="offsite", Key="t/resumed", UploadId=up, PartNumber=1, Body=data[:PART])
    size, read = part_reader(store, "p/obj")
    rep = s.upload("t/resumed", size, read, sha, remote=remote_part_sender(store, "p/obj"))
    assert rep.resumed and rep.parts == 3 and rep.parts_reused == 1
    assert s.sha256("t/resumed") == sha
    logged = scripts.read_text()
    sends = [sc for sc in logged.split("\n---\n") if "md5sum" in sc]
    assert len(sends) == 3 and all("read -r url" in sc for sc in sends)  # one round trip per part
    assert "X-Amz-Signature" not in logged and "Signature=" not in logged


def test_private_tmp_never_hides_the_server_or_its_files(tmp_path: Path) -> None:
    from infra.lab.s3 import private_tmp_prefix

    assert private_tmp_prefix(Path("/var/lib/hcops/lab/s3"), Path("/var/lib/hcops/lab/s3.json"))[0] == "unshare"
    # a checkout cloned under /tmp has its .venv (and `weed`) there: a private /tmp would hide it
    assert private_tmp_prefix(Path("/var/lib/hcops/lab/s3"), Path("/tmp/clone/.venv/bin/weed")) == []
