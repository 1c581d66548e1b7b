"""One backup through the pipeline: source -> zstd -> AES-256-GCM -> sha256 -> local store -> S3.

The source streams into the sealing writer, which streams into the local store (nothing is
staged on the controller); the local copy's checksum is confirmed on the store, then the local
copy is uploaded offsite and confirmed there. The backup is `good` only when every destination
the policy names has confirmed every object; a failure leaves it `failed` (or `partial`: local
copy good, offsite not yet) and the next run resumes the offsite upload from what the server holds.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Protocol

from dr.backup.catalog import Catalog, now_iso
from dr.backup.envelope import SealingWriter
from dr.backup.keys import RegionKey, new_data_key
from dr.backup.manifest import Manifest, ObjectEntry, manifest_key, object_key
from dr.backup.s3store import S3Store, UploadReport
from dr.backup.stores import DirStore, SshDirStore, StoreError, part_reader, remote_part_sender
from inventories.errors import HcopsError

Progress = Callable[[str, int, int | None], None]  # (label, bytes done now, total or None)


class Source(Protocol):
    """What a backup engine (MariaDB, file tree, ...) hands the pipeline."""

    kind: str
    source: str
    parent: str | None

    def objects(self) -> Iterator[tuple[str, Callable[[IO[bytes]], None]]]:
        """(object name, writer of its plaintext) in order; may add to `facts` while writing."""
        ...

    @property
    def facts(self) -> dict[str, object]: ...


@dataclass
class Context:
    region: str
    policy: str
    key: RegionKey
    local: DirStore | SshDirStore
    offsite: S3Store | None
    catalog: Catalog
    progress: Progress | None = None


@dataclass
class RunResult:
    backup_id: str
    policy: str
    kind: str
    state: str
    stored_bytes: int = 0
    plain_bytes: int = 0
    seconds: float = 0.0
    uploads: list[UploadReport] = field(default_factory=list)
    error: str = ""
    fix: str = ""
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state == "good"


def new_backup_id(policy: str, kind: str, at: datetime | None = None) -> str:
    at = at or datetime.now(UTC)
    return f"{policy}.{kind}.{at.strftime('%Y%m%dT%H%M%SZ')}.{secrets.token_hex(2)}"


class _Counter:
    def __init__(self, out: IO[bytes], cb: Callable[[int], None] | None) -> None:
        self.out, self.cb = out, cb

    def write(self, data: bytes) -> int:
        n = self.out.write(data)
        if self.cb:
            self.cb(len(data))
        return n


def run_backup(ctx: Context, source: Source) -> RunResult:  # noqa: PLR0915
    t0 = datetime.now(UTC)
    bid = new_backup_id(ctx.policy, source.kind, t0)
    dk = new_data_key()
    m = Manifest(backup_id=bid, region=ctx.region, policy=ctx.policy, kind=source.kind, source=source.source,
                 started_at=t0.isoformat(timespec="seconds"), parent=source.parent,
                 wrapped_key=ctx.key.wrap(dk, bid), key_fingerprint=ctx.key.fingerprint)
    ctx.catalog.record(m, "running")
    res = RunResult(backup_id=bid, policy=ctx.policy, kind=source.kind, state="running")
    written: list[str] = []
    try:
        for name, produce in source.objects():
            key = object_key(ctx.policy, bid, name)
            prog = ctx.progress
            cb = (lambda n, _name=name, _p=prog: _p(f"{_name} (read)", n, None)) if prog else None
            with ctx.local.writer(key) as fh:
                written.append(key)
                sealer = SealingWriter(fh, dk, name, progress=cb)
                produce(sealer)  # type: ignore[arg-type]
                sealed = sealer.close()
            on_store = ctx.local.sha256(key)
            if on_store != sealed.sha256:
                raise StoreError(f"local store: {key} reads back as {on_store}, written as {sealed.sha256}",
                                 "check the backup host's disk; the backup is not marked good")
            m.objects.append(ObjectEntry(name, sealed.stored_bytes, sealed.sha256, sealed.plain_bytes))
            res.plain_bytes += sealed.plain_bytes
        m.facts = dict(source.facts)
        m.finished_at = now_iso()
        m.sign(ctx.key)
        ctx.local.put_bytes(manifest_key(ctx.policy, bid), m.to_json().encode())
        written.append(manifest_key(ctx.policy, bid))
        ctx.catalog.record(m, "partial" if ctx.offsite else "good")
        ctx.catalog.confirm(bid, "local")
    except (HcopsError, OSError) as exc:
        _cleanup(ctx.local, written)
        err = exc if isinstance(exc, HcopsError) else HcopsError(str(exc), "see the message above")
        m.finished_at = now_iso()
        ctx.catalog.record(m, "failed", err.message)
        res.state, res.error, res.fix = "failed", err.message, err.hint
        res.seconds = (datetime.now(UTC) - t0).total_seconds()
        return res
    except BaseException:
        _cleanup(ctx.local, written)
        ctx.catalog.record(m, "failed", "interrupted")
        raise
    res.stored_bytes = m.stored_bytes
    res.facts = m.facts
    if ctx.offsite:
        try:
            res.uploads = upload_offsite(ctx, m)
            ctx.catalog.set_state(bid, "good")
        except HcopsError as exc:
            ctx.catalog.set_state(bid, "partial", exc.message)
            res.state, res.error, res.fix = "partial", exc.message, exc.hint
            res.seconds = (datetime.now(UTC) - t0).total_seconds()
            return res
    res.state = "good"
    res.seconds = (datetime.now(UTC) - t0).total_seconds()
    return res


def _cleanup(store: DirStore | SshDirStore, keys: list[str]) -> None:
    for k in keys:
        with contextlib.suppress(HcopsError, OSError):
            store.delete(k)


def upload_offsite(ctx: Context, m: Manifest) -> list[UploadReport]:
    """Copy a backup's local objects offsite (resuming), confirm them, then its manifest."""
    assert ctx.offsite is not None
    reports = []
    for o in m.objects:
        key = object_key(m.policy, m.backup_id, o.name)
        size, read = part_reader(ctx.local, key)
        if size != o.size:
            raise StoreError(f"local copy of {key} has {size} bytes, the manifest says {o.size}",
                             "verify the local copy: `hcops backup verify`")
        prog = ctx.progress
        if prog:
            ctx.offsite.on_part = lambda n, _k=o.name, _s=size, _p=prog: _p(f"{_k} (offsite)", n, _s)
        remote = remote_part_sender(ctx.local, key, ctx.offsite.s.bandwidth_bytes_s) \
            if isinstance(ctx.local, SshDirStore) else None
        reports.append(ctx.offsite.upload(key, size, read, o.sha256, remote=remote))
    ctx.offsite.put_bytes(manifest_key(m.policy, m.backup_id), m.to_json().encode())
    ctx.catalog.confirm(m.backup_id, "offsite")
    return reports


def resume_pending(ctx: Context) -> list[RunResult]:
    """Finish the offsite copies of earlier runs that stopped half way (state `partial`)."""
    out = []
    for e in ctx.catalog.entries(ctx.policy):
        if e.state != "partial" or ctx.offsite is None:
            continue
        r = RunResult(backup_id=e.id, policy=e.policy, kind=e.kind, state="partial", stored_bytes=e.stored_bytes)
        try:
            r.uploads = upload_offsite(ctx, e.manifest)
            ctx.catalog.set_state(e.id, "good")
            r.state = "good"
        except HcopsError as exc:
            r.error, r.fix = exc.message, exc.hint
        out.append(r)
    return out

