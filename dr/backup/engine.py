"""From the region model to a backup run: which host, which stores, which kind of backup.

`hcops backup ...` calls these; they return result objects and never print or exit. A policy
names a service (MariaDB, or a PACS whose image tree the file-tree engine backs up), its local
target (a directory on the backup host) and its offsite target (a model bucket, found in the
region's outputs).
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dr.backup import mariadb as mdb
from dr.backup import pacs, retention
from dr.backup.catalog import Catalog, Entry
from dr.backup.envelope import seal
from dr.backup.filetree import Index, TreeSource, index_path
from dr.backup.keys import RegionKey, load_key, new_data_key
from dr.backup.manifest import Manifest, stored_manifests
from dr.backup.orthanc import OrthancUnreachable
from dr.backup.pipeline import Context, Progress, RunResult, resume_pending, run_backup
from dr.backup.s3store import S3Settings, S3Store, read_credentials
from dr.backup.status import STATUS_DIR, statuses_from
from dr.backup.stores import DirStore, SshDirStore
from infra.lab.control import ssh_args
from infra.lab.layout import Layout
from infra.state import read_outputs
from inventories.errors import HcopsError
from inventories.model import Region
from inventories.schema import BackupPolicy, MySQL, Pacs

_AS_ROOT = ("import os, shlex, sys; a = sys.argv[1:]; "
            "os.execvp(a[0], a[:-1] + ['sudo -n -H -- /bin/bash -c ' + shlex.quote(a[-1])])")
KINDS = ("auto", "full", "incremental", "logical", "binlog")
FULL_EVERY = timedelta(days=7)
CANARY_SQL = "SELECT COUNT(*) FROM canary.canary_seq"


@dataclass
class Overrides:
    """What a fresh controller (or a test) says instead of the region's outputs."""

    key_file: Path | None = None
    local_dir: Path | None = None  # the local target as a directory on this machine
    s3_endpoint: str | None = None
    s3_credentials: Path | None = None
    bandwidth_mbit: float | None = None
    parallel: int = 4
    tree_dir: Path | None = None  # a PACS image tree on this machine (tests, the PACS host itself)
    orthanc_url: str | None = None  # the PACS REST API elsewhere than the model's address
    orthanc_password: str | None = None  # instead of the secret store's


def policy_of(region: Region, name: str) -> BackupPolicy:
    if name not in region.backup_policies:
        raise HcopsError(f"region {region.name} has no backup policy {name!r}",
                         f"choose one of: {', '.join(sorted(region.backup_policies)) or '(none in the model)'}")
    return region.backup_policies[name]


def host_shell(region: Region, host: str) -> mdb.Shell:
    """argv prefix running a script on a region host over ssh (the provider's ssh config)."""
    out = read_outputs(region.name)
    if out.provider == "lab":
        layout = Layout(region)
        # one ssh connection per host for the many short commands of a run (parts, checksums)
        mux = ["-o", "ControlMaster=auto", "-o", f"ControlPath={layout.ssh_dir}/mux-%r@%h",
               "-o", "ControlPersist=60"]
        args = ssh_args(layout, layout.host(host))
        # the controller logs in as the automation account: each script runs as root through sudo
        # (the same wrapping as infra.lab.control.as_root), quoted here as the last argument
        return [sys.executable, "-c", _AS_ROOT, *args[:1], *mux, *args[1:], "--"]
    h = out.hosts.get(host)
    if h is None:
        raise HcopsError(f"host {host} is not in the region's outputs", f"run `hcops infra up --region {region.name}`")
    args = ["ssh", "-o", "BatchMode=yes"]
    if out.ssh_private_key:
        args += ["-i", str(out.ssh_private_key)]
    return [*args, f"{out.ssh_user}@{h.ssh_address}", "--"]


def local_store(region: Region, pol: BackupPolicy, ov: Overrides) -> DirStore | SshDirStore:
    if ov.local_dir is not None:
        return DirStore(ov.local_dir)
    return SshDirStore(host_shell(region, pol.local_target.host), pol.local_target.path, pol.local_target.host)


def offsite_store(region: Region, pol: BackupPolicy, ov: Overrides) -> S3Store | None:
    if pol.offsite_target is None:
        return None
    bucket = pol.offsite_target.bucket
    if ov.s3_endpoint and ov.s3_credentials:
        endpoint, creds_file, real = ov.s3_endpoint, ov.s3_credentials, bucket
    else:
        out = read_outputs(region.name)
        if out.s3 is None:
            raise HcopsError(f"region {region.name} has no S3 endpoint in its outputs",
                             "run `hcops infra up`, or pass --s3-endpoint and --s3-credentials")
        endpoint, creds_file = out.s3.endpoint, ov.s3_credentials or out.s3.credentials_file
        real = out.s3.buckets.get(bucket, bucket)
    key, secret = read_credentials(creds_file)
    lock_days = max(1, pol.retention.daily)
    bw = ov.bandwidth_mbit * 1e6 / 8 if ov.bandwidth_mbit else None
    return S3Store(S3Settings(endpoint=endpoint, bucket=real, access_key=key, secret_key=secret,
                              parallel=ov.parallel, bandwidth_bytes_s=bw, lock_days=lock_days))


def context(region: Region, policy: str, ov: Overrides, *, create_key: bool = False, offsite: bool = True,
            progress: Progress | None = None) -> Context:
    pol = policy_of(region, policy)
    key: RegionKey = load_key(region.name, ov.key_file, create=create_key)
    return Context(region=region.name, policy=policy, key=key, local=local_store(region, pol, ov),
                   offsite=offsite_store(region, pol, ov) if offsite else None,
                   catalog=Catalog.for_region(region.name), progress=progress)


def _last_good(entries: list[Entry], kinds: tuple[str, ...]) -> Entry | None:
    good = [e for e in entries if e.state in ("good", "partial") and e.kind in kinds]
    return good[-1] if good else None


def _drop_lost(ctx: Context, entries: list[Entry], kinds: tuple[str, ...] = ("full", "incremental")) -> list[Entry]:
    """Mark `missing` the good backups whose manifest is gone from the local store (a rebuilt
    backup host, a wiped disk): an incremental built on one could never be restored, and a lost
    binlog backup must not count as stored (its files would never be sent again)."""
    live = {e.id: e.policy for e in entries if e.state in ("good", "partial") and e.kind in kinds}
    if not live:
        return entries
    held = stored_manifests(ctx.local, next(iter(live.values())))
    kept = []
    for e in entries:
        if e.id in live and e.id not in held:
            ctx.catalog.set_state(e.id, "missing", f"manifest gone from {ctx.local.where}")
            continue
        kept.append(e)
    return kept


@dataclass
class RunOutcome:
    results: list[RunResult]
    host: str = ""
    why: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)


def run_policy(region: Region, policy: str, kind: str, ov: Overrides,
               progress: Progress | None = None) -> RunOutcome:
    if kind not in KINDS:
        raise HcopsError(f"unknown backup kind {kind!r}", f"choose one of: {', '.join(KINDS)}")
    pol = policy_of(region, policy)
    svc = region.services.get(pol.service)
    if isinstance(svc, Pacs):
        return run_tree_policy(region, policy, svc, kind, ov, progress=progress)
    if not isinstance(svc, MySQL):
        raise HcopsError(f"policy {policy} backs up {pol.service}, which is neither a MariaDB nor a PACS service",
                         "Oracle policies are run by RMAN on the database host (see dr/backup/README.md)")
    ctx = context(region, policy, ov, create_key=True, progress=progress)
    try:
        if ctx.offsite:
            ctx.offsite.check_bucket()
        outcome = RunOutcome(results=resume_pending(ctx))
        entries = ctx.catalog.entries(policy)
        if kind == "binlog":
            already: dict[str, int] = {}
            for e in _drop_lost(ctx, entries, ("binlog",)):
                if e.kind == "binlog" and e.state in ("good", "partial"):
                    for name, size in dict(e.manifest.facts.get("binlogs", {})).items():
                        already[name] = max(int(size), already.get(name, 0))
            src: object = mdb.BinlogSource(host_shell(region, pol.local_target.host) if ov.local_dir is None
                                           else mdb.LOCAL, pol.service, f"{pol.local_target.path}/binlog", already)
            outcome.host = pol.local_target.host
        else:
            cands = [(h, host_shell(region, h), h != svc.primary) for h in [svc.primary, *svc.replicas]]
            host, shell, why = mdb.pick_host(cands)
            outcome.host, outcome.why = host, why
            if kind == "logical":
                src = mdb.LogicalSource(shell, pol.service, host=host)
            else:
                entries = _drop_lost(ctx, entries)
                base = _last_good(entries, ("full", "incremental"))
                full = _last_good(entries, ("full",))
                fresh = full is not None and datetime.now(UTC) - full.started < FULL_EVERY
                if kind == "incremental" and base is None:
                    raise HcopsError(f"policy {policy} has no full backup to build an incremental on",
                                     f"run `hcops backup run --policy {policy} --kind full` first")
                if kind == "incremental" or (kind == "auto" and fresh and base is not None):
                    assert base is not None
                    src = mdb.PhysicalSource(shell, pol.service, host=host, parent=base.id,
                                             base_lsn=int(base.manifest.facts.get("to_lsn", 0)))
                else:
                    src = mdb.PhysicalSource(shell, pol.service, host=host)
        outcome.results.append(run_backup(ctx, src))  # type: ignore[arg-type]
        _copy_catalog(ctx)
        publish_status(region, policy, ctx.catalog, ov)
        return outcome
    finally:
        ctx.catalog.close()


def run_tree_policy(region: Region, policy: str, svc: Pacs, kind: str, ov: Overrides, *,
                    progress: Progress | None = None) -> RunOutcome:
    """A PACS image tree: Orthanc's instance list first (a refused login stops the run; no answer at
    all does not, the list is then missing), then the tree scanned against the index (on the PACS
    host over ssh, or `ov.tree_dir` here); only changed files move. `auto` takes a
    full when the chain's full is older than FULL_EVERY, as for MariaDB, so a chain stays short."""
    if kind not in ("auto", "full", "incremental"):
        raise HcopsError(f"--kind {kind} is for MariaDB; a PACS image tree is backed up full or incremental",
                         "use --kind auto, full or incremental")
    pol = policy_of(region, policy)
    client = pacs.client_for(region, pol.service, url=ov.orthanc_url, password=ov.orthanc_password)
    ctx = context(region, policy, ov, create_key=True, progress=progress)
    index = Index(index_path(region.name, policy))
    try:
        if ctx.offsite:
            ctx.offsite.check_bucket()
        outcome = RunOutcome(results=resume_pending(ctx), host=svc.host)
        entries = _drop_lost(ctx, ctx.catalog.entries(policy), ("files",))
        parent = _tree_parent(entries, index.last_backup(), policy, kind)
        try:  # before the scan: every listed instance has its file
            listed = client.sop_instance_uids()
            uids: set[str] | None = listed
            held = f"Orthanc holds {len(listed)} instances"
        except OrthancUnreachable as exc:  # a PACS that is down is when its images most need a copy
            uids, held = None, f"{exc.message}: the tree is backed up without Orthanc's instance list"
        root = ov.tree_dir or Path(svc.storage_dir)
        tree = TreeSource(root, index, parent, source=pol.service,
                          shell=None if ov.tree_dir else host_shell(region, svc.host))
        outcome.why = (f"tree {root} on {'this machine' if ov.tree_dir else svc.host}: {tree.scanned} files, "
                       f"{tree.changed} to read; {held}")
        res = run_backup(ctx, pacs.PacsSource(tree, uids, pol.service))
        if res.state in ("good", "partial"):  # stored locally: the index may move on
            if parent is None:
                index.reset()
            index.apply(tree.upserts, tree.deletes, res.backup_id)
        outcome.results.append(res)
        _copy_catalog(ctx)
        publish_status(region, policy, ctx.catalog, ov)
        return outcome
    finally:
        index.close()
        ctx.catalog.close()


def _tree_parent(entries: list[Entry], last: str | None, policy: str, kind: str) -> str | None:
    """The backup an incremental builds on: the index's last one, if its whole chain is still good
    and its full is recent enough (else, or with kind "full", None: a new full)."""
    good = {e.id: e for e in entries if e.state in ("good", "partial") and e.kind == "files"}
    parent = last if last in good else None
    chain_start = parent
    while chain_start is not None and good[chain_start].parent:
        up = good[chain_start].parent
        if up not in good:  # a link expired or went missing: that chain cannot be restored
            parent = chain_start = None
            break
        chain_start = up
    fresh = chain_start is not None and datetime.now(UTC) - good[chain_start].started < FULL_EVERY
    if kind == "incremental" and parent is None:
        raise HcopsError(f"policy {policy} has no backup of the tree to build an incremental on",
                         f"run `hcops backup run --policy {policy} --kind full` first")
    if kind == "full" or (kind == "auto" and not fresh):
        return None
    return parent


def publish_status(region: Region, policy: str, catalog: Catalog, ov: Overrides) -> None:
    """Write the policy's last verified time (Unix seconds, 0 for never) where the backup host's
    Zabbix agent reads it (`vfs.file.contents[STATUS_DIR/<policy>.last-verified]`)."""
    st = statuses_from(catalog, [policy])[0]
    value = str(int(st.last_verified_at.timestamp())) if st.last_verified_at else "0"
    path = f"{STATUS_DIR}/{policy}.last-verified"
    script = (f"mkdir -p -m 0755 {STATUS_DIR} && printf '%s\\n' {value} > {path}.tmp && "
              f"chmod 0644 {path}.tmp && mv {path}.tmp {path}")
    if ov.local_dir is not None:
        return  # running on a directory of this machine (tests, the backup host itself): no host to tell
    pol = policy_of(region, policy)
    with contextlib.suppress(HcopsError, OSError):
        mdb.run(host_shell(region, pol.local_target.host), script, timeout=30)


def _copy_catalog(ctx: Context) -> None:
    """The catalog's offsite copy, sealed with the region key (rebuilt from manifests when lost)."""
    if ctx.offsite is None:
        return
    dk = new_data_key()
    buf = io.BytesIO()
    seal(io.BytesIO(ctx.catalog.path.read_bytes()), buf, dk, "catalog.db")
    wrapped = ctx.key.wrap(dk, "catalog")
    try:
        ctx.offsite.put_bytes("catalog/catalog.db.hcb", buf.getvalue())
        ctx.offsite.put_bytes("catalog/catalog.key", wrapped.encode())
    except HcopsError:
        pass  # the manifests offsite are enough to rebuild; the next run copies it again


def rebuild_catalog(catalog: Catalog, key: RegionKey, store: SshDirStore | DirStore | S3Store) -> int:
    """Read every manifest in a store, check its signature, and enter it in the catalog."""
    n = 0
    for k in store.list(""):
        if not k.endswith("/manifest.json"):
            continue
        m = Manifest.from_json(store.read_bytes(k).decode(), f"{store.where} {k}")
        m.check_signature(key)
        catalog.record(m, "good")
        catalog.confirm(m.backup_id, store.where)
        n += 1
    return n


def prune(region: Region, policy: str, ov: Overrides, *, dry_run: bool,
          deleter: Callable[[Entry], None] | None = None) -> retention.PrunePlan:
    pol = policy_of(region, policy)
    cat = Catalog.for_region(region.name)
    try:
        plan = retention.plan(policy, cat.entries(policy), pol.retention)
        if dry_run or not plan.deletes:
            return plan
        ctx = context(region, policy, ov)
        for c in plan.deletes:
            e = cat.get(c.backup_id)
            for store in (ctx.local, ctx.offsite):
                if store is None:
                    continue
                for o in [*e.manifest.objects]:
                    store.delete(f"{policy}/{e.id}/{o.name}")
                store.delete(f"{policy}/{e.id}/manifest.json")
            cat.set_state(e.id, "expired")
        return plan
    finally:
        cat.close()
