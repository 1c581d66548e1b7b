"""Benchmark: offsite goodput through the lab's shaped dedicated line (100 Mbit/s), from the
backup host in the local data center to the cloud side's SeaweedFS, as a fraction of line rate
(goal >= 90%), beside rclone and restic run from the same host on the same data in the same run.

    .venv/bin/python benchmarks/backup_offsite.py [--region lab] [--mb 200]

Needs the lab up and deployed (`./run lab`, or a scratch copy of the region). hcops sends the
object's parts from backup1 itself (presigned part URLs, 4 in flight); rclone (`copyto`, 4 upload
streams, 8 MiB chunks) and restic (`backup`, S3 backend) are Debian's, installed on backup1
through the lab's package proxy. Credentials reach backup1 on stdin only. Objects written are
deleted at the end.
"""

from __future__ import annotations

import argparse
import configparser
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dr.backup.engine import host_shell  # noqa: E402
from dr.backup.s3store import S3Settings, S3Store  # noqa: E402
from dr.backup.stores import SshDirStore, part_reader, remote_part_sender  # noqa: E402
from infra.lab import control  # noqa: E402
from infra.state import read_outputs  # noqa: E402
from inventories.loader import load_region  # noqa: E402

BUCKET = "pacs-images"
HOST = "backup1"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--region", default="lab")
    ap.add_argument("--mb", type=int, default=200)
    args = ap.parse_args()
    region = load_region(args.region)
    out = read_outputs(region.name)
    assert out.s3 is not None, "the region has no S3 endpoint"
    cp = configparser.ConfigParser()
    cp.read(out.s3.credentials_file)
    ak, sk = cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"]
    line = next(iter(region.links.values())).bandwidth_mbit
    nbytes = args.mb << 20

    def sh(cmd: str, stdin: str | None = None, timeout: float = 900) -> str:
        return control.ssh(region, HOST, cmd, timeout=timeout, check=True, stdin=stdin).stdout

    sh("command -v rclone >/dev/null && command -v restic >/dev/null || "
       "DEBIAN_FRONTEND=noninteractive apt-get install -y -q rclone restic >/dev/null", timeout=600)
    sh(f"mkdir -p /srv/backup/bench && head -c {nbytes} /dev/urandom > /srv/backup/bench/obj")
    store = SshDirStore(host_shell(region, HOST), "/srv/backup/bench", HOST)
    sha = store.sha256("obj")
    assert sha
    s3 = S3Store(S3Settings(endpoint=out.s3.endpoint, bucket=BUCKET, access_key=ak, secret_key=sk, parallel=4))
    size, read = part_reader(store, "obj")
    t0 = time.monotonic()
    rep = s3.upload("bench/hcops/obj", size, read, sha, remote=remote_part_sender(store, "obj"))
    t_hc = time.monotonic() - t0
    assert not rep.skipped

    env = (f"export RCLONE_CONFIG_OFF_TYPE=s3 RCLONE_CONFIG_OFF_PROVIDER=Other "
           f"RCLONE_CONFIG_OFF_ENDPOINT={out.s3.endpoint} RCLONE_CONFIG_OFF_ACCESS_KEY_ID={ak} "
           f"RCLONE_CONFIG_OFF_SECRET_ACCESS_KEY={sk} AWS_ACCESS_KEY_ID={ak} AWS_SECRET_ACCESS_KEY={sk} "
           f"RESTIC_PASSWORD=bench-only RESTIC_REPOSITORY=s3:{out.s3.endpoint}/{BUCKET}/bench/restic\n")
    t0 = time.monotonic()
    sh("sh -s", stdin=env + f"rclone copyto --s3-upload-concurrency 4 --s3-chunk-size 8M "
       f"/srv/backup/bench/obj off:{BUCKET}/bench/rclone/obj\n")
    t_rc = time.monotonic() - t0
    sh("sh -s", stdin=env + "restic init >/dev/null\n")
    t0 = time.monotonic()
    sh("sh -s", stdin=env + "restic backup --quiet /srv/backup/bench/obj\n")
    t_rs = time.monotonic() - t0

    def rate(t: float) -> float:
        return nbytes * 8 / t / 1e6

    print(f"offsite upload of {args.mb} MiB from {HOST} across the {line} Mbit/s line to SeaweedFS:")
    for name, t in (("hcops", t_hc), ("rclone", t_rc), ("restic", t_rs)):
        print(f"  {name:7s} {t:6.1f} s  {rate(t):6.1f} Mbit/s  = {rate(t) / line * 100:5.1f}% of line rate")
    print(f"  ratios: hcops/rclone goodput {t_rc / t_hc:.2f}x, hcops/restic {t_rs / t_hc:.2f}x "
          f"({rep.parts} parts, {s3.s.parallel} in flight)")
    # clean up what the run wrote
    c = s3.client
    for page in c.get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix="bench/"):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            c.delete_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])
    sh(f"rm -rf {shlex.quote('/srv/backup/bench')}")


if __name__ == "__main__":
    main()
