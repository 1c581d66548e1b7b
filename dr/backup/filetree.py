"""File trees (a PACS image store): incremental by a local index of (path, size, mtime, sha256).

A run stats every file and compares with the index; only files whose size or mtime changed are
read, hashed and sent (a tar stream of them), so a no-change run over a million files reads no
file content. Each backup stores its changes (files added or changed, files deleted) against its
parent; a snapshot is its chain replayed from the full. Deleted files are therefore not lost:
they stay in the older backups of the chain for as long as retention keeps them. The index is
updated only after the backup is safely stored, so a failed run changes nothing.

The tree may be on this machine or on a region host (`shell`, ssh to the PACS host): there a
small scan prints (size, mtime, path) and GNU tar streams only the changed files, which are
re-packed here with their sha256 taken on the way; the index stays on the controller.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shlex
import sqlite3
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from infra.state import region_state_dir
from inventories.errors import HcopsError

Meta = tuple[int, int, str]  # size, mtime_ns, sha256
Shell = list[str]  # argv prefix running one shell script on the tree's host (dr.backup.mariadb.Shell)

# Run by python3 on the tree's host: "size mtime_ns relpath\0" per regular file; exit 3 when the
# root is no directory. The same walk as `scan`, so local and remote trees index alike.
_REMOTE_SCAN = r"""
import os, sys
root = sys.argv[1]
if not os.path.isdir(root):
    sys.exit(3)
out, stack = sys.stdout.buffer, [root]
while stack:
    d = stack.pop()
    try:
        it = os.scandir(d)
    except FileNotFoundError:
        continue
    with it:
        for e in it:
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
            elif e.is_file(follow_symlinks=False):
                st = e.stat(follow_symlinks=False)
                out.write(b"%d %d " % (st.st_size, st.st_mtime_ns) + os.fsencode(os.path.relpath(e.path, root)) + b"\0")
"""


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


def remote_scan(shell: Shell, root: Path) -> Iterator[tuple[str, int, int]]:
    """`scan` of a tree on a region host (one ssh round trip, the listing streamed back)."""
    script = f"python3 -c {shlex.quote(_REMOTE_SCAN)} {shlex.quote(str(root))}"
    proc = subprocess.run([*shell, script], capture_output=True, timeout=3600, check=False)
    if proc.returncode == 3:
        raise HcopsError(f"file tree {root} does not exist or is not a directory on its host",
                         "check the PACS storage directory (services.<pacs>.storage_dir) and that Orthanc ran")
    if proc.returncode != 0:
        raise HcopsError(f"listing {root} on its host failed (exit {proc.returncode}): "
                         f"{proc.stderr.decode(errors='replace').strip()[-400:]}", "check ssh to the PACS host")
    for rec in proc.stdout.split(b"\0"):
        if rec:
            size, mtime, rel = rec.split(b" ", 2)
            yield os.fsdecode(rel), int(size), int(mtime)


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
    shell: Shell | None = None  # the tree is on a region host (ssh); None: on this machine
    upserts: dict[str, Meta] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    scanned: int = 0
    _facts: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.shell is None and not self.root.is_dir():
            raise HcopsError(f"file tree {self.root} does not exist or is not a directory",
                             "check the policy's path (or the PACS storage directory on its host)")
        known = self.index.load() if self.parent else {}
        seen: set[str] = set()
        changed: list[tuple[str, int, int]] = []
        listing = scan(self.root) if self.shell is None else remote_scan(self.shell, self.root)
        for rel, size, mtime in listing:
            seen.add(rel)
            if known.get(rel) != (size, mtime):
                changed.append((rel, size, mtime))
        self.scanned = len(seen)
        self.deletes = sorted(set(known) - seen)
        self._changed = changed

    @property
    def facts(self) -> dict[str, object]:
        return self._facts

    @property
    def changed(self) -> int:
        """Files new or changed since the parent (by size and mtime): the ones a run reads."""
        return len(self._changed)

    def _tar(self, out: IO[bytes]) -> None:
        if self.shell is not None:
            self._remote_tar(self.shell, out)
            return
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

    def _remote_tar(self, shell: Shell, out: IO[bytes]) -> None:
        """GNU tar on the host sends the changed files (names on its stdin); re-packed here, each
        hashed on the way. A file gone since the scan is skipped (--ignore-failed-read)."""
        mtimes = {rel: mtime for rel, _size, mtime in self._changed}
        script = (f"tar -C {shlex.quote(str(self.root))} --null --no-recursion --ignore-failed-read "
                  "--format=pax -T - -cf -")
        with subprocess.Popen([*shell, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as proc:
            assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
            err: list[bytes] = []
            names = b"".join(os.fsencode(rel) + b"\0" for rel in mtimes)
            stdin = proc.stdin

            def feed() -> None:
                with contextlib.suppress(BrokenPipeError):
                    stdin.write(names)
                stdin.close()

            feeder = threading.Thread(target=feed)
            reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))  # type: ignore[union-attr]
            feeder.start()
            reader.start()
            try:
                with tarfile.open(fileobj=proc.stdout, mode="r|") as src, \
                        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as dst:
                    for member in src:
                        fh = src.extractfile(member) if member.isfile() else None
                        if fh is None or member.name not in mtimes:
                            continue
                        h = hashlib.sha256()
                        info = tarfile.TarInfo(member.name)
                        info.size, info.mtime, info.mode = member.size, int(member.mtime), member.mode & 0o7777
                        dst.addfile(info, _Hashing(fh, h))
                        self.upserts[member.name] = (member.size, mtimes[member.name], h.hexdigest())
            except BaseException:
                proc.kill()
                raise
            finally:
                feeder.join()
                reader.join()
            rc = proc.wait()
        if rc != 0:
            raise HcopsError(f"tar of {self.root} on its host failed (exit {rc}): "
                             f"{b''.join(err).decode(errors='replace').strip()[-400:]}", "check the PACS host")

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


WRITERS = 8
"""Threads writing restored files: open/write/close/utime release the GIL, so small files (a PACS
tree's) are written in parallel while the tar stream is decrypted and read in order."""
SMALL = 4 << 20
"""Members up to this size are read whole and handed to a writer; bigger ones are streamed inline."""
BATCH_BYTES, BATCH_FILES = 1 << 20, 256
"""Small files go to the writers in batches of about this much: a hand-over per file (a future,
a semaphore, a thread switch) cost more than writing a PACS instance of a few KB."""
IN_FLIGHT = 64 << 20
"""Bytes read but not yet written, at most (memory stays bounded whatever the tree)."""

Batch = list[tuple[str, str, bytes, Meta]]
"""(member name, target path, content, meta) of small files handed to one writer."""


def _member_target(root: str, name: str) -> str:
    # Checked by name, not by resolving the path (a realpath per file was most of a small file's
    # restore time): only regular files are written and every directory on the way is made here,
    # so a name without "..", "." or a leading "/" cannot leave `root`.
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise HcopsError(f"backup member {name!r} escapes the restore directory",
                         "the backup is not trustworthy; restore from another copy")
    return os.path.join(root, *parts)


def _ensure_dir(path: str, made: set[str]) -> None:
    # Called from the writers too: a directory is made once (a racing twin finds it made).
    # mkdir of a new directory is most of a small file's restore on ext4, so it runs in parallel.
    if path not in made:
        os.makedirs(path, exist_ok=True)
        made.add(path)


def _write_batch(batch: Batch, made: set[str]) -> list[str]:
    """Write a batch of small files; the names of those whose content does not match."""
    bad = []
    for name, target, data, meta in batch:
        _ensure_dir(os.path.dirname(target), made)
        with open(target, "xb") as fh:  # never over a file: the target started empty
            fh.write(data)
        os.utime(target, ns=(meta[1], meta[1]))
        if hashlib.sha256(data).hexdigest() != meta[2]:
            bad.append(name)
    return bad


def _write_large(target: str, src: IO[bytes], meta: Meta, made: set[str]) -> bool:
    _ensure_dir(os.path.dirname(target), made)
    h = hashlib.sha256()
    with open(target, "xb") as fh:
        while chunk := src.read(1 << 20):
            h.update(chunk)
            fh.write(chunk)
    os.utime(target, ns=(meta[1], meta[1]))
    return h.hexdigest() == meta[2]


def extract(tar_stream: IO[bytes], wanted: dict[str, Meta], dest: Path) -> tuple[list[str], set[str]]:
    """Write the wanted members of one backup's tar into dest, checking each file's sha256.

    Returns (members whose content does not match, members written)."""
    bad: list[str] = []
    written: set[str] = set()
    root = str(dest.resolve())
    try:
        _extract_into(tar_stream, wanted, root, bad, written)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise HcopsError(f"restore target {dest}: the disk is full (the restore of {len(wanted):,} files "
                         "stopped)", "free space or restore into an empty directory on another disk; the "
                         f"files written so far stay in {dest} (remove them before retrying)") from None
    return sorted(bad), written


def _extract_into(tar_stream: IO[bytes], wanted: dict[str, Meta], root: str, bad: list[str],
                  written: set[str]) -> None:
    made: set[str] = set()
    # a batch holds at most BATCH_BYTES plus one small file
    budget = threading.BoundedSemaphore(max(2, IN_FLIGHT // (BATCH_BYTES + SMALL)))
    pending: list[Future[list[str]]] = []
    batch: Batch = []
    size = 0
    with ThreadPoolExecutor(WRITERS, thread_name_prefix="hcops-restore") as pool, \
            tarfile.open(fileobj=tar_stream, mode="r|") as tar:

        failed: list[BaseException] = []

        def finished(fut: Future[list[str]]) -> None:
            budget.release()
            if (exc := fut.exception()) is not None:
                failed.append(exc)

        def hand_over() -> None:
            nonlocal batch, size
            if failed:  # a writer failed (disk full): stop reading the backup now, not at its end
                raise failed[0]
            budget.acquire()
            fut = pool.submit(_write_batch, batch, made)
            fut.add_done_callback(finished)
            pending.append(fut)
            batch, size = [], 0

        for member in tar:
            meta = wanted.get(member.name)
            if meta is None or not member.isfile():
                continue
            target = _member_target(root, member.name)
            src = tar.extractfile(member)
            assert src is not None
            written.add(member.name)
            if member.size > SMALL:
                if not _write_large(target, src, meta, made):
                    bad.append(member.name)
                continue
            batch.append((member.name, target, src.read(), meta))
            size += member.size
            if size >= BATCH_BYTES or len(batch) >= BATCH_FILES:
                hand_over()
        if batch:
            hand_over()
        for fut in pending:  # a writer's error (disk full) surfaces here, with the pool shut down
            bad += fut.result()
