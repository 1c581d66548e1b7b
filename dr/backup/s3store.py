"""The offsite store: S3 through boto3, resumable multipart, parts in parallel, capped bandwidth.

The same code serves the lab's SeaweedFS, a multi-node SeaweedFS cluster, Ceph RGW or a
provider's S3: only the endpoint and the credentials file (from the region's outputs, or given
on a fresh controller) change. Resuming needs no state of our own: an interrupted upload is
found again with ListMultipartUploads, and each part the server already holds is kept when its
ETag (the server's own MD5 of the part) matches the local bytes. An object is confirmed when
the server's multipart ETag equals the one computed from the local parts.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import hashlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from dr.backup.stores import StoreError

PART = 8 << 20
RETRYABLE = ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError")


class TokenBucket:
    """A shared byte budget per second across the upload threads (the bandwidth cap)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.lock = threading.Lock()
        self.next_free = time.monotonic()

    def take(self, n: int) -> None:
        if not self.rate:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_free)
            self.next_free = start + n / self.rate
            wait = self.next_free - now
        if wait > 0:
            time.sleep(wait)


@dataclass
class UploadReport:
    key: str
    size: int
    parts: int = 0
    parts_reused: int = 0
    resumed: bool = False
    skipped: bool = False  # the complete object was already there
    seconds: float = 0.0
    retries: int = 0
    locked_until: str | None = None


@dataclass
class S3Settings:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region_name: str = "us-east-1"
    part_size: int = PART
    parallel: int = 4
    bandwidth_bytes_s: float | None = None
    retry_for_s: float = 30.0  # keep retrying an unreachable endpoint this long, then fail clearly
    lock_days: int | None = None  # retention for object lock; None: bucket default / none
    extra: dict[str, Any] = field(default_factory=dict)


def read_credentials(path: Path) -> tuple[str, str]:
    cp = configparser.ConfigParser()
    try:
        cp.read_string(path.read_text())
        sect = cp["default"]
        return sect["aws_access_key_id"], sect["aws_secret_access_key"]
    except (OSError, KeyError, configparser.Error):
        raise StoreError(f"cannot read S3 credentials from {path}",
                         "pass an ini file with [default] aws_access_key_id and aws_secret_access_key") from None


# Sends one part from where the bytes are (the backup host), so they cross the line from there:
# (part number, offset, length, presigned URL, MD5 the server already holds or None) -> (MD5 hex, sent)
RemotePart = Callable[[int, int, int, str, str | None], tuple[str, bool]]


def _etag(parts_md5: list[bytes], multipart: bool = False) -> str:
    if len(parts_md5) == 1 and not multipart:
        return parts_md5[0].hex()
    return f"{hashlib.md5(b''.join(parts_md5)).hexdigest()}-{len(parts_md5)}"  # noqa: S324 (S3's ETag)


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return type(exc).__name__


class S3Store:
    where = "offsite"

    def __init__(self, s: S3Settings, on_part: Callable[[int], None] | None = None) -> None:
        self.s = s
        self.on_part = on_part
        self.cap = TokenBucket(s.bandwidth_bytes_s)
        cfg = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=30,
                     signature_version="s3v4",
                     max_pool_connections=max(10, s.parallel * 2), s3={"addressing_style": "path"},
                     request_checksum_calculation="when_required", response_checksum_validation="when_required")
        self.client: Any = boto3.client("s3", endpoint_url=s.endpoint, region_name=s.region_name,
                                        aws_access_key_id=s.access_key, aws_secret_access_key=s.secret_key,
                                        config=cfg)
        self._lock_checked = False
        self._lock_enabled = False

    # --- retrying wrapper: the endpoint may be down for a while (the line cut, the server restarted)
    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + self.s.retry_for_s
        delay = 0.5
        while True:
            try:
                return fn()
            except (BotoCoreError, ClientError) as exc:
                code = _code(exc)
                if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"):
                    raise StoreError(f"offsite store {self.s.endpoint}: {what} refused ({code})",
                                     "check the bucket credentials file (--s3-credentials)") from None
                if code == "NoSuchBucket":
                    raise StoreError(f"offsite store has no bucket {self.s.bucket}",
                                     "run `hcops infra up` (it creates the model's buckets)") from None
                if isinstance(exc, ClientError) and code not in ("", "InternalError", "ServiceUnavailable",
                                                                  "SlowDown", "503", "500"):
                    raise
                if time.monotonic() > deadline:
                    raise StoreError(f"offsite store {self.s.endpoint} unreachable for {self.s.retry_for_s:.0f} s "
                                     f"during {what} ({code}); parts already sent are kept",
                                     "rerun `hcops backup run` when the endpoint is back: the upload resumes") from None
                time.sleep(delay)
                delay = min(delay * 2, 5)

    def lock_enabled(self) -> bool:
        if not self._lock_checked:
            try:
                cfg = self._call("object lock lookup",
                                 lambda: self.client.get_object_lock_configuration(Bucket=self.s.bucket))
                self._lock_enabled = cfg.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
            except ClientError:
                self._lock_enabled = False
            self._lock_checked = True
        return self._lock_enabled

    def _lock_args(self) -> dict[str, Any]:
        if self.s.lock_days and self.lock_enabled():
            until = datetime.now(UTC) + timedelta(days=self.s.lock_days)
            return {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}
        return {}

    def check_bucket(self) -> None:
        """Fail early and clearly when the bucket is not there (some servers would create it on write)."""
        try:
            self._call("bucket lookup", lambda: self.client.head_bucket(Bucket=self.s.bucket))
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
                raise StoreError(f"offsite store has no bucket {self.s.bucket}",
                                 "run `hcops infra up` (it creates the model's buckets)") from None
            raise

    # --- objects
    def head(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(self._call(f"head {key}", lambda: self.client.head_object(Bucket=self.s.bucket, Key=key)))
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def upload_file(self, key: str, path: Path, sha256: str) -> UploadReport:
        with open(path, "rb") as fh:
            fd = fh.fileno()
            return self.upload(key, path.stat().st_size, lambda off, n: os.pread(fd, n, off), sha256)

    def upload(self, key: str, size: int, read: Callable[[int, int], bytes], sha256: str,  # noqa: PLR0915
               remote: RemotePart | None = None) -> UploadReport:
        """Upload `size` bytes read by `read(offset, length)`, resuming an interrupted upload of the same
        key; confirmed by the server's own ETag against the MD5s of the bytes read here."""
        t0 = time.monotonic()
        rep = UploadReport(key=key, size=size)
        ps = self.s.part_size
        nparts = max(1, -(-size // ps))
        rep.parts = nparts

        def part(i: int) -> bytes:
            data = read(i * ps, min(ps, size - i * ps))
            if len(data) != min(ps, size - i * ps):
                raise StoreError(f"{key}: the local copy is shorter than its manifest says",
                                 "run `hcops backup verify` on the local copy")
            return data

        have = self.head(key)
        if have and have.get("Metadata", {}).get("sha256") == sha256 and int(have.get("ContentLength", -1)) == size:
            if remote:
                md5s = [bytes.fromhex(remote(i + 1, i * ps, min(ps, size - i * ps), "", "")[0])
                        for i in range(nparts)]
            else:
                md5s = [hashlib.md5(part(i)).digest() for i in range(nparts)]  # noqa: S324 (S3's ETag)
            if have.get("ETag", "").strip('"') in (_etag(md5s), _etag(md5s, multipart=True)):
                rep.skipped = True
                rep.seconds = time.monotonic() - t0
                return rep
        lock = self._lock_args()
        if lock:
            rep.locked_until = lock["ObjectLockRetainUntilDate"].isoformat()
        if nparts == 1 and remote is None:
            body = part(0)
            md5s = [hashlib.md5(body).digest()]  # noqa: S324
            self.cap.take(len(body))
            self._call(f"put {key}", lambda: self.client.put_object(
                Bucket=self.s.bucket, Key=key, Body=body, Metadata={"sha256": sha256},
                ContentMD5=base64.b64encode(md5s[0]).decode(), **lock))
            if self.on_part:
                self.on_part(len(body))
        else:
            upload_id, held = self._find_upload(key)
            if upload_id:
                rep.resumed = True
            else:
                upload_id = self._call(f"start upload of {key}", lambda: self.client.create_multipart_upload(
                    Bucket=self.s.bucket, Key=key, Metadata={"sha256": sha256}, **lock))["UploadId"]
            md5s = [b""] * nparts
            reused = threading.Lock()

            def send_remote(i: int) -> None:
                assert remote is not None
                n = min(ps, size - i * ps)
                url = self.client.generate_presigned_url("upload_part", ExpiresIn=3600, Params={
                    "Bucket": self.s.bucket, "Key": key, "UploadId": upload_id, "PartNumber": i + 1})
                deadline = time.monotonic() + self.s.retry_for_s
                while True:
                    try:
                        md5hex, sent = remote(i + 1, i * ps, n, url, held.get(i + 1))
                        break
                    except StoreError as exc:
                        if time.monotonic() > deadline:
                            raise StoreError(f"offsite store {self.s.endpoint} unreachable from the backup host for "
                                             f"{self.s.retry_for_s:.0f} s (part {i + 1} of {key}: {exc.message}); "
                                             "parts already sent are kept",
                                             "rerun `hcops backup run` when the endpoint is back: the upload resumes"
                                             ) from None
                        time.sleep(1)
                md5s[i] = bytes.fromhex(md5hex)
                if not sent:
                    with reused:
                        rep.parts_reused += 1
                if self.on_part:
                    self.on_part(n)

            def send(i: int) -> None:
                body = part(i)
                md5 = hashlib.md5(body).digest()  # noqa: S324 (S3's ETag)
                md5s[i] = md5
                if held.get(i + 1) == md5.hex():
                    with reused:
                        rep.parts_reused += 1
                else:
                    self.cap.take(len(body))
                    self._call(f"part {i + 1} of {key}", lambda: self.client.upload_part(
                        Bucket=self.s.bucket, Key=key, UploadId=upload_id, PartNumber=i + 1, Body=body,
                        ContentMD5=base64.b64encode(md5).decode()))
                if self.on_part:
                    self.on_part(len(body))

            with ThreadPoolExecutor(self.s.parallel) as pool:
                list(pool.map(send_remote if remote else send, range(nparts)))
            parts = [{"PartNumber": i + 1, "ETag": f'"{md5s[i].hex()}"'} for i in range(nparts)]
            self._call(f"complete {key}", lambda: self.client.complete_multipart_upload(
                Bucket=self.s.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}))
        want_etag = _etag(md5s, multipart=nparts > 1 or remote is not None)
        got = self.head(key)
        if not got or got.get("ETag", "").strip('"') != want_etag:
            raise StoreError(f"offsite object {key}: the server's checksum {got and got.get('ETag')} does not match "
                             f"the local {want_etag}; not marked good", "rerun `hcops backup run` to upload it again")
        rep.seconds = time.monotonic() - t0
        return rep

    def _find_upload(self, key: str) -> tuple[str | None, dict[int, str]]:
        ups = self._call("list uploads", lambda: self.client.list_multipart_uploads(
            Bucket=self.s.bucket, Prefix=key)).get("Uploads", [])
        ups = [u for u in ups if u["Key"] == key]
        if not ups:
            return None, {}
        ups.sort(key=lambda u: u["Initiated"])
        newest = ups[-1]
        for old in ups[:-1]:
            with contextlib.suppress(ClientError, BotoCoreError):
                self.client.abort_multipart_upload(Bucket=self.s.bucket, Key=key, UploadId=old["UploadId"])
        held: dict[int, str] = {}
        marker = 0
        while True:
            page = self._call("list parts", lambda m=marker: self.client.list_parts(  # type: ignore[misc]
                Bucket=self.s.bucket, Key=key, UploadId=newest["UploadId"], PartNumberMarker=m))
            for p in page.get("Parts", []):
                held[int(p["PartNumber"])] = str(p["ETag"]).strip('"')
            if not page.get("IsTruncated"):
                break
            marker = int(page["NextPartNumberMarker"])
        return str(newest["UploadId"]), held

    # --- the Store protocol (manifests, catalog copy, reads for restore)
    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[IO[bytes]]:
        buf = io.BytesIO()
        yield buf
        self.put_bytes(key, buf.getvalue())

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        try:
            obj = self._call(f"get {key}", lambda: self.client.get_object(Bucket=self.s.bucket, Key=key))
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise StoreError(f"offsite bucket {self.s.bucket} has no object {key}",
                                 "see `hcops backup show` for where the backup is") from None
            raise
        body = obj["Body"]
        try:
            yield body
        finally:
            body.close()

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    def put_bytes(self, key: str, data: bytes) -> None:
        sha = hashlib.sha256(data).hexdigest()
        self._call(f"put {key}", lambda: self.client.put_object(
            Bucket=self.s.bucket, Key=key, Body=data, Metadata={"sha256": sha},
            ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode()))  # noqa: S324

    def sha256(self, key: str) -> str | None:
        """The sha256 of the stored bytes, read back from the server (what verify uses)."""
        try:
            with self.open(key) as fh:
                h = hashlib.sha256()
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
                return h.hexdigest()
        except StoreError:
            return None

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = self._call("list", lambda t=token: self.client.list_objects_v2(  # type: ignore[misc]
                Bucket=self.s.bucket, Prefix=prefix, **t))
            keys += [o["Key"] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return sorted(keys)
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def delete(self, key: str) -> None:
        """Remove the current version (a delete marker where the bucket versions; locked versions stay
        until their retention passes, as the bucket enforces)."""
        self._call(f"delete {key}", lambda: self.client.delete_object(Bucket=self.s.bucket, Key=key))
