"""What the database servers of a service say about themselves right now.

Every query runs as the host's root over its local socket (ssh through `infra.lab.control` in the
lab; the same function on any provider whose hosts answer ssh), so no database password leaves
the hosts. Hosts are asked in parallel; an unreachable one is reported, not raised.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dr.failover import gtid
from infra.lab import control, hosts
from infra.lab.layout import Layout
from infra.state import read_outputs
from inventories.errors import HcopsError
from inventories.model import Region
from inventories.schema import MySQL

STATE_SQL = (
    "SELECT @@global.read_only AS read_only, @@global.gtid_binlog_pos AS binlog_pos, "
    "@@global.gtid_current_pos AS current_pos, @@global.gtid_slave_pos AS slave_pos, "
    "@@global.server_id AS server_id, "
    "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
    " WHERE VARIABLE_NAME='RPL_SEMI_SYNC_MASTER_STATUS') AS semi_sync_primary, "
    "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
    " WHERE VARIABLE_NAME='RPL_SEMI_SYNC_MASTER_CLIENTS') AS semi_sync_clients;\n"
    "SHOW SLAVE STATUS;\n"
)


@dataclass
class DbState:
    host: str
    address: str
    reachable: bool
    error: str | None = None
    read_only: bool | None = None
    server_id: int | None = None
    binlog_pos: str = ""
    current_pos: str = ""
    slave_pos: str = ""
    semi_sync_primary: bool | None = None
    semi_sync_clients: int | None = None
    replica: dict[str, str] = field(default_factory=dict)  # SHOW SLAVE STATUS, empty when not a replica

    @property
    def is_replica(self) -> bool:
        return bool(self.replica)

    @property
    def writable(self) -> bool:
        return self.reachable and self.read_only is False

    @property
    def received_pos(self) -> str:
        """Everything this server holds (applied or still in its relay log)."""
        if self.replica.get("Gtid_IO_Pos"):
            io = self.replica["Gtid_IO_Pos"]
            return io if gtid.covers(io, self.current_pos) else self.current_pos
        return self.current_pos

    @property
    def lag_s(self) -> float | None:
        v = self.replica.get("Seconds_Behind_Master")
        return float(v) if v not in (None, "", "NULL") else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["writable"] = self.writable
        d["received_pos"] = self.received_pos
        return d


def mysql_service(region: Region, service: str | None = None) -> tuple[str, MySQL]:
    """The region's mysql service by name, or its only one."""
    found = {n: s for n, s in region.services.items() if isinstance(s, MySQL)}
    if service is not None:
        if service not in found:
            raise HcopsError(f"region {region.name!r} has no mysql service {service!r}",
                             f"use one of: {', '.join(sorted(found)) or '(none)'}")
        return service, found[service]
    if len(found) != 1:
        raise HcopsError(f"region {region.name!r} has {len(found)} mysql services",
                         f"name one with --service ({', '.join(sorted(found))})")
    name = next(iter(found))
    return name, found[name]


MUX_DIR = Path("/tmp/hcops-ssh-mux")  # noqa: S108 (0700, root's own; a socket path must stay short)


def remote(region: Region, host: str, command: str, *, timeout: float = 60, check: bool = False,
           stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`infra.lab.control.ssh`, over one multiplexed connection per host.

    A failover is a few dozen short commands; a fresh ssh handshake each (about 2 s on a loaded lab
    host) would be most of the RTO. The master connection lives 60 s after its last use.
    """
    layout = Layout(region)
    MUX_DIR.mkdir(mode=0o700, exist_ok=True)
    args = control.ssh_args(layout, layout.host(host), command)
    args[1:1] = ["-o", "ControlMaster=auto", "-o", f"ControlPath={MUX_DIR}/%C", "-o", "ControlPersist=60"]
    if not layout.ssh_config.exists():
        read_outputs(region.name)
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise HcopsError(f"`{command[:60]}` on {host} did not finish within {timeout:.0f} s",
                         f"check the host: `hcops lab ssh {host}`") from None
    if check and proc.returncode != 0:
        raise HcopsError(f"`{command[:60]}` on {host} failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}",
                         "see the output above")
    return proc


def powered_on(region: Region, host: str) -> bool:
    """Is the host's machine running at all (lab: its container's init exists)? Cheap: no ssh."""
    if region.spec.region.kind != "lab":
        return True  # other providers: only the host itself can tell, over ssh
    return hosts.leader(Layout(region).host(host)) is not None


def run_sql(region: Region, host: str, sql: str, timeout: float = 20) -> list[list[dict[str, str]]]:
    """Run statements as root on `host`; returns one list of rows per result set."""
    proc = remote(region, host, "mariadb --batch --raw --column-names", timeout=timeout, stdin=sql)
    if proc.returncode != 0:
        raise HcopsError(f"SQL on {host} failed: {(proc.stderr or proc.stdout).strip()[-400:]}",
                         f"check MariaDB on {host}: `hcops lab ssh {host} -- systemctl status mariadb`")
    return _parse_batch(proc.stdout)


def _parse_batch(out: str) -> list[list[dict[str, str]]]:
    """Batch output of several statements: each result set is a header line then rows.

    Each statement of ours returns a fixed, known set of columns, and a header line is recognised
    by its first column name; that is enough to split the stream.
    """
    sets: list[list[dict[str, str]]] = []
    header: list[str] | None = None
    for line in out.splitlines():
        cols = line.split("\t")
        if cols and cols[0] in ("read_only", "Slave_IO_State", "ok", "n", "gtid", "Variable_name", "seq"):
            header = cols
            sets.append([])
            continue
        if header is not None:
            sets[-1].append(dict(zip(header, cols, strict=False)))
    return sets


def observe_host(region: Region, service: MySQL, host: str) -> DbState:
    address = str(region.hosts[host].primary_address)
    if not powered_on(region, host):
        return DbState(host, address, reachable=False, error="host is powered off")
    try:
        sets = run_sql(region, host, STATE_SQL, timeout=12)
    except HcopsError as exc:
        return DbState(host, address, reachable=False, error=exc.message)
    if not sets or not sets[0]:
        return DbState(host, address, reachable=False, error="no answer to the state query")
    row = sets[0][0]
    st = DbState(host, address, reachable=True, read_only=row["read_only"] == "1",
                 server_id=int(row["server_id"]), binlog_pos=row["binlog_pos"], current_pos=row["current_pos"],
                 slave_pos=row["slave_pos"], semi_sync_primary=row.get("semi_sync_primary") == "ON",
                 semi_sync_clients=int(row["semi_sync_clients"]) if row.get("semi_sync_clients") else None)
    if len(sets) > 1 and sets[1]:
        st.replica = sets[1][0]
    return st


def observe(region: Region, service_name: str | None = None) -> tuple[str, MySQL, dict[str, DbState]]:
    name, svc = mysql_service(region, service_name)
    read_outputs(region.name)  # not provisioned: say so, rather than call every server unreachable
    members = [svc.primary, *svc.replicas]
    with ThreadPoolExecutor(max_workers=len(members)) as pool:
        states = list(pool.map(lambda h: observe_host(region, svc, h), members))
    return name, svc, {s.host: s for s in states}


def current_primary(states: dict[str, DbState]) -> str | None:
    """The writable server that replicates from no one, if exactly one exists."""
    writable = [s.host for s in states.values() if s.writable and not s.is_replica]
    return writable[0] if len(writable) == 1 else None
