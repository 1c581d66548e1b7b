"""Turn a former primary into a replica of the current one, re-seeding it when its binlogs diverged.

A primary lost mid-write may hold transactions the new primary never received (with semi-sync
AFTER_SYNC only ones nobody was told were committed). Its GTID position then is not a prefix of
the new primary's history; MariaDB (gtid_strict_mode) refuses to replicate, and the only safe road
back is a fresh copy of the primary. Rejoin tries the cheap road first, and re-seeds when the GTIDs
(or the server itself, error 1236) say the histories differ.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from dr.failover import gtid
from dr.failover.runbook import iso, replicate_from, set_boot_fence, sql
from dr.failover.topology import current_primary, observe, observe_host, powered_on, remote
from infra.lab import control
from inventories.errors import HcopsError
from inventories.model import Region

DUMP = ("mariadb-dump --all-databases --single-transaction --gtid --master-data=1 "
        "--routines --events --triggers --flush-privileges")


@dataclass
class RejoinResult:
    region: str
    host: str
    primary: str
    started: str
    ended: str = ""
    reseeded: bool = False
    reason: str = ""
    steps: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


SETTLE_S = 3.0  # an IO thread shows Yes for a moment before the primary refuses its position (1236)


def _replica_healthy(region: Region, svc: Any, host: str, timeout: float = 20) -> tuple[bool, str]:
    """Both threads running without an error for SETTLE_S in a row (a first Yes/Yes is not proof:
    seen on the lab, a diverged server was taken for a replica and the refusal came a moment later)."""
    deadline = time.monotonic() + timeout
    since: float | None = None
    while True:
        st = observe_host(region, svc, host)
        r = st.replica
        if r.get("Last_IO_Errno", "0") not in ("0", "") or r.get("Last_SQL_Errno", "0") not in ("0", ""):
            return False, r.get("Last_IO_Error") or r.get("Last_SQL_Error") or "replication error"
        if r.get("Slave_IO_Running") == "Yes" and r.get("Slave_SQL_Running") == "Yes":
            since = since or time.monotonic()
            if time.monotonic() - since >= SETTLE_S:
                return True, "replicating"
        else:
            since = None
        if time.monotonic() > deadline:
            return False, f"IO {r.get('Slave_IO_Running')}, SQL {r.get('Slave_SQL_Running')} after {timeout:.0f} s"
        time.sleep(0.3)


def reseed(region: Region, svc: Any, host: str, primary: str) -> str:
    dump = remote(region, primary, DUMP, timeout=600)
    if dump.returncode != 0:
        raise HcopsError(f"dump of {primary} failed: {dump.stderr.strip()[-300:]}", f"check MariaDB on {primary}")
    sql(region, host, "STOP SLAVE;\nRESET SLAVE ALL;\nRESET MASTER;\nSET GLOBAL gtid_slave_pos='';\n")
    # the copy replaces this server's data: what only it had (the diverged rows, a database the
    # primary lacks) goes first, or the dump's CREATE ... IF NOT EXISTS would keep it beside the copy
    rows = sql(region, host, "SELECT schema_name AS n FROM information_schema.schemata WHERE schema_name "
                             "NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys');\n")
    own = [r["n"] for r in (rows[-1] if rows else [])]
    if own:
        sql(region, host, "SET SESSION sql_log_bin=0;\n" + "".join(
            f"DROP DATABASE `{d.replace('`', '``')}`;\n" for d in own), timeout=120)
    # the copy is not this server's history: loaded outside its binlog, or its own GTIDs for every
    # row would make it diverge again from the primary it is about to follow
    load = remote(region, host, "mariadb", timeout=600, stdin="SET SESSION sql_log_bin=0;\n" + dump.stdout)
    if load.returncode != 0:
        raise HcopsError(f"loading the copy of {primary} into {host} failed: {load.stderr.strip()[-300:]}",
                         f"check MariaDB on {host}")
    replicate_from(region, svc, host, primary, "slave_pos")
    return f"re-seeded from {primary} ({len(dump.stdout) // 1024} KiB logical copy)"


def rejoin(region: Region, host: str, service: str | None = None) -> RejoinResult:
    if region.spec.region.kind == "lab" and host in region.hosts and not powered_on(region, host):
        set_boot_fence(region, host, True)  # it must not boot writable beside the primary
        control.start_host(region, host)
    name, svc, states = observe(region, service)
    members = [svc.primary, *svc.replicas]
    if host not in members:
        raise HcopsError(f"{host} is not a server of {name} ({', '.join(members)})", "name one of them")
    st = states[host]
    if not st.reachable:
        raise HcopsError(f"{host} does not answer: {st.error}", f"start it first (`hcops lab start-host {host}`)")
    primary = current_primary({h: s for h, s in states.items() if h != host})
    if primary is None:
        raise HcopsError(f"no single writable primary among the other servers of {name}",
                         "fail over first (`hcops failover db`), then rejoin")
    res = RejoinResult(region.name, host, primary, started=iso())
    sql(region, host, "SET GLOBAL read_only=ON;\n")
    res.steps.append({"at": iso(), "step": "fence", "note": f"{host} read_only=ON"})
    pst = states[primary]
    if gtid.diverged(st.current_pos, pst.binlog_pos):
        res.reason = f"{host} at {st.current_pos} holds transactions {primary} ({pst.binlog_pos}) never had"
    else:
        note = replicate_from(region, svc, host, primary, "current_pos")
        ok, why = _replica_healthy(region, svc, host)
        res.steps.append({"at": iso(), "step": "replicate", "note": f"{note}: {why}"})
        if not ok:
            res.reason = f"replication refused: {why}"
    if res.reason:
        res.reseeded = True
        res.steps.append({"at": iso(), "step": "reseed", "note": reseed(region, svc, host, primary)})
        ok, why = _replica_healthy(region, svc, host)
        if not ok:
            raise HcopsError(f"{host} still does not replicate after the re-seed: {why}",
                             f"inspect `SHOW SLAVE STATUS` on {host}")
        res.steps.append({"at": iso(), "step": "replicate", "note": why})
    res.ended = iso()
    return res
