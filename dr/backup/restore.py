"""Restore: fetch a backup's chain from a store, open it with the region key, put it back.

MariaDB physical: each backup of the chain is unpacked (mbstream -x) and prepared with
mariabackup (the full, then each incremental), giving a data directory. Point in time: the
archived binlogs are replayed into a server running on that directory, from the backup's GTID
up to a timestamp or a GTID. File trees: the chain's changes are replayed to a snapshot and the
wanted files extracted, each checked against its sha256. A PACS tree can instead be re-indexed:
restored beside the target, then ingested by a scratch Orthanc whose storage is the target, so
the target holds images and a consistent index (the restored index copy is not used).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dr.backup import filetree, pacs
from dr.backup.catalog import Catalog, Entry
from dr.backup.envelope import CorruptObject, UnsealingReader, open_frames
from dr.backup.keys import RegionKey
from dr.backup.manifest import Manifest, object_key, stored_manifests
from dr.backup.mariadb import KEYFILE_OBJECT
from dr.backup.scratch import scratch_server
from dr.backup.scratch_orthanc import scratch_orthanc
from dr.backup.stores import Store
from inventories.errors import HcopsError


@dataclass
class RestoreResult:
    backup_id: str
    target: str
    chain: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    point: str = ""  # the point in time reached (timestamp or GTID), when asked
    reindexed: int | None = None  # PACS --reindex: instances Orthanc lists in the rebuilt index
    reindex_seconds: float = 0.0
    bad: list[str] = field(default_factory=list)
    keyfile: str = ""  # MariaDB encrypted at rest: the backup's key, beside the data directory

    @property
    def ok(self) -> bool:
        return not self.bad


def chain_of(catalog: Catalog, backup_id: str) -> list[Entry]:
    """The backup and its ancestors, full first; refuses a chain with a missing or unusable link."""
    chain: list[Entry] = []
    cur: str | None = backup_id
    while cur:
        e = catalog.get(cur)
        if e.state not in ("good", "partial"):
            raise HcopsError(f"backup {cur} (in the chain of {backup_id}) is {e.state}, not restorable",
                             "pick another backup: `hcops backup list`")
        chain.append(e)
        cur = e.parent
    return list(reversed(chain))


def check_manifest(key: RegionKey, store: Store, e: Entry) -> Manifest:
    """The manifest as stored beside the objects, signature checked, equal to the catalog's."""
    m = Manifest.from_json(store.read_bytes(f"{e.policy}/{e.id}/manifest.json").decode(), f"{store.where} {e.id}")
    m.check_signature(key)
    if m.objects != e.manifest.objects:
        raise HcopsError(f"backup {e.id}: the {store.where} manifest differs from the catalog",
                         "rebuild the catalog from the store (`hcops backup list --rebuild`) or use the other copy")
    return m


def unseal_to(key: RegionKey, store: Store, m: Manifest, name: str, argv: list[str]) -> int:
    """Stream one object's plaintext into a command's stdin (mbstream, mariadb)."""
    dk = key.unwrap(m.wrapped_key, m.backup_id)
    n = 0
    with store.open(object_key(m.policy, m.backup_id, name)) as fh, \
            subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        try:
            for chunk in open_frames(fh, dk, name):
                proc.stdin.write(chunk)
                n += len(chunk)
        except (CorruptObject, BrokenPipeError):
            proc.kill()
            raise
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0:
            raise HcopsError(f"`{' '.join(argv)}` failed while restoring {m.backup_id}/{name}: {err.strip()[-500:]}",
                             "see the message above")
    return n


def _sh(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HcopsError(f"{what} failed: {proc.stderr.strip()[-800:]}", "see the message above")


def restore_physical(key: RegionKey, store: Store, catalog: Catalog, backup_id: str, dest: Path) -> RestoreResult:
    if dest.exists() and any(dest.iterdir()):
        raise HcopsError(f"restore target {dest} is not empty", "give an empty or new directory; a restore "
                         "never writes over data")
    chain = chain_of(catalog, backup_id)
    if chain[0].kind != "full":
        raise HcopsError(f"backup {backup_id}'s chain does not start with a full backup", "pick another backup")
    res = RestoreResult(backup_id=backup_id, target=str(dest), chain=[e.id for e in chain])
    manifests = [check_manifest(key, store, e) for e in chain]
    dest.mkdir(parents=True, exist_ok=True)
    keyed = [m for m in manifests if any(o.name == KEYFILE_OBJECT for o in m.objects)]
    if keyed:  # the newest link's key opens every page of the chain (keys are only added)
        keyfile = dest.parent / f"{dest.name}.keyfile"
        write_keyfile(key, store, keyed[-1], keyfile)
        res.keyfile = str(keyfile)
    with tempfile.TemporaryDirectory(prefix="hcops-restore-", dir=dest.parent) as work:
        for i, (e, m) in enumerate(zip(chain, manifests, strict=True)):
            d = dest if i == 0 else Path(work) / f"inc{i}"
            d.mkdir(exist_ok=True)
            res.bytes += unseal_to(key, store, m, "backup.mbstream", ["mbstream", "-x", "-C", str(d)])
            if res.keyfile:
                point_keyfile(d, Path(res.keyfile))
            if i == 0:
                _sh(["mariabackup", "--prepare", f"--target-dir={dest}"], f"mariabackup --prepare of {e.id}")
            else:
                _sh(["mariabackup", "--prepare", f"--target-dir={dest}", f"--incremental-dir={d}"],
                    f"mariabackup --prepare of incremental {e.id}")
    return res


def write_keyfile(key: RegionKey, store: Store, m: Manifest, path: Path) -> None:
    """The backup's data-at-rest key, opened from its sealed object, readable by root only."""
    dk = key.unwrap(m.wrapped_key, m.backup_id)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with store.open(object_key(m.policy, m.backup_id, KEYFILE_OBJECT)) as fh, os.fdopen(fd, "wb") as w:
        for chunk in open_frames(fh, dk, KEYFILE_OBJECT):
            w.write(chunk)
    tmp.replace(path)


def point_keyfile(datadir: Path, keyfile: Path) -> None:
    """Point backup-my.cnf (what --prepare and a scratch server read) at the restored key file:
    the source host's path (/etc/mysql/encryption/keyfile) does not exist where we restore."""
    cnf = datadir / "backup-my.cnf"
    if not cnf.is_file():
        return
    lines = [f"file_key_management_filename={keyfile}" if line.startswith("file_key_management_filename=")
             else line for line in cnf.read_text().splitlines()]
    cnf.write_text("\n".join(lines) + "\n")


def binlog_entries(catalog: Catalog, policy: str, store: Store | None = None) -> list[Entry]:
    """The good binlog backups of a policy; with a store, only those it still holds (a binlog
    backup lost with a rebuilt backup host is skipped, not a reason to refuse the point in time)."""
    good = [e for e in catalog.entries(policy) if e.kind == "binlog" and e.state in ("good", "partial")]
    if store is None or not good:
        return good
    held = stored_manifests(store, policy)
    return [e for e in good if e.id in held]


def fetch_binlogs(key: RegionKey, store: Store, entries: list[Entry], dest: Path) -> list[Path]:
    """The newest stored version of every archived binlog file, written to dest."""
    newest: dict[str, tuple[int, Entry]] = {}
    for e in entries:
        for name, size in dict(e.manifest.facts.get("binlogs", {})).items():
            if name not in newest or int(size) >= newest[name][0]:
                newest[name] = (int(size), e)
    _check_no_gap(sorted(newest), store.where)
    out = []
    for name, (_size, e) in sorted(newest.items()):
        m = check_manifest(key, store, e)
        dk = key.unwrap(m.wrapped_key, m.backup_id)
        path = dest / name
        with store.open(object_key(m.policy, m.backup_id, name)) as fh, open(path, "wb") as w:
            for chunk in open_frames(fh, dk, name):
                w.write(chunk)
        out.append(path)
    return out


def _check_no_gap(names: list[str], where: str) -> None:
    """Binlog files are numbered (mysql-bin.000007): a hole in the run means events are lost, and
    replaying past it would give a database that looks restored to the point but is not."""
    nums = sorted(int(n.rpartition(".")[2]) for n in names if n.rpartition(".")[2].isdigit())
    holes = [f"{a + 1:06d}" if b == a + 2 else f"{a + 1:06d}-{b - 1:06d}"
             for a, b in itertools.pairwise(nums) if b > a + 1]
    if holes:
        raise HcopsError(f"binlog file(s) {', '.join(holes)} are not stored in {where}: events between them "
                         "are lost", "restore without --until (to the backup itself), or from the other "
                         "store (`--from offsite`)")


def replay_binlogs(files: list[Path], start_gtid: str, client: list[str], *, stop_datetime: str | None = None,
                   stop_gtid: str | None = None) -> None:
    """mariadb-binlog from the backup's GTID to the point asked, piped into a running server."""
    if not files:
        raise HcopsError("no archived binlogs to reach the point in time", "is the binlog archiver running? "
                         "(`hcops backup run --policy <binlog policy>` stores what it wrote)")
    argv = ["mariadb-binlog", f"--start-position={start_gtid}"]
    if stop_datetime:
        argv.append(f"--stop-datetime={stop_datetime}")
    if stop_gtid:
        argv.append(f"--stop-position={stop_gtid}")
    dump = subprocess.Popen([*argv, *map(str, files)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    apply = subprocess.run(client, stdin=dump.stdout, capture_output=True, text=True, check=False)
    assert dump.stdout is not None and dump.stderr is not None
    dump.stdout.close()
    derr = dump.stderr.read().decode(errors="replace")
    if dump.wait() != 0:
        raise HcopsError(f"mariadb-binlog failed: {derr.strip()[-500:]}", "see the message above")
    if apply.returncode != 0:
        raise HcopsError(f"applying the binlogs failed: {apply.stderr.strip()[-500:]}", "see the message above")


def tree_snapshot(key: RegionKey, store: Store, catalog: Catalog, backup_id: str) -> tuple[list[Entry], dict[
        str, tuple[str, filetree.Meta]]]:
    chain = chain_of(catalog, backup_id)
    docs = []
    for e in chain:
        m = check_manifest(key, store, e)
        dk = key.unwrap(m.wrapped_key, m.backup_id)
        with store.open(object_key(m.policy, m.backup_id, "changes.json")) as fh:
            raw = b"".join(open_frames(fh, dk, "changes.json"))
        docs.append((e.id, json.loads(raw)))
    return chain, filetree.snapshot(docs)


def _require_empty(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise HcopsError(f"restore target {dest} is not a directory", "give an empty or new directory")
    if dest.exists() and any(dest.iterdir()):
        raise HcopsError(f"restore target {dest} is not empty", "give an empty or new directory; a restore "
                         "never writes over data")


def restore_tree(key: RegionKey, store: Store, catalog: Catalog, backup_id: str, dest: Path, *,
                 paths: list[str] | None = None) -> RestoreResult:
    _require_empty(dest)
    chain, files = tree_snapshot(key, store, catalog, backup_id)
    wanted = filetree.select(files, paths)
    res = RestoreResult(backup_id=backup_id, target=str(dest), chain=[e.id for e in chain])
    dest.mkdir(parents=True, exist_ok=True)
    by_holder: dict[str, dict[str, filetree.Meta]] = {}
    for p, (holder, meta) in wanted.items():
        by_holder.setdefault(holder, {})[p] = meta
    entries = {e.id: e for e in chain}
    got: set[str] = set()
    for holder, want in by_holder.items():
        e = entries[holder]
        dk = key.unwrap(e.manifest.wrapped_key, e.id)
        with store.open(object_key(e.policy, e.id, "files.tar")) as fh:
            reader = UnsealingReader(fh, dk, "files.tar")
            bad, written = filetree.extract(reader, want, dest)  # type: ignore[arg-type]
            reader.read()  # drain: the final frame's authentication catches a truncated tail
        res.bad += bad
        got |= written
        res.files += len(want)
        res.bytes += sum(m[0] for m in want.values())
    res.bad += sorted(set(wanted) - got)  # listed in the snapshot, absent from its backup's tar
    return res


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def require_pacs(e: Entry) -> None:
    """Re-indexing is for PACS backups (a file tree with Orthanc's instance list)."""
    if e.kind != "files" or not pacs.is_pacs_backup(e.manifest):
        raise HcopsError(f"backup {e.id} is not a PACS backup ({e.kind} backup of policy {e.policy}): "
                         "--reindex rebuilds Orthanc's index", "restore it without --reindex")


def restore_reindexed(key: RegionKey, store: Store, catalog: Catalog, e: Entry, target: Path) -> RestoreResult:
    """A PACS tree with a rebuilt index: restored to a temporary directory beside `target` (same
    file system), then every DICOM file ingested by a scratch Orthanc whose storage and index
    directory is `target`, stopped at the end. Orthanc serves `target` as it is; the instances
    Orthanc held at backup time must all be listed. On failure `target` is left empty."""
    require_pacs(e)
    _require_empty(target)
    target.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-reindex-", dir=target.parent))
    try:
        res = restore_tree(key, store, catalog, e.id, work / "tree")
        res.target = str(target)
        if res.bad:
            raise HcopsError(f"restored files fail their checksums: {', '.join(res.bad[:5])}; nothing was "
                             "re-indexed", "restore from another copy (--from offsite or local)")
        expected = pacs.expected_uids(key, store, check_manifest(key, store, e))
        with scratch_orthanc(work / "orthanc", target, name=e.policy) as s:
            got = pacs.ingest(work / "tree", s.client())
        if not s.stopped_cleanly:
            raise HcopsError(f"the scratch Orthanc did not stop cleanly (exit {s.proc.returncode}) after "
                             f"re-indexing into {target}", "run the restore again into an empty directory")
        if expected is not None:
            pacs.require_listed(expected, got.held, f"listed by the Orthanc re-indexed in {target}")
        res.reindexed, res.reindex_seconds = len(got.held), got.seconds
    except BaseException:
        for child in target.iterdir():  # empty before: leave no half-built index behind
            if child.is_dir():
                remove_tree(child)
            else:
                child.unlink()
        raise
    finally:
        remove_tree(work)
    return res


def restore_backup(key: RegionKey, store: Store, catalog: Catalog, e: Entry, target: Path, *,
                   until: str | None = None, until_gtid: str | None = None,
                   paths: list[str] | None = None) -> RestoreResult:
    """Restore one catalogued backup: a file tree, or a MariaDB chain rolled forward to a point."""
    if e.kind == "files":
        return restore_tree(key, store, catalog, e.id, target, paths=paths)
    if e.kind not in ("full", "incremental"):
        raise HcopsError(f"backup {e.id} is a {e.kind} backup", "restore a full/incremental or files backup")
    res = restore_physical(key, store, catalog, e.id, target)
    if until or until_gtid:
        with scratch_server(target, target.parent / f".{target.name}-run") as s:
            work = target.parent / f".{target.name}-binlogs"
            work.mkdir(exist_ok=True)
            files = fetch_binlogs(key, store, binlog_entries(catalog, e.policy, store), work)
            replay_binlogs(files, str(e.manifest.facts.get("gtid", "")), s.client(),
                           stop_datetime=until, stop_gtid=until_gtid)
        res.point = until or until_gtid or ""
    return res
