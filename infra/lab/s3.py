"""The public cloud's object storage in the lab: moto's S3 server as its own process.

It listens on the lab machine's address in the object storage site's network, so traffic from
the other site crosses the shaped line like any other. Authentication is enforced (moto's IAM
mode): after three bootstrap calls that create a lab user, its policy and its key, every request
must be signed with that key, which is written to a 0600 ini file in the state directory.
moto keeps objects in memory: a restarted endpoint starts empty (buckets are recreated).
"""

from __future__ import annotations

import configparser
import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.lab.layout import Layout, S3Spec
from infra.lab.system import alive, terminate, write_private
from inventories.errors import HcopsError

BOOTSTRAP_CALLS = 3  # create_user, put_user_policy, create_access_key
LAB_USER = "hcops-lab"


def pidfile(layout: Layout) -> Path:
    return layout.run_dir / "s3.pid"


def credentials_file(layout: Layout) -> Path:
    return layout.state / "s3" / "credentials.ini"


def running(layout: Layout) -> int | None:
    try:
        pid = int(pidfile(layout).read_text().strip())
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if not alive(pid):
        return None
    return pid if b"moto.server" in cmd else None


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


def client(layout: Layout, spec: S3Spec, creds: tuple[str, str] | None = None) -> Any:
    """An S3 client for the lab endpoint with the lab's credentials."""
    key, secret = creds or read_credentials(layout) or ("none", "none")
    return boto3.client("s3", endpoint_url=spec.endpoint, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret)


def _iam_bootstrap_client(spec: S3Spec) -> Any:
    # The first calls of a fresh moto server are accepted unsigned; any key works for them.
    return boto3.client("iam", endpoint_url=spec.endpoint, region_name="us-east-1",
                        aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")  # noqa: S106 (not a secret)


def missing_buckets(layout: Layout, spec: S3Spec) -> list[str] | None:
    """Model buckets absent from the endpoint; None when the endpoint or credentials do not work."""
    if running(layout) is None or read_credentials(layout) is None:
        return None
    try:
        have = {b["Name"] for b in client(layout, spec).list_buckets().get("Buckets", [])}
    except (BotoCoreError, ClientError):
        return None
    return [b for b in spec.buckets if b not in have]


def _port_open(addr: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((addr, port), timeout=0.5):
        return True
    return False


def _start(layout: Layout, spec: S3Spec) -> None:
    addr = str(spec.bridge.host_address)
    if _port_open(addr, spec.port):
        raise HcopsError(f"{addr}:{spec.port} is already in use by another process",
                         "stop it (see `ss -ltnp`), then rerun `hcops infra up`")
    if importlib.util.find_spec("moto") is None:
        raise HcopsError("moto's server is not installed (the lab's S3 endpoint)",
                         "pip install 'moto[server]' in hcops' environment (`./run lab` does it)")
    log = layout.state / "logs" / "s3.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(BOOTSTRAP_CALLS)
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", addr, "-p", str(spec.port)],
                                stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env)
    pidfile(layout).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 30
    while not _port_open(addr, spec.port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise HcopsError(f"the S3 endpoint did not start on {addr}:{spec.port}", f"see {log}")
        time.sleep(0.2)
    iam = _iam_bootstrap_client(spec)
    iam.create_user(UserName=LAB_USER)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName=LAB_USER, PolicyName="lab-s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=LAB_USER)["AccessKey"]
    write_private(credentials_file(layout),
                  f"[default]\naws_access_key_id = {key['AccessKeyId']}\n"
                  f"aws_secret_access_key = {key['SecretAccessKey']}\n")


def ensure(layout: Layout, spec: S3Spec) -> list[str]:
    """Endpoint up with working credentials and every model bucket; returns what was done."""
    done: list[str] = []
    missing = missing_buckets(layout, spec)
    if missing is None:
        stop(layout)
        _start(layout, spec)
        done.append(f"started S3 endpoint {spec.endpoint}")
        missing = list(spec.buckets)
    s3 = client(layout, spec)
    for name in missing:
        versioning, lock = spec.buckets[name]
        s3.create_bucket(Bucket=name, **({"ObjectLockEnabledForBucket": True} if lock else {}))
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        done.append(f"created bucket {name}" + (" (versioned)" if versioning else "")
                    + (" (object lock)" if lock else ""))
    return done


def stop(layout: Layout) -> bool:
    pid = running(layout)
    if pid is not None:
        terminate(pid)
    with contextlib.suppress(FileNotFoundError):
        pidfile(layout).unlink()
    return pid is not None
