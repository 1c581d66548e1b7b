"""The region model's shape: what a region file may say, typed and checked field by field.

Cross-references (a host named by a service, an address inside its network) are checked in
`inventories.checks`, after this structural pass, so that both kinds of error are reported
together.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
SiteKind = Literal["provincial_dc", "city_dc", "public_cloud", "county_hospital", "township_clinic"]
Purpose = Literal["app", "db", "mgmt", "dmz", "storage"]
Provider = Literal["lab", "openstack"]
ServiceKind = Literal["mysql", "oracle", "nginx", "canary", "zabbix", "collector", "object_storage", "pacs"]
Port = Annotated[int, Field(ge=1, le=65535)]
Role = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


_BACKUP_REQUIRED: tuple[ServiceKind, ...] = ("mysql", "oracle", "pacs")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionSettings(_Strict):
    """Region-wide facts: its name, what it demands of every service, how admins get in."""

    name: Name
    description: str = ""
    kind: Literal["lab", "county", "city", "province"] = "city"
    domain: str = "hcops.internal"
    require_backup_for: list[ServiceKind] = Field(default_factory=lambda: list(_BACKUP_REQUIRED))
    admin_sources: list[str] = Field(
        default_factory=list,
        description="network refs (site.network) or CIDRs from which SSH/admin ports are open",
    )
    admin_ports: list[Port] = Field(default_factory=lambda: [22])
    production: bool = Field(default=False, description="drills here need an explicit --production flag")
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    automation_account: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,31}$")] = Field(
        default="hcops",
        description="the account Ansible and hcops log in as (key only, audited sudo, no password)",
    )
    log_host: Name | None = Field(
        default=None, description="host that receives every host's audit and auth logs (level-3 8.1.4.3)")
    log_retention_days: Annotated[int, Field(ge=180)] = 180
    time_source: Name | None = Field(
        default=None, description="host that serves time to the region's hosts (default: each network's gateway)")


class Network(_Strict):
    cidr: IPv4Network
    purpose: Purpose
    vlan: Annotated[int, Field(ge=1, le=4094)] | None = None
    existing: str | None = Field(
        default=None,
        description="OpenStack: name of an existing Neutron network to use (its subnet with this cidr) "
                    "instead of creating one; public clouds often hand out the VPC network",
    )


class Size(_Strict):
    vcpu: Annotated[int, Field(ge=1, le=512)]
    ram_gb: Annotated[int, Field(ge=1, le=4096)]
    disks_gb: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [20])


class Reliability(_Strict):
    """How often a part fails and how long it takes to repair (availability by design).

    Parts that state none take the documented defaults of `dr/availability/defaults.py`.
    """

    mtbf_h: Annotated[float, Field(gt=0, description="mean time between failures, hours")]
    mttr_h: Annotated[float, Field(gt=0, description="mean time to repair, hours")]


class Host(_Strict):
    roles: list[Role] = Field(default_factory=list)
    size: Size | None = None
    flavor: str | None = None
    addresses: dict[Name, IPv4Address]
    os: Literal["debian12", "ubuntu22", "oraclelinux8", "rhel8", "rhel9"] = "debian12"
    reliability: Reliability | None = None
    availability_zone: str | None = Field(
        default=None, description="OpenStack: the availability zone the host (and its volumes) go to")

    @model_validator(mode="after")
    def _size_or_flavor(self) -> Host:
        if self.size is None and self.flavor is None:
            raise ValueError("a host needs a `size` (vcpu, ram_gb, disks_gb) or a `flavor`")
        if not self.addresses:
            raise ValueError("a host needs at least one address")
        return self


EquipmentKind = Literal["server", "switch", "firewall", "vpn", "router", "ups", "rack", "pdu", "storage", "other"]
SpecValue = str | int | float | bool


class HardwareModel(_Strict):
    """A product a site may buy, written once for the region (a line of the procurement catalogue).

    `rack_units` and `power_w` are per unit; a `rack` offers `capacity_u`, a `ups` offers
    `capacity_w`, and the plan checks that what a site buys fits in them.
    """

    kind: EquipmentKind
    model: str = Field(description="make and model, or the tender's wording")
    specs: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")], SpecValue] = Field(
        default_factory=dict)
    rack_units: Annotated[int, Field(ge=0, le=48)] = 0
    power_w: Annotated[int, Field(ge=0)] = 0
    capacity_u: Annotated[int, Field(ge=0, le=60)] = 0
    capacity_w: Annotated[int, Field(ge=0)] = 0
    unit_price: Annotated[float, Field(ge=0)] | None = None


class Equipment(_Strict):
    """One line of a site's bill of materials. A line that names `hosts` is the servers those hosts
    run on (its quantity is their number); other lines give a `quantity` (default 1)."""

    model: Name
    quantity: Annotated[int, Field(ge=1, le=1000)] | None = None
    hosts: list[Name] = Field(default_factory=list)
    purpose: str = ""

    @property
    def count(self) -> int:
        return len(self.hosts) if self.hosts else (self.quantity or 1)


class MonitoringProxy(_Strict):
    """A remote site's Zabbix proxy: the site's agents report to it, it forwards to the server and
    keeps what it collected while the line to the server is down."""

    host: Name = Field(description="host of this site that runs the proxy (the collector, usually)")
    offline_buffer_h: Annotated[int, Field(ge=1, le=720, description=(
        "hours of data the proxy keeps while it cannot reach the server (ProxyOfflineBuffer)"))] = 24
    config_frequency_s: Annotated[int, Field(ge=1, le=604800, description=(
        "how often the proxy fetches its configuration from the server (ConfigFrequency)"))] = 300


class Site(_Strict):
    kind: SiteKind
    provider: Provider
    county: Name | None = None
    description: str = ""
    networks: dict[Name, Network]
    hosts: dict[Name, Host] = Field(default_factory=dict)
    existing_router: str | None = Field(
        default=None, description="OpenStack: name of an existing router the site's new networks attach to")
    monitoring_proxy: MonitoringProxy | None = Field(
        default=None, description="a remote site: its hosts report to Zabbix through a proxy on this site")


class Link(_Strict):
    kind: Literal["dedicated_line", "vpn"]
    between: Annotated[list[Name], Field(min_length=2, max_length=2)]
    bandwidth_mbit: Annotated[int, Field(ge=1)]
    latency_ms: Annotated[float, Field(ge=0)] = 0.0
    encryption: Literal["wireguard", "ipsec", "none"] = "wireguard"
    uplinks: Annotated[int, Field(ge=1, le=4, description=(
        "independent routes carrying the line (2 = dual uplinks with 1+1 route protection)"))] = 1
    reliability: Reliability | None = Field(default=None, description="of one route")


class _Service(_Strict):
    network: Purpose | None = Field(
        default=None, description="purpose of the network the service listens on; derived when omitted"
    )


# Database-level privileges an application account may hold. Not ALL, not GRANT OPTION: an
# application that needs schema changes names them (level 3: least privilege per account).
DbPrivilege = Literal["SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "INDEX", "ALTER",
                      "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE", "CREATE VIEW", "SHOW VIEW",
                      "CREATE ROUTINE", "ALTER ROUTINE", "EVENT", "TRIGGER", "REFERENCES"]


def _read_write_rows() -> list[DbPrivilege]:
    return ["SELECT", "INSERT", "UPDATE", "DELETE"]


class DatabaseSpec(_Strict):
    user: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    privileges: list[DbPrivilege] = Field(
        default_factory=_read_write_rows, min_length=1,
        description="what the account may do in its own database (default: read and write rows only)")


class FailoverPolicy(_Strict):
    """How (and how far) a database service may fail over; the drills' targets sit beside it.

    Defaults follow Orchestrator's habits: no promotion of a replica more than `max_lag_s` behind,
    no second unplanned failover inside `anti_flap_s`, and more than one observer before acting.
    """

    auto: bool = Field(default=True, description="the failover manager may promote without an operator")
    watch_service: bool = Field(default=True, description=(
        "run the manager (`hcops failover watch`) as a systemd service on the operations host, installed "
        "by the playbooks; false where drills and tests run their own manager (the lab)"))
    max_lag_s: Annotated[float, Field(ge=0)] = 10.0
    anti_flap_s: Annotated[int, Field(ge=0)] = 3600
    observers_required: Annotated[int, Field(ge=2)] = 2
    detect_checks: Annotated[int, Field(ge=1)] = 3
    check_interval_s: Annotated[float, Field(gt=0)] = 1.0
    rto_target_s: Annotated[float, Field(gt=0)] = 30.0
    rpo_target_writes: Annotated[int, Field(ge=0)] = 0
    max_write_stall_s: Annotated[float, Field(ge=0)] = 30.0
    max_failed_requests: Annotated[int, Field(ge=0)] = 0


class MySQL(_Service):
    kind: Literal["mysql"]
    flavor: Literal["mariadb", "mysql"] = "mariadb"
    primary: Name
    replicas: list[Name] = Field(default_factory=list)
    port: Port = 3306
    semi_sync: bool = True
    databases: dict[Name, DatabaseSpec] = Field(default_factory=dict)
    failover: FailoverPolicy = Field(default_factory=FailoverPolicy)


class Oracle(_Service):
    kind: Literal["oracle"]
    hosts: Annotated[list[Name], Field(min_length=1)]
    port: Port = 1521
    sid: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9]{0,7}$")] = "ORCL"


class Listener(_Strict):
    port: Port
    protocol: Literal["http", "https"] = "https"
    pool: Name


class Pool(_Strict):
    service: Name
    max_fails: Annotated[int, Field(ge=1)] = 3
    fail_timeout_s: Annotated[int, Field(ge=1)] = 10


class Nginx(_Service):
    kind: Literal["nginx"]
    hosts: Annotated[list[Name], Field(min_length=1)]
    vip: IPv4Address | None = None
    listeners: Annotated[list[Listener], Field(min_length=1)]
    pools: dict[Name, Pool]
    public: bool = True
    vip_via: Literal["auto", "keepalived", "octavia"] = Field(
        default="auto",
        description="who holds the VIP: `auto` = Octavia where the hosts' site is on OpenStack, keepalived "
                    "elsewhere (the lab, hosts that own their L2); one mechanism per service, never both",
    )


class Canary(_Service):
    kind: Literal["canary"]
    hosts: Annotated[list[Name], Field(min_length=1)]
    port: Port = 8080
    database: Name
    prober: Name | None = Field(default=None, description=(
        "host that probes every SLO's service through its real path and keeps the probe history "
        "that `hcops availability report` reads"))
    probe_interval_s: Annotated[float, Field(ge=1, le=300)] = 10.0


class Zabbix(_Service):
    kind: Literal["zabbix"]
    server: Name
    port: Port = 10051
    frontend_port: Port = 8081
    frontend_tls: bool = Field(default=False, description="serve frontend and API over https with a region-CA "
                               "certificate (the sync then verifies it against the region CA)")


class Collector(_Service):
    kind: Literal["collector"]
    host: Name
    peer: Name
    link: Name
    port: Port = 51820
    tunnel_cidr: IPv4Network | None = Field(
        default=None, description="addresses inside the tunnel: the peer takes the first, the collector the second"
    )
    tunnel_ports: Annotated[list[Port], Field(min_length=1)] = Field(
        default_factory=lambda: [443],
        description="TCP/UDP ports of the peer the collector may reach inside the tunnel (others are dropped)")


class Bucket(_Strict):
    purpose: Literal["backup", "images", "app"] = "backup"
    versioning: bool = True
    object_lock: bool = False
    capacity_tb: Annotated[float, Field(ge=0)] = 0.0
    growth_tb_per_year: Annotated[float, Field(ge=0)] = 0.0


class ObjectStorage(_Service):
    kind: Literal["object_storage"]
    site: Name
    host: Name | None = Field(default=None, description="host serving the endpoint (lab only)")
    port: Port = 9000
    buckets: Annotated[dict[Name, Bucket], Field(min_length=1)]


class Pacs(_Service):
    """A PACS image store (Orthanc): DICOM in over the DICOM port, REST (viewers, loaders) over
    `port`; the image files under `storage_dir` are what a file-tree backup policy protects."""

    kind: Literal["pacs"]
    host: Name
    port: Port = Field(default=8042, description="REST API (HTTP, basic auth)")
    dicom_port: Port = Field(default=4242, description="DICOM C-STORE / C-FIND / C-MOVE")
    ae_title: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,15}$")] = Field(
        default="HCOPS_PACS", description="the DICOM application entity title: 1-16 of A-Z, 0-9, _ and -")
    storage_dir: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$")] = Field(
        default="/var/lib/orthanc/db", description="where Orthanc keeps its index and image files (backed up)")

    @model_validator(mode="after")
    def _distinct_ports(self) -> Pacs:
        if self.port == self.dicom_port:
            raise ValueError(f"port and dicom_port are both {self.port}: REST and DICOM need a port each")
        if ".." in self.storage_dir.split("/"):
            raise ValueError("storage_dir must not contain `..`")
        return self


Service = Annotated[
    MySQL | Oracle | Nginx | Canary | Zabbix | Collector | ObjectStorage | Pacs,
    Field(discriminator="kind"),
]


class Rule(_Strict):
    """One allowed flow: a source may reach a service on some of its ports."""

    source: str = Field(alias="from", description="`internet`, a site, `site.network` or a CIDR")
    to: Name
    ports: list[Port] | None = None
    description: str = ""


class LocalTarget(_Strict):
    host: Name
    path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9._/-]*$")]


class OffsiteTarget(_Strict):
    bucket: Name


class Retention(_Strict):
    daily: Annotated[int, Field(ge=0)] = 7
    weekly: Annotated[int, Field(ge=0)] = 4
    monthly: Annotated[int, Field(ge=0)] = 12
    yearly: Annotated[int, Field(ge=0)] = 0


class Encryption(_Strict):
    algorithm: Literal["aes-256-gcm", "chacha20-poly1305"] = "aes-256-gcm"


class BackupPolicy(_Strict):
    service: Name
    schedule: str = Field(description="cron expression, five fields")
    local_target: LocalTarget
    offsite_target: OffsiteTarget | None = None
    retention: Retention = Field(default_factory=Retention)
    encryption: Encryption = Field(default_factory=Encryption)


class SLO(_Strict):
    service: Name
    target: Annotated[float, Field(gt=0, lt=100)]
    window: Literal["month", "quarter", "year"] = "month"


PublicKey = Annotated[str, StringConstraints(pattern=r"^(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa|sk-\S+) \S+")]


class Admin(_Strict):
    """A named human administrator: logs in with their own key plus a TOTP code (8.1.4.1 d), then
    uses sudo, which asks for a fresh code."""

    full_name: str = ""
    ssh_keys: list[PublicKey] = Field(
        default_factory=list, description="public keys; in a lab region the controller makes one when empty")


Severity = Literal["information", "warning", "average", "high", "disaster"]


class Person(_Strict):
    """Someone who is paged: how to reach them (at least one way)."""

    name: str = Field(min_length=1)
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 -]{5,20}$",
                              description="number the SMS / IM gateway behind the webhook pages")

    @model_validator(mode="after")
    def _reachable(self) -> Person:
        if not self.email and not self.phone:
            raise ValueError("a person needs an `email` or a `phone` to be paged")
        return self


class OncallGroup(_Strict):
    members: Annotated[list[Name], Field(min_length=1)]
    description: str = ""


class EscalationStep(_Strict):
    after_minutes: Annotated[int, Field(ge=0, le=7 * 24 * 60)]
    notify: Annotated[list[Name], Field(min_length=1, description="on-call groups paged at this step")]


class Webhook(_Strict):
    url: str = Field(pattern=r"^https?://", description="the SMS / WeChat Work / DingTalk gateway hcops posts to")


class Email(_Strict):
    smtp_server: str = Field(min_length=1)
    smtp_port: Port = 25
    from_address: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+$")


class Oncall(_Strict):
    """Who is paged for the region's problems, how, and who next when nobody reacts."""

    people: dict[Name, Person] = Field(default_factory=dict)
    groups: dict[Name, OncallGroup] = Field(default_factory=dict)
    escalation: list[EscalationStep] = Field(default_factory=list)
    page_severities: list[Severity] = Field(default_factory=lambda: list[Severity](["high", "disaster"]))
    webhook: Webhook | None = None
    email: Email | None = None


class RegionSpec(_Strict):
    """Everything a region's files say, merged from all of them."""

    region: RegionSettings
    sites: dict[Name, Site]
    links: dict[Name, Link] = Field(default_factory=dict)
    services: dict[Name, Service] = Field(default_factory=dict)
    rules: dict[Name, Rule] = Field(default_factory=dict)
    backup_policies: dict[Name, BackupPolicy] = Field(default_factory=dict)
    slos: dict[Name, SLO] = Field(default_factory=dict)
    hardware: dict[Name, HardwareModel] = Field(
        default_factory=dict, description="the procurement catalogue: products sites may buy")
    equipment: dict[Name, dict[Name, Equipment]] = Field(
        default_factory=dict, description="per site: servers, switches, firewall, VPN device, UPS, racks it buys")
    admins: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,31}$")], Admin] = Field(
        default_factory=dict, description="named human administrators (login names)")
    oncall: Oncall = Field(default_factory=Oncall)


SECTIONS = tuple(RegionSpec.model_fields)
