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
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Literal

import pulumi

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


class ProgramSettingsError(pulumi.RunError):
    """A setting the program cannot run without: the message says which, `hint` how to set it.

    A `pulumi.RunError`, so a run under the Pulumi CLI prints the message instead of a Python
    traceback; `hcops` turns it into its error line with `fix:`."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message}. fix: {hint}")
        self.message, self.hint = message, hint


SIDE_KEYS: dict[Side, str] = {"private": "privateCloud", "public": "publicCloud"}


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
    key: str = "privateCloud"  # the stack-config key this side is read from (for messages)
    # Sizes -> the cloud's flavor names (`48c112g: c6.12xlarge.2`): real clouds sell fixed
    # shapes, rarely one with exactly the model's vCPU and RAM. `exact` asks Nova for a flavor
    # with exactly that vCPU/RAM (private clouds that define their own flavors).
    flavors: dict[str, str] = field(default_factory=dict)
    flavor_lookup: Literal["map", "exact"] = "map"
    image_ids: dict[str, str] = field(default_factory=dict)  # os -> pinned image id
    ntp_servers: tuple[str, ...] = ()
    # link name -> address of the cloud's attachment point (VPN / dedicated-line gateway) in this
    # side's sites, where no `gateway` host of the model terminates the link.
    link_gateways: dict[str, str] = field(default_factory=dict)

    def resolvers(self) -> tuple[list[IPv4Address], list[IPv4Address]]:
        return [IPv4Address(a) for a in self.dns_nameservers], [IPv4Address(a) for a in self.ntp_servers]

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
    def from_mapping(cls, data: dict[str, Any], env_cloud: str | None, *, key: str = "privateCloud",
                     offline: bool = False) -> SideConfig:
        images = dict(DEFAULT_IMAGES)
        images.update({str(k): str(v) for k, v in (data.get("images") or {}).items()})
        flavors = {str(k): str(v) for k, v in (data.get("flavors") or {}).items()}
        # Without a map an offline preview still runs (mock flavors); a real run says which size
        # has no flavor.
        lookup = str(data.get("flavorLookup") or ("exact" if offline and not flavors else "map"))
        if lookup not in ("map", "exact"):
            raise ProgramSettingsError(f"hcops:{key}.flavorLookup is {lookup!r}", "use `map` or `exact`")
        try:
            ntp = tuple(str(IPv4Address(str(a))) for a in data.get("ntpServers") or ())
            dns = tuple(str(IPv4Address(str(a))) for a in data.get("dnsNameservers") or ())
        except ValueError as exc:
            raise ProgramSettingsError(f"hcops:{key}: {exc}", "give DNS and NTP servers as IPv4 addresses") from None
        return cls(
            key=key,
            flavors=flavors,
            flavor_lookup="exact" if lookup == "exact" else "map",
            image_ids={str(k): str(v) for k, v in (data.get("imageIds") or {}).items()},
            ntp_servers=ntp,
            link_gateways={str(k): str(v) for k, v in (data.get("linkGateways") or {}).items()},
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
            dns_nameservers=dns,
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
    # What the stack already holds per side (Demand field -> count), from its state: the quota
    # preflight gives it back before comparing usage with the limits.
    owned: dict[str, dict[str, int]] = field(default_factory=dict)

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
        side: SideConfig.from_mapping(values.get(key) or {}, _env_cloud(side), key=key, offline=offline)
        for side, key in SIDE_KEYS.items()
    }
    key = values.get("sshPublicKey")
    private_key: Path | None = None
    key_file = values.get("sshPublicKeyFile") or os.environ.get("HCOPS_SSH_PUBLIC_KEY_FILE")
    if key is None and key_file:
        try:
            key = Path(key_file).read_text().strip()
        except OSError as exc:
            raise ProgramSettingsError(f"SSH public key file {key_file}: {exc.strerror}",
                                       "point hcops:sshPublicKeyFile / HCOPS_SSH_PUBLIC_KEY_FILE at a readable "
                                       ".pub file") from None
        private_key = Path(str(key_file).removesuffix(".pub"))
    if key is None:
        default = region_state_dir(region) / "ssh" / "id_ed25519.pub"
        if default.exists():
            key, private_key = default.read_text().strip(), default.with_suffix("")
        elif offline:
            key = OFFLINE_PUBLIC_KEY
    if key is None:
        raise ProgramSettingsError("no SSH public key for the hosts' keypairs",
                                   "set hcops:sshPublicKey or HCOPS_SSH_PUBLIC_KEY_FILE, or run `hcops infra up`, "
                                   "which generates a key in the region's state directory")
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
        owned={str(side): {str(k): int(v) for k, v in (counts or {}).items()}
               for side, counts in (values.get("owned") or {}).items()},
    )


def from_pulumi_config(region: str) -> ProgramConfig:
    """Read the `hcops:*` stack config inside a running Pulumi program."""
    cfg = pulumi.Config("hcops")
    values: dict[str, Any] = {}
    for key in ("privateCloud", "publicCloud", "s3", "encryptedVolumeTypes", "owned"):
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
