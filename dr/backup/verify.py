"""Verify: read back what a store holds and prove it restores.

Every object's sha256 is recomputed from the store's bytes and compared with the signed
manifest; every frame is opened with the key (authentication catches tampering the checksum
alone would not explain); then the backup is restored into scratch space and checked: a file
tree's files against their hashes (a PACS tree's also parsed as DICOM, holding every
instance Orthanc listed at backup time, and ingested by a scratch Orthanc that must then list
them all), a MariaDB backup by starting a scratch server on it and
counting the canary's rows. The result is recorded in the catalog; a failure names the object.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dr.backup import pacs, restore
from dr.backup.catalog import Catalog
from dr.backup.envelope import CorruptObject, open_frames
from dr.backup.keys import RegionKey
from dr.backup.manifest import Manifest, object_key
from dr.backup.scratch import scratch_server
from dr.backup.stores import Store
from inventories.errors import HcopsError


@dataclass
class VerifyResult:
    backup_id: str
    place: str
    ok: bool = True
    checked_objects: int = 0
    problems: list[str] = field(default_factory=list)
    detail: str = ""


def verify(key: RegionKey, store: Store, catalog: Catalog, backup_id: str, *, restore_check: bool = True,
           scratch_dir: Path | None = None, canary_sql: str | None = None) -> VerifyResult:
    e = catalog.get(backup_id)
    res = VerifyResult(backup_id=backup_id, place=store.where)
    try:
        m = restore.check_manifest(key, store, e)
        dk = key.unwrap(m.wrapped_key, m.backup_id)
        for o in m.objects:
            k = object_key(m.policy, m.backup_id, o.name)
            got = store.sha256(k)
            res.checked_objects += 1
            if got is None:
                res.problems.append(f"{o.name}: missing at {store.where}")
                continue
            if got != o.sha256:
                res.problems.append(f"{o.name}: sha256 {got[:12]}… differs from the manifest's {o.sha256[:12]}…")
                continue
            try:
                with store.open(k) as fh:
                    for _chunk in open_frames(fh, dk, o.name):
                        pass
            except CorruptObject as exc:
                res.problems.append(exc.message)
        if not res.problems and restore_check:
            res.detail = _restore_check(key, store, catalog, m, scratch_dir=scratch_dir, canary_sql=canary_sql)
    except HcopsError as exc:
        res.problems.append(exc.message)
    res.ok = not res.problems
    catalog.add_verification(backup_id, store.where, res.ok, res.detail if res.ok else "; ".join(res.problems))
    return res


def _restore_check(key: RegionKey, store: Store, catalog: Catalog, m: Manifest, *,
                   scratch_dir: Path | None, canary_sql: str | None) -> str:
    backup_id, kind = m.backup_id, m.kind
    with tempfile.TemporaryDirectory(prefix="hcops-verify-", dir=scratch_dir) as tmp:
        dest = Path(tmp) / "restore"
        if kind == "files":
            r = restore.restore_tree(key, store, catalog, backup_id, dest)
            if r.bad:
                raise HcopsError(f"restored files fail their checksums: {', '.join(r.bad[:5])}",
                                 "restore from another copy")
            detail = f"{r.files} files restored, sha256 match"
            if pacs.is_pacs_backup(m):
                expected = pacs.expected_uids(key, store, m)
                detail += "; " + pacs.check_restored(dest, expected)  # pydicom: truncation Orthanc may accept
                detail += "; " + pacs.ingest_check(dest, expected, Path(tmp) / "orthanc")
            return detail
        if kind in ("full", "incremental"):
            restore.restore_physical(key, store, catalog, backup_id, dest)
            with scratch_server(dest, Path(tmp) / "run") as s:
                tables = s.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema NOT IN "
                                 "('mysql','information_schema','performance_schema','sys')").strip()
                rows = s.query(canary_sql).strip() if canary_sql else ""
            return f"scratch server started; {tables} tables" + (f"; canary rows {rows}" if rows else "")
        return "objects read back and opened"
