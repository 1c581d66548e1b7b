"""`hcops backup`: run, list, show, prune, restore, verify, key export, and pacs-load (synthetic
studies into the region's PACS, the image tree the PACS policies back up).

Only parsing and rendering here; the engines are in dr/backup/. Data on stdout (table or
JSON), progress bars on stderr.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from cli.common import REGION_OPTION, Exit, emit_json, examples, is_json, region_from, stderr, stdout, usage_error
from dr.backup import engine, pacs, restore, verify
from dr.backup.catalog import Catalog
from dr.backup.dicom_synth import StudyPlan
from dr.backup.keys import export_key, load_key
from dr.backup.status import policy_status
from inventories.errors import HcopsError
from inventories.schema import Pacs

app = typer.Typer(help="Backups: MariaDB (physical, incremental, binlog, logical) and PACS image trees to the "
                  "backup host and offsite S3; encrypted, verified, retained.", no_args_is_help=True)
key_app = typer.Typer(help="The region's backup key (without it nothing can be restored).", no_args_is_help=True)
app.add_typer(key_app, name="key")

KEY_FILE = typer.Option(None, "--key-file", help="Exported region key (a fresh controller restoring).")
S3_ENDPOINT = typer.Option(None, "--s3-endpoint", help="Offsite S3 endpoint (default: the region's outputs).")
S3_CREDS = typer.Option(None, "--s3-credentials", help="ini file with the bucket credentials.")
LOCAL_DIR = typer.Option(None, "--local-dir", help="The local target as a directory on this machine "
                         "(when running on the backup host itself).")


def _ov(key_file: Path | None = None, *, s3_endpoint: str | None = None, s3_credentials: Path | None = None,
        local_dir: Path | None = None, bwlimit: float | None = None, parallel: int = 4) -> engine.Overrides:
    return engine.Overrides(key_file=key_file, local_dir=local_dir, s3_endpoint=s3_endpoint,
                            s3_credentials=s3_credentials, bandwidth_mbit=bwlimit, parallel=parallel)


def _size(n: int) -> str:
    f = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if f < 1024 or unit == "TiB":
            return f"{f:.1f} {unit}" if unit != "B" else f"{int(f)} B"
        f /= 1024
    return str(n)


@app.command()
def run(ctx: typer.Context, *, region: str | None = REGION_OPTION,
        policy: str = typer.Option(..., "--policy", "-p", help="Backup policy from the model."),
        kind: str = typer.Option("auto", "--kind", help="auto (full weekly, else incremental), full, incremental, "
                                 "logical (mariadb-dump), binlog (store the archived binlogs)."),
        bwlimit: float | None = typer.Option(None, "--bwlimit", help="Offsite bandwidth cap, Mbit/s."),
        parallel: int = typer.Option(4, "--parallel", help="Offsite parts in flight."),
        local_dir: Path | None = LOCAL_DIR, s3_endpoint: str | None = S3_ENDPOINT,
        s3_credentials: Path | None = S3_CREDS) -> None:
    """Take a backup now: stream, compress, encrypt, store on the backup host, copy offsite, confirm.

    Exit 0: good (every destination confirmed); 1: failed or offsite not confirmed (the next run resumes).
    """
    reg = region_from(ctx, region)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=stderr, transient=True, disable=not stderr.is_terminal) as bars:
        tasks: dict[str, int] = {}

        def progress(label: str, n: int, total: int | None) -> None:
            if label not in tasks:
                tasks[label] = int(bars.add_task(label, total=total))
            bars.advance(tasks[label], n)  # type: ignore[arg-type]

        ov = _ov(None, s3_endpoint=s3_endpoint, s3_credentials=s3_credentials, local_dir=local_dir, bwlimit=bwlimit,
                 parallel=parallel)
        out = engine.run_policy(reg, policy, kind, ov, progress)
    if is_json(ctx):
        emit_json({"policy": policy, "host": out.host, "why": out.why, "ok": out.ok,
                   "results": [vars(r) | {"uploads": [vars(u) for u in r.uploads]} for r in out.results]})
    else:
        if out.why:
            stderr.print(f"source: {out.why}")
        t = Table(title=f"backup run {policy}")
        for c in ("backup", "kind", "state", "read", "stored", "offsite parts (reused)", "seconds"):
            t.add_column(c)
        for r in out.results:
            parts = sum(u.parts for u in r.uploads)
            reused = sum(u.parts_reused for u in r.uploads)
            t.add_row(r.backup_id, r.kind, r.state, _size(r.plain_bytes), _size(r.stored_bytes),
                      f"{parts} ({reused})" if r.uploads else "-", f"{r.seconds:.1f}",
                      style="" if r.ok else "red")
        stdout.print(t)
    for r in out.results:
        if not r.ok:
            stderr.print(f"error: {r.backup_id}: {r.error}", style="bold red", markup=False)
            if r.fix:
                stderr.print(f"  fix: {r.fix}", markup=False)
    raise typer.Exit(Exit.OK if out.ok else Exit.ERROR)


@app.command("list")
def list_(ctx: typer.Context, *, region: str | None = REGION_OPTION,
          policy: str | None = typer.Option(None, "--policy", "-p", help="Only this policy's backups.")) -> None:
    """Backups in the catalog, and each policy's last verified backup and its age."""
    reg = region_from(ctx, region)
    cat = Catalog.for_region(reg.name)
    try:
        entries = cat.entries(policy)
    finally:
        cat.close()
    status = policy_status(reg)
    if is_json(ctx):
        emit_json({"policies": [{"policy": s.policy, "last_verified_at": s.last_verified_at,
                                 "verified_where": list(s.verified_where), "age_s": s.age_s} for s in status],
                   "backups": [e.to_dict() for e in entries]})
        return
    st = Table(title="policies")
    for c in ("policy", "last verified", "where", "age"):
        st.add_column(c)
    for s in status:
        st.add_row(s.policy, str(s.last_verified_at or "never"), ",".join(s.verified_where) or "-",
                   f"{s.age_s / 3600:.1f} h" if s.age_s is not None else "-")
    stdout.print(st)
    t = Table(title="backups")
    for c in ("backup", "kind", "parent", "started", "state", "stored", "where"):
        t.add_column(c)
    for e in entries:
        t.add_row(e.id, e.kind, e.parent or "-", e.started_at, e.state, _size(e.stored_bytes),
                  ",".join(sorted(e.places)) or "-")
    stdout.print(t)


@app.command()
def show(ctx: typer.Context, backup_id: str, *, region: str | None = REGION_OPTION) -> None:
    """One backup: objects, checksums, chain, source facts, verifications."""
    reg = region_from(ctx, region)
    cat = Catalog.for_region(reg.name)
    try:
        e = cat.get(backup_id)
        chain = [c.id for c in restore.chain_of(cat, backup_id)] if e.state in ("good", "partial") else []
    finally:
        cat.close()
    data = e.to_dict() | {"chain": chain, "objects": [vars(o) for o in e.manifest.objects],
                          "key_fingerprint": e.manifest.key_fingerprint}
    if is_json(ctx):
        emit_json(data)
        return
    for k in ("id", "policy", "kind", "state", "started_at", "finished_at", "places", "chain", "facts",
              "key_fingerprint"):
        stdout.print(f"[bold]{k}[/]: {data[k]}", highlight=False)
    t = Table(title="objects")
    for c in ("name", "stored", "plain", "sha256"):
        t.add_column(c)
    for o in e.manifest.objects:
        t.add_row(o.name, _size(o.size), _size(o.plain_size), o.sha256)
    stdout.print(t)


@app.command("prune")
def prune_(ctx: typer.Context, *, region: str | None = REGION_OPTION,
           policy: str = typer.Option(..., "--policy", "-p", help="Backup policy from the model."),
           dry_run: bool = typer.Option(False, "--dry-run", help="Show what would go; delete nothing (exit 2 "
                                        "when something would go)."),
           yes: bool = typer.Option(False, "--yes", help="Delete without asking (needed without --dry-run).")) -> None:
    """Apply the policy's retention: never the last verified full, nor anything a kept chain needs."""
    reg = region_from(ctx, region)
    if not dry_run and not yes:
        raise HcopsError("prune deletes backups", "look first with --dry-run, then pass --yes")
    plan = engine.prune(reg, policy, engine.Overrides(), dry_run=dry_run)
    if is_json(ctx):
        emit_json({"policy": policy, "dry_run": dry_run, "changes": [vars(c) for c in plan.changes]})
    else:
        t = Table(title=f"prune {policy}" + (" (dry run)" if dry_run else ""))
        for col in ("backup", "action", "why"):
            t.add_column(col)
        for ch in plan.changes:
            t.add_row(ch.backup_id, ch.action, ch.reason, style="yellow" if ch.action == "delete" else "")
        stdout.print(t)
    raise typer.Exit(Exit.CHANGES if dry_run and plan.deletes else Exit.OK)


@app.command("restore")
def restore_(ctx: typer.Context, backup_id: str, *, region: str | None = REGION_OPTION,
             target: Path = typer.Option(..., "--target-dir", help="Empty directory to restore into."),
             source: str = typer.Option("local", "--from", help="local or offsite."),
             key_file: Path | None = KEY_FILE, s3_endpoint: str | None = S3_ENDPOINT,
             s3_credentials: Path | None = S3_CREDS, local_dir: Path | None = LOCAL_DIR,
             until: str | None = typer.Option(None, "--until", help="Point in time: 'YYYY-MM-DD HH:MM:SS' (UTC)."),
             until_gtid: str | None = typer.Option(None, "--until-gtid", help="Point in time: a GTID."),
             path: list[str] = typer.Option([], "--path", help="File trees: only these files/directories."),
             reindex: bool = typer.Option(False, "--reindex", help="PACS: rebuild Orthanc's index by re-ingesting "
                                          "the images.")) -> None:
    """Restore a backup (and its chain) into a directory; MariaDB optionally to a point in time."""
    reg = region_from(ctx, region)
    ov = _ov(key_file, s3_endpoint=s3_endpoint, s3_credentials=s3_credentials, local_dir=local_dir)
    if source not in ("local", "offsite"):
        raise HcopsError(f"--from {source}: unknown copy", "use --from local or --from offsite")
    if reindex and (path or until or until_gtid):
        raise usage_error("--reindex rebuilds the index of the whole PACS tree: no --path, --until or --until-gtid",
                          "restore without --reindex for part of the tree", ctx)
    cat = Catalog.for_region(reg.name)
    e = cat.get(backup_id)
    cat.close()
    if reindex:
        restore.require_pacs(e)
    c = engine.context(reg, e.policy, ov, offsite=source == "offsite")
    store = c.offsite if source == "offsite" else c.local
    assert store is not None
    try:
        if reindex:
            res = restore.restore_reindexed(c.key, store, c.catalog, e, target)
        else:
            res = restore.restore_backup(c.key, store, c.catalog, e, target, until=until, until_gtid=until_gtid,
                                         paths=path or None)
    finally:
        c.catalog.close()
    if is_json(ctx):
        emit_json(vars(res) | {"ok": res.ok})
    else:
        stdout.print(f"restored {backup_id} (chain {' -> '.join(res.chain)}) into {res.target}"
                     + (f", rolled forward to {res.point}" if res.point else ""), highlight=False)
        if res.reindexed is not None:
            stdout.print(f"re-indexed {res.reindexed} instances into a fresh Orthanc index in {res.target} "
                         f"({res.reindex_seconds:.1f} s); stop Orthanc and point storage_dir at it",
                         highlight=False)
        if res.keyfile:
            stdout.print(f"encrypted at rest: its key is in {res.keyfile} (root only); a server on this data "
                         "needs plugin_load_add=file_key_management and file_key_management_filename set to it "
                         "(backup-my.cnf in the target has both)", highlight=False)
        for b in res.bad:
            stderr.print(f"error: {b}: checksum mismatch or missing", style="bold red", markup=False)
    raise typer.Exit(Exit.OK if res.ok else Exit.ERROR)


@app.command("verify")
def verify_(ctx: typer.Context, backup_id: str, *, region: str | None = REGION_OPTION,
            source: str = typer.Option("local", "--from", help="local or offsite."),
            key_file: Path | None = KEY_FILE, s3_endpoint: str | None = S3_ENDPOINT,
            s3_credentials: Path | None = S3_CREDS, local_dir: Path | None = LOCAL_DIR) -> None:
    """Read back every object, check sha256 and signature, restore to scratch and check; record it."""
    reg = region_from(ctx, region)
    cat = Catalog.for_region(reg.name)
    e = cat.get(backup_id)
    cat.close()
    c = engine.context(reg, e.policy, _ov(key_file, s3_endpoint=s3_endpoint, s3_credentials=s3_credentials,
                           local_dir=local_dir),
                       offsite=source == "offsite")
    store = c.offsite if source == "offsite" else c.local
    assert store is not None
    try:
        res = verify.verify(c.key, store, c.catalog, backup_id, canary_sql=engine.CANARY_SQL
                            if e.policy and e.kind in ("full", "incremental") else None)
    finally:
        c.catalog.close()
    if is_json(ctx):
        emit_json(vars(res))
    else:
        stdout.print(f"verify {backup_id} at {res.place}: {'ok' if res.ok else 'FAILED'} "
                     f"({res.checked_objects} objects{'; ' + res.detail if res.detail else ''})", highlight=False)
        for p in res.problems:
            stderr.print(f"error: {p}", style="bold red", markup=False)
    raise typer.Exit(Exit.OK if res.ok else Exit.ERROR)


@key_app.command("export")
def key_export(ctx: typer.Context, dest: Path, *, region: str | None = REGION_OPTION) -> None:
    """Write the region's backup key to DEST (0600) for offline safekeeping; never overwrites."""
    reg = region_from(ctx, region)
    key = load_key(reg.name, create=True)
    export_key(key, dest)
    if is_json(ctx):
        emit_json({"region": reg.name, "fingerprint": key.fingerprint, "file": str(dest)})
    else:
        stdout.print(f"exported the backup key of {reg.name} (fingerprint {key.fingerprint}) to {dest}; "
                     "keep it offline: without it no backup can be restored", highlight=False)


@app.command("pacs-load", epilog=examples("hcops backup pacs-load --region lab",
                                          "hcops backup pacs-load --region lab --studies 50 --seed 7"))
def pacs_load(ctx: typer.Context, *, region: str | None = REGION_OPTION,
              service: str | None = typer.Option(None, "--service", help="The pacs service (default: the region's "
                                                 "only one)."),
              studies: int = typer.Option(2, "--studies", min=1, max=100000, help="Studies to generate."),
              series: int = typer.Option(2, "--series", min=1, max=100, help="Series per study."),
              instances: int = typer.Option(3, "--instances", min=1, max=1000, help="Instances (images) per series."),
              seed: int = typer.Option(0, "--seed", min=0, help="Same seed, same studies and UIDs (a rerun stores "
                                       "nothing new); another seed, other patients.")) -> None:
    """Store synthetic DICOM studies (pydicom, small CT images, no real patient) in the region's PACS
    through Orthanc's REST API, then read back that Orthanc lists every instance.

    Exit 0: all stored and listed; 1: Orthanc refused, unreachable, or an instance is not listed.
    """
    reg = region_from(ctx, region)
    names = [n for n, s in reg.services.items() if isinstance(s, Pacs)]
    if service is None:
        if len(names) != 1:
            raise usage_error(f"region {reg.name} has {len(names) or 'no'} pacs services" +
                              (f" ({', '.join(names)})" if names else ""),
                              "name one with --service NAME" if names else "add a `kind: pacs` service to the model",
                              ctx)
        service = names[0]
    elif service not in names:
        raise usage_error(f"--service {service}: not a pacs service of region {reg.name}",
                          f"use one of: {', '.join(names)}" if names else "add a `kind: pacs` service to the model",
                          ctx)
    plan = StudyPlan(studies=studies, series=series, instances=instances, seed=seed)
    client = pacs.client_for(reg, service)
    res = pacs.load_studies(client, plan)
    if is_json(ctx):
        emit_json({"service": service, "url": client.url, "stored": res.stored, "studies": len(res.studies),
                   "listed": len(res.uids) - len(res.missing), "missing": res.missing, "ok": res.ok})
    else:
        stdout.print(f"stored {res.stored} instances ({len(res.studies)} studies x {series} series x {instances}) "
                     f"in {service} at {client.url}; Orthanc lists {len(res.uids) - len(res.missing)} of them back",
                     highlight=False)
        if res.missing:
            stderr.print(f"error: {len(res.missing)} stored instances are not listed by Orthanc "
                         f"(e.g. {res.missing[0]})", style="bold red", markup=False)
    raise typer.Exit(Exit.OK if res.ok else Exit.ERROR)
