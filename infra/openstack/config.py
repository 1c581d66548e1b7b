"""How the program reaches each cloud side, from stack config or the environment.

Credentials never pass through this module: the OpenStack provider plugin reads passwords and
application credentials itself from `clouds.yaml`/`secure.yaml` or `OS_*` variables, so they do
not enter the stack's state or hcops' logs. What is configured here is which cloud entry each
side uses, and the names a cloud gives to things (external network, encrypted volume type,
images), which differ from one cloud to the next.

Stack config (namespace `hcops`), one object per side::

    pulumi config set --path hcops:privateCloud.cloud city-dc
    pulumi config set --path hcops:publicCloud.cloud  ecs
    pulumi config set --path hcops:publicCloud.externalNetwork internet
    pulumi config set --path hcops:s3.endpoint https://obs.example

Without stack config a side uses `OS_CLOUD_PRIVATE`/`OS_CLOUD_PUBLIC` (clouds.yaml entries),
then `OS_CLOUD`, then the plain `OS_*` variables the provider reads on its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.openstack.topology import Side
from infra.state import region_state_dir

DEFAULT_IMAGES = {
    "debian12": "debian-12",
    "ubuntu22": "ubuntu-22.04",
    "oraclelinux8": "oraclelinux-8",
    "rhel8": "rhel-8",
    "rhel9": "rhel-9",
}
OFFLINE_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOFFLINEPREVIEWKEYNOTUSEDFORANYHOST offline-preview"
OFFLINE_S3_ENDPOINT = "https://s3.offline-preview.invalid"


@dataclass(frozen=True)
class SideConfig:
    """One cloud side: which cloud entry, and the names that cloud uses."""

    cloud: str | None = None
    auth_url: str | None = None
    region_name: str | None = None
    tenant_name: str | None = None
    user_name: str | None = None
    domain_name: str | None = None
    insecure: bool = False
    external_network: str = "public"
    floating_ip_pool: str | None = None
    volume_type: str = "encrypted"
    boot_volume_gb: int = 20
    images: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_IMAGES))
    dns_nameservers: tuple[str, ...] = ()

    @property
    def fip_pool(self) -> str:
        return self.floating_ip_pool or self.external_network

    def provider_args(self) -> dict[str, Any]:
        """Provider arguments; unset ones are left to the plugin's own `OS_*` lookup."""
        args: dict[str, Any] = {
            "cloud": self.cloud, "auth_url": self.auth_url, "region": self.region_name,
            "tenant_name": self.tenant_name, "user_name": self.user_name,
            "user_domain_name": self.domain_name, "project_domain_name": self.domain_name,
        }
        if self.insecure:
            args["insecure"] = True
        return {k: v for k, v in args.items() if v is not None}

    @classmethod
    def from_mapping(cls, data: dict[str, Any], env_cloud: str | None) -> SideConfig:
        images = dict(DEFAULT_IMAGES)
        images.update({str(k): str(v) for k, v in (data.get("images") or {}).items()})
        return cls(
            cloud=data.get("cloud") or env_cloud,
            auth_url=data.get("authUrl"),
            region_name=data.get("region"),
            tenant_name=data.get("tenantName"),
            user_name=data.get("userName"),
            domain_name=data.get("domainName"),
            insecure=bool(data.get("insecure", False)),
            external_network=str(data.get("externalNetwork", "public")),
            floating_ip_pool=data.get("floatingIpPool"),
            volume_type=str(data.get("volumeType", "encrypted")),
            boot_volume_gb=int(data.get("bootVolumeGb", 20)),
            images=images,
            dns_nameservers=tuple(str(d) for d in data.get("dnsNameservers") or ()),
        )


@dataclass(frozen=True)
class S3Config:
    """The public cloud's S3-compatible endpoint; keys stay in an ini file read at run time."""

    endpoint: str
    credentials_file: Path
    region_name: str = "us-east-1"


@dataclass(frozen=True)
class ProgramConfig:
    sides: dict[Side, SideConfig]
    ssh_public_key: str
    ssh_private_key: Path | None = None
    s3: S3Config | None = None
    bucket_prefix: str = ""
    quota_preflight: bool = False
    encrypted_volume_types: frozenset[str] = frozenset({"encrypted"})

    def side(self, side: Side) -> SideConfig:
        return self.sides.get(side) or SideConfig()


def _env_cloud(side: Side) -> str | None:
    return os.environ.get(f"OS_CLOUD_{side.upper()}") or os.environ.get("OS_CLOUD")


def _s3_from(data: dict[str, Any], region: str, offline: bool) -> S3Config | None:
    endpoint = data.get("endpoint") or os.environ.get("HCOPS_S3_ENDPOINT")
    if not endpoint:
        if not offline:
            return None
        endpoint = OFFLINE_S3_ENDPOINT
    creds = data.get("credentialsFile") or os.environ.get("HCOPS_S3_CREDENTIALS_FILE") \
        or str(region_state_dir(region) / "s3-credentials.ini")
    return S3Config(str(endpoint), Path(creds), str(data.get("region") or os.environ.get("HCOPS_S3_REGION")
                                                     or "us-east-1"))


def build_config(region: str, values: dict[str, Any], *, offline: bool) -> ProgramConfig:
    """A config from stack-config values (camelCase keys, as `pulumi config` stores them)."""
    sides: dict[Side, SideConfig] = {
        "private": SideConfig.from_mapping(values.get("privateCloud") or {}, _env_cloud("private")),
        "public": SideConfig.from_mapping(values.get("publicCloud") or {}, _env_cloud("public")),
    }
    key = values.get("sshPublicKey")
    private_key: Path | None = None
    key_file = values.get("sshPublicKeyFile") or os.environ.get("HCOPS_SSH_PUBLIC_KEY_FILE")
    if key is None and key_file:
        key = Path(key_file).read_text().strip()
        private_key = Path(str(key_file).removesuffix(".pub"))
    if key is None:
        default = region_state_dir(region) / "ssh" / "id_ed25519.pub"
        if default.exists():
            key, private_key = default.read_text().strip(), default.with_suffix("")
        elif offline:
            key = OFFLINE_PUBLIC_KEY
    if key is None:
        raise ValueError("no SSH public key: set hcops:sshPublicKey or HCOPS_SSH_PUBLIC_KEY_FILE")
    # Which volume types encrypt is the cloud's fact, stated apart from the types hosts use, so a
    # side configured with a plain type is caught by the policy instead of trusted.
    encrypted = {str(v) for v in values.get("encryptedVolumeTypes") or ("encrypted",)}
    return ProgramConfig(
        sides=sides,
        ssh_public_key=str(key),
        ssh_private_key=private_key,
        s3=_s3_from(values.get("s3") or {}, region, offline),
        bucket_prefix=str(values.get("bucketPrefix", f"{region}-")),
        quota_preflight=bool(values.get("quotaPreflight", False)),
        encrypted_volume_types=frozenset(encrypted),
    )


def from_pulumi_config(region: str) -> ProgramConfig:
    """Read the `hcops:*` stack config inside a running Pulumi program."""
    import pulumi  # noqa: PLC0415  (only a running program has stack config)

    cfg = pulumi.Config("hcops")
    values: dict[str, Any] = {}
    for key in ("privateCloud", "publicCloud", "s3", "encryptedVolumeTypes"):
        obj = cfg.get_object(key)
        if obj is not None:
            values[key] = obj
    for key in ("sshPublicKey", "sshPublicKeyFile", "bucketPrefix"):
        val = cfg.get(key)
        if val is not None:
            values[key] = val
    preflight = cfg.get_bool("quotaPreflight")
    if preflight is not None:
        values["quotaPreflight"] = preflight
    return build_config(region, values, offline=False)
