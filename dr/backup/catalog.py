"""The catalog: every backup, where it is, its chain and its state, in sqlite on the controller.

A copy goes offsite after each run (`catalog/catalog.db`, sealed with the region key), and the
catalog can also be rebuilt from the signed manifests in the bucket, so losing the controller
loses nothing but time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dr.backup.manifest import Manifest
from infra.state import region_state_dir
from inventories.errors import HcopsError

SCHEMA = """
CREATE TABLE IF NOT EXISTS backups (
  id TEXT PRIMARY KEY, policy TEXT NOT NULL, kind TEXT NOT NULL, parent TEXT,
  started_at TEXT NOT NULL, finished_at TEXT, state TEXT NOT NULL,
  stored_bytes INTEGER DEFAULT 0, manifest TEXT NOT NULL, error TEXT DEFAULT ''
);
CREATE TABLE IF NOT EXISTS locations (
  backup_id TEXT NOT NULL, place TEXT NOT NULL, confirmed_at TEXT NOT NULL,
  PRIMARY KEY (backup_id, place)
);
CREATE TABLE IF NOT EXISTS verifications (
  backup_id TEXT NOT NULL, place TEXT NOT NULL, at TEXT NOT NULL, ok INTEGER NOT NULL, detail TEXT
);
CREATE INDEX IF NOT EXISTS backups_policy ON backups(policy, started_at);
"""

# running: objects being written; good: every checksum confirmed at every destination the policy
# names; failed: did not complete (kept in the catalog for the record); expired: pruned.
STATES = ("running", "good", "partial", "failed", "expired", "missing")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Entry:
    id: str
    policy: str
    kind: str
    parent: str | None
    started_at: str
    finished_at: str | None
    state: str
    stored_bytes: int
    manifest: Manifest
    error: str = ""
    places: dict[str, str] = field(default_factory=dict)  # place -> confirmed_at
    verified: list[tuple[str, str, bool, str]] = field(default_factory=list)  # (place, at, ok, detail)

    @property
    def started(self) -> datetime:
        return datetime.fromisoformat(self.started_at)

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "policy": self.policy, "kind": self.kind, "parent": self.parent,
                "started_at": self.started_at, "finished_at": self.finished_at, "state": self.state,
                "stored_bytes": self.stored_bytes, "places": self.places, "error": self.error,
                "facts": self.manifest.facts, "objects": len(self.manifest.objects),
                "verified": [{"place": p, "at": a, "ok": ok, "detail": d} for p, a, ok, d in self.verified]}


def catalog_path(region: str) -> Path:
    return region_state_dir(region) / "backup" / "catalog.db"


class Catalog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise HcopsError(f"backup catalog {path} cannot be opened: {exc}",
                             "move it aside and rebuild it: `hcops backup list --rebuild`") from None

    @classmethod
    def for_region(cls, region: str) -> Catalog:
        return cls(catalog_path(region))

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def record(self, m: Manifest, state: str, error: str = "") -> None:
        with self.tx() as db:
            db.execute("INSERT INTO backups(id, policy, kind, parent, started_at, finished_at, state, stored_bytes,"
                       " manifest, error) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET"
                       " finished_at=excluded.finished_at, state=excluded.state, stored_bytes=excluded.stored_bytes,"
                       " manifest=excluded.manifest, error=excluded.error",
                       (m.backup_id, m.policy, m.kind, m.parent, m.started_at, m.finished_at or None, state,
                        m.stored_bytes, m.to_json(), error))

    def set_state(self, backup_id: str, state: str, error: str = "") -> None:
        with self.tx() as db:
            db.execute("UPDATE backups SET state=?, error=? WHERE id=?", (state, error, backup_id))

    def confirm(self, backup_id: str, place: str, at: str | None = None) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO locations VALUES (?,?,?)", (backup_id, place, at or now_iso()))

    def unconfirm(self, backup_id: str, place: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM locations WHERE backup_id=? AND place=?", (backup_id, place))

    def add_verification(self, backup_id: str, place: str, ok: bool, detail: str) -> None:
        with self.tx() as db:
            db.execute("INSERT INTO verifications VALUES (?,?,?,?,?)", (backup_id, place, now_iso(), int(ok), detail))

    def _entry(self, row: tuple[object, ...]) -> Entry:
        bid = str(row[0])
        places = dict(self.db.execute("SELECT place, confirmed_at FROM locations WHERE backup_id=?", (bid,)))
        ver = [(str(p), str(a), bool(ok), str(d)) for p, a, ok, d in self.db.execute(
            "SELECT place, at, ok, detail FROM verifications WHERE backup_id=? ORDER BY at", (bid,))]
        return Entry(id=bid, policy=str(row[1]), kind=str(row[2]), parent=str(row[3]) if row[3] else None,
                     started_at=str(row[4]), finished_at=str(row[5]) if row[5] else None, state=str(row[6]),
                     stored_bytes=int(str(row[7] or 0)), manifest=Manifest.from_json(str(row[8]), f"catalog {bid}"),
                     error=str(row[9] or ""), places=places, verified=ver)

    def entries(self, policy: str | None = None) -> list[Entry]:
        q = ("SELECT id, policy, kind, parent, started_at, finished_at, state, stored_bytes, manifest, error"
             " FROM backups")
        args: tuple[str, ...] = ()
        if policy:
            q += " WHERE policy=?"
            args = (policy,)
        return [self._entry(r) for r in self.db.execute(q + " ORDER BY started_at, id", args).fetchall()]

    def get(self, backup_id: str) -> Entry:
        row = self.db.execute("SELECT id, policy, kind, parent, started_at, finished_at, state, stored_bytes, "
                              "manifest, error FROM backups WHERE id=?", (backup_id,)).fetchone()
        if row is None:
            raise HcopsError(f"no backup {backup_id!r} in the catalog", "list them: `hcops backup list`")
        return self._entry(row)

    def dump_json(self) -> str:
        return json.dumps([e.to_dict() for e in self.entries()], default=str)
