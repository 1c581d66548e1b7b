"""File trees (a PACS image store): incremental by a local index of (path, size, mtime, sha256).

A run stats every file and compares with the index; only files whose size or mtime changed are
read, hashed and sent (a tar stream of them), so a no-change run over a million files reads no
file content. Each backup stores its changes (files added or changed, files deleted) against its
parent; a snapshot is its chain replayed from the full. Deleted files are therefore not lost:
they stay in the older backups of the chain for as long as retention keeps them. The index is
updated only after the backup is safely stored, so a failed run changes nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from infra.state import region_state_dir
from inventories.errors import HcopsError

Meta = tuple[int, int, str]  # size, mtime_ns, sha256


def index_path(region: str, policy: str) -> Path:
    return region_state_dir(region) / "backup" / "index" / f"{policy}.db"


def scan(root: Path) -> Iterator[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of every regular file under root, depth first."""
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except FileNotFoundError:
            continue
        with it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                elif e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    yield os.path.relpath(e.path, root), st.st_size, st.st_mtime_ns


def sha256_path(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class Index:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER,"
                        " sha256 TEXT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")

    def load(self) -> dict[str, tuple[int, int]]:
        return {p: (s, m) for p, s, m in self.db.execute("SELECT path, size, mtime FROM files")}

    def last_backup(self) -> str | None:
        row = self.db.execute("SELECT v FROM meta WHERE k='last_backup'").fetchone()
        return str(row[0]) if row else None

    def apply(self, upserts: dict[str, Meta], deletes: list[str], backup_id: str) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?)",
                                [(p, s, m, h) for p, (s, m, h) in upserts.items()])
            self.db.executemany("DELETE FROM files WHERE path=?", [(p,) for p in deletes])
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('last_backup', ?)", (backup_id,))

    def reset(self) -> None:
        with self.db:
            self.db.execute("DELETE FROM files")
            self.db.execute("DELETE FROM meta")

    def close(self) -> None:
        self.db.close()


@dataclass
class TreeSource:
    """The pipeline source for one tree: `changes.json` (what changed) and `files.tar` (changed files)."""

    root: Path
    index: Index
    parent: str | None
    source: str = ""
    kind: str = "files"
    upserts: dict[str, Meta] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    scanned: int = 0
    _facts: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.root.is_dir():
            raise HcopsError(f"file tree {self.root} does not exist or is not a directory",
                             "check the policy's path (or the PACS storage directory on its host)")
        known = self.index.load() if self.parent else {}
        seen: set[str] = set()
        changed: list[tuple[str, int, int]] = []
        for rel, size, mtime in scan(self.root):
            seen.add(rel)
            if known.get(rel) != (size, mtime):
                changed.append((rel, size, mtime))
        self.scanned = len(seen)
        self.deletes = sorted(set(known) - seen)
        self._changed = changed

    @property
    def facts(self) -> dict[str, object]:
        return self._facts

    def _tar(self, out: IO[bytes]) -> None:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for rel, _size, _mtime in self._changed:
                path = self.root / rel
                h = hashlib.sha256()
                try:
                    st = path.stat()
                    with open(path, "rb") as fh:
                        info = tarfile.TarInfo(rel)
                        info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), st.st_mode & 0o7777
                        tar.addfile(info, _Hashing(fh, h))
                except FileNotFoundError:
                    continue  # deleted during the run: the next run records the deletion
                self.upserts[rel] = (st.st_size, st.st_mtime_ns, h.hexdigest())

    def _changes(self, out: IO[bytes]) -> None:
        doc = {"root": str(self.root), "upsert": {p: list(v) for p, v in sorted(self.upserts.items())},
               "delete": self.deletes, "scanned": self.scanned}
        out.write(json.dumps(doc, separators=(",", ":")).encode())
        self._facts.update({"files_scanned": self.scanned, "files_changed": len(self.upserts),
                            "files_deleted": len(self.deletes), "root": str(self.root)})

    def objects(self) -> Iterator[tuple[str, Callable[[IO[bytes]], None]]]:
        yield "files.tar", self._tar
        yield "changes.json", self._changes


class _Hashing(io.RawIOBase):
    def __init__(self, fh: IO[bytes], h: hashlib._Hash) -> None:
        self.fh, self.h = fh, h

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.h.update(data)
        return data


def snapshot(chain_changes: list[tuple[str, dict[str, object]]]) -> dict[str, tuple[str, Meta]]:
    """Replay a chain's changes (oldest first): path -> (backup holding it, meta)."""
    files: dict[str, tuple[str, Meta]] = {}
    for bid, doc in chain_changes:
        for p in doc.get("delete", []):  # type: ignore[attr-defined]
            files.pop(p, None)
        for p, v in doc.get("upsert", {}).items():  # type: ignore[attr-defined]
            files[p] = (bid, (int(v[0]), int(v[1]), str(v[2])))
    return files


def select(files: dict[str, tuple[str, Meta]], paths: list[str] | None) -> dict[str, tuple[str, Meta]]:
    """The snapshot entries under the given paths (a file or a directory prefix); all when None."""
    if not paths:
        return files
    norm = [p.strip("/") for p in paths]
    out = {f: v for f, v in files.items() if any(f == p or f.startswith(p + "/") for p in norm)}
    if not out:
        raise HcopsError(f"no file in the backup matches {', '.join(paths)}",
                         "paths are relative to the tree's root; see `hcops backup show ID`")
    return out


def extract(tar_stream: IO[bytes], wanted: dict[str, Meta], dest: Path) -> list[str]:
    """Write the wanted members of one backup's tar into dest, checking each file's sha256."""
    bad = []
    with tarfile.open(fileobj=tar_stream, mode="r|") as tar:
        for member in tar:
            meta = wanted.get(member.name)
            if meta is None or not member.isfile():
                continue
            target = (dest / member.name).resolve()
            if not str(target).startswith(str(dest.resolve())):
                raise HcopsError(f"backup member {member.name!r} escapes the restore directory",
                                 "the backup is not trustworthy; restore from another copy")
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            h = hashlib.sha256()
            with open(target, "wb") as fh:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
                    fh.write(chunk)
            os.utime(target, ns=(meta[1], meta[1]))
            if h.hexdigest() != meta[2]:
                bad.append(member.name)
    return bad
