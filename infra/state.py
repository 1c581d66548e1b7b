"""Where a region's runtime state lives, and the outputs contract every provider writes.

A region's state directory (default `/var/lib/hcops/<region>`, or `$HCOPS_STATE_DIR/<region>`)
holds what provisioning produced and what must never enter the repo: generated SSH keys,
secrets, the outputs file. Both providers (the lab and Pulumi) write `outputs.json` in the
`RegionOutputs` form, so deploy, monitoring and DR read one shape whoever built the region.
"""

from __future__ import annotations

import json
import os
import secrets
from ipaddress import IPv4Address
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inventories.errors import HcopsError

STATE_ROOT_DEFAULT = Path("/var/lib/hcops")
CACHE_ROOT_DEFAULT = Path("/var/cache/hcops")


def state_root() -> Path:
    return Path(os.environ.get("HCOPS_STATE_DIR", STATE_ROOT_DEFAULT))


def cache_root() -> Path:
    """Expensive artefacts kept across runs (the lab base image); never required."""
    return Path(os.environ.get("HCOPS_CACHE_DIR", CACHE_ROOT_DEFAULT))


def region_state_dir(region: str, create: bool = False) -> Path:
    path = state_root() / region
    if create:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


class HostOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: str
    ssh_address: IPv4Address
    addresses: dict[str, IPv4Address]
    provider_id: str = Field(description="container name or cloud server id")


class S3Output(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: str
    region_name: str = "us-east-1"
    credentials_file: Path = Field(description="ini file with aws_access_key_id/aws_secret_access_key")
    buckets: dict[str, str] = Field(default_factory=dict, description="model bucket -> real bucket name")


class RegionOutputs(BaseModel):
    """What provisioning produced, in the one form the later engines read."""

    model_config = ConfigDict(extra="forbid")
    region: str
    provider: Literal["lab", "openstack"]
    ssh_user: str = "root"
    ssh_private_key: Path | None = None
    known_hosts: Path | None = Field(default=None, description="the hosts' SSH keys, checked on every connection")
    hosts: dict[str, HostOutput] = Field(default_factory=dict)
    vips: dict[str, IPv4Address] = Field(default_factory=dict, description="service -> VIP")
    s3: S3Output | None = None


def outputs_path(region: str) -> Path:
    return region_state_dir(region) / "outputs.json"


def write_outputs(outputs: RegionOutputs) -> Path:
    path = outputs_path(outputs.region)
    region_state_dir(outputs.region, create=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(outputs.model_dump_json(indent=2) + "\n")
    tmp.replace(path)
    return path


def read_outputs(region: str) -> RegionOutputs:
    path = outputs_path(region)
    if not path.exists():
        raise HcopsError(f"region {region!r} has not been provisioned: {path} does not exist",
                         f"run `hcops infra up --region {region}` first")
    try:
        return RegionOutputs.model_validate(json.loads(path.read_text()))
    except (ValueError, ValidationError) as exc:
        raise HcopsError(f"{path} is not a valid outputs file: {exc}",
                         f"rerun `hcops infra up --region {region}` to rewrite it") from None


def topology_path(region: str) -> Path:
    return region_state_dir(region) / "topology.json"


def read_db_primaries(region: str) -> dict[str, str]:
    """Which host is each database service's primary now, as the last failover left it.

    The model names the primary a region was built with; after a failover another server is
    the primary until someone fails back, and deploy must not turn it back into a replica (it
    would leave no writable server, or two). Empty when no failover ever ran.
    """
    path = topology_path(region)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        primaries = data["db_primaries"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in primaries.items()):
            raise ValueError("names must be strings")
        return dict(primaries)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HcopsError(f"{path} is not a valid topology record: {exc}",
                         "run `hcops failover status` to see the servers, then fix or delete the file") from None


def record_db_primary(region: str, service: str, host: str) -> Path:
    """Written by failover when it promotes a server (and by nothing else)."""
    path = topology_path(region)
    path.parent.mkdir(parents=True, exist_ok=True)
    primaries = read_db_primaries(region) if path.exists() else {}
    primaries[service] = host
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"db_primaries": primaries}, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


SecretKind = Literal["password", "psk", "token"]


class SecretStore:
    """Per-region generated secrets: files of mode 0600 in the state dir, never in the repo.

    Generated on first use and stable afterwards, so a rerun of deploy or monitoring sync sends
    the same passwords and PSKs.
    """

    def __init__(self, region: str) -> None:
        self.dir = region_state_dir(region) / "secrets"

    def _path(self, name: str) -> Path:
        if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"bad secret name {name!r}")
        return self.dir / name

    def _fix_modes(self, path: Path | None = None) -> None:
        """A store or secret left readable by an older version or by hand is closed again."""
        if self.dir.exists() and self.dir.stat().st_mode & 0o077:
            self.dir.chmod(0o700)
        if path is not None and path.exists() and path.stat().st_mode & 0o077:
            path.chmod(0o600)

    def get(self, name: str, kind: SecretKind = "password") -> str:
        path = self._path(name)
        if path.exists():
            self._fix_modes(path)
            return path.read_text().strip()
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fix_modes()
        value = secrets.token_hex(32) if kind == "psk" else secrets.token_urlsafe(24)
        tmp = self.dir / f".{name}.{os.getpid()}.new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # first writer wins, atomically: a racing second get reads the first
        except FileExistsError:
            return path.read_text().strip()
        finally:
            tmp.unlink(missing_ok=True)
        return value

    def set(self, name: str, value: str) -> None:
        """Replace a secret atomically (write a temp file, fsync, rename): never half a key."""
        path = self._path(name)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fix_modes()
        tmp = self.dir / f".{name}.{os.getpid()}.new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(value + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def exists(self, name: str) -> bool:
        return self._path(name).exists()
