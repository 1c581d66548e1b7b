"""Benchmark: file trees (a PACS-shaped tree of many small files).

1. A no-change incremental run of `hcops`'s file-tree backup (stat + local index, nothing read)
   beside `rclone check` of the same tree against its copy (default: hashes; and --size-only),
   goal: faster.
2. Restore of the tree (files/s) by hcops beside `restic restore` of the same tree from a local
   restic repository, goal: faster.

    .venv/bin/python benchmarks/backup_files.py [--files 1000000] [--restore-files 100000]
        [--rounds 3] [--dir /var/tmp] [--skip-no-change]

The tree is generated under /var/tmp (two-level hashed directories like Orthanc's storage, files
of 200-2000 bytes). Everything runs on this machine; rclone and restic are Debian's.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dr.backup import restore  # noqa: E402
from dr.backup.catalog import Catalog  # noqa: E402
from dr.backup.filetree import Index, TreeSource  # noqa: E402
from dr.backup.keys import RegionKey  # noqa: E402
from dr.backup.pipeline import Context, run_backup  # noqa: E402
from dr.backup.stores import DirStore  # noqa: E402


def make_tree(root: Path, n: int) -> None:
    rnd = random.Random(42)
    for i in range(n):
        h = f"{rnd.getrandbits(32):08x}"
        d = root / h[:2] / h[2:4]
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i:08d}.dcm").write_bytes(rnd.randbytes(rnd.randint(200, 2000)))


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.monotonic() - t0


def backup(ctx: Context, idx: Index, root: Path) -> tuple[str, float, int]:
    t0 = time.monotonic()
    src = TreeSource(root, idx, parent=idx.last_backup(), source="bench")
    r = run_backup(ctx, src)
    assert r.ok, r.error
    idx.apply(src.upserts, src.deletes, r.backup_id)
    return r.backup_id, time.monotonic() - t0, len(src.upserts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--restore-files", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3, help="restores by each tool, alternating")
    ap.add_argument("--dir", default="/var/tmp", help="where the trees go (e.g. /dev/shm: no disk noise)")
    ap.add_argument("--skip-no-change", action="store_true", help="only the restore comparison")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="hcops-bench-files-", dir=args.dir))
    os.environ["HCOPS_STATE_DIR"] = str(base / "state")
    try:
        key = RegionKey("bench", os.urandom(32))
        cat = Catalog(base / "catalog.db")
        ctx = Context(region="bench", policy="pacs", key=key, local=DirStore(base / "store"), offsite=None,
                      catalog=cat)

        # 1. no-change run over --files files
        if not args.skip_no_change:
            tree = base / "tree"
            t = time.monotonic()
            make_tree(tree, args.files)
            print(f"tree: {args.files:,} files generated in {time.monotonic() - t:.0f} s")
            idx = Index(base / "index.db")
            _bid, first, n = backup(ctx, idx, tree)
            print(f"hcops first (full) backup: {n:,} files in {first:.1f} s ({n / first:,.0f} files/s)")
            _bid, nochange, n = backup(ctx, idx, tree)
            assert n == 0
            copy = base / "copy"
            # the copy only gives rclone check something to compare with: cp is the quickest way
            t_copy = timed(["cp", "-a", str(tree), str(copy)])
            t_check = timed(["rclone", "check", "--checkers", "8", "--one-way", str(tree), str(copy)])
            t_size = timed(["rclone", "check", "--checkers", "8", "--one-way", "--size-only", str(tree), str(copy)])
            print(f"no-change run over {args.files:,} files: hcops {nochange:.1f} s | rclone check {t_check:.1f} s "
                  f"(ratio {t_check / nochange:.1f}x) | rclone check --size-only {t_size:.1f} s "
                  f"(ratio {t_size / nochange:.1f}x)   [cp -a of the tree took {t_copy:.0f} s]")
            shutil.rmtree(copy)

        # 2. restore of --restore-files files, hcops and restic alternately, --rounds times each;
        # the disk of a shared machine is noisy, so the medians are compared, and each timing
        # ends once the restored files are on disk (sync), as a restore is not done before
        small = base / "small"
        make_tree(small, args.restore_files)
        idx2 = Index(base / "index2.db")
        ctx.policy = "pacs-small"
        bid, _t, _n = backup(ctx, idx2, small)
        env = dict(os.environ, RESTIC_PASSWORD="bench-only-not-a-secret", RESTIC_REPOSITORY=str(base / "restic"))
        subprocess.run(["restic", "init"], check=True, capture_output=True, env=env)
        t_rb = timed(["restic", "backup", "--quiet", str(small)], env=env)
        times: dict[str, list[float]] = {"hcops": [], "restic": []}
        for i in range(args.rounds):
            for tool, runs in times.items():
                dest = base / f"restored-{tool}-{i}"
                os.sync()
                t0 = time.monotonic()
                if tool == "hcops":
                    res = restore.restore_tree(key, ctx.local, cat, bid, dest)
                    assert res.ok and res.files == args.restore_files
                else:
                    subprocess.run(["restic", "restore", "latest", "--target", str(dest)], check=True,
                                   capture_output=True, env=env)
                os.sync()
                runs.append(time.monotonic() - t0)
                shutil.rmtree(dest)
        t_hc, t_rr = statistics.median(times["hcops"]), statistics.median(times["restic"])
        print(f"restore of {args.restore_files:,} files (median of {args.rounds}, in {base.parent}): hcops "
              f"{t_hc:.1f} s ({args.restore_files / t_hc:,.0f} files/s) | restic restore {t_rr:.1f} s "
              f"({args.restore_files / t_rr:,.0f} files/s) | ratio {t_rr / t_hc:.2f}x   "
              f"[runs: hcops {', '.join(f'{t:.1f}' for t in times['hcops'])}; restic "
              f"{', '.join(f'{t:.1f}' for t in times['restic'])}; restic backup took {t_rb:.0f} s]")
        cat.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
