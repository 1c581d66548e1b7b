"""Carry out a FailoverPlan step by step, timestamp every step, append the journal.

The application path follows the primary by itself: each app connects only to a server that
answers `read_only=OFF` (the canary's discovery, see `playbooks/roles/canary`), so promoting
the candidate and fencing the old primary IS the repoint; nothing else has to be rewritten, and
TLS is verified end to end against the real server's name (a TCP proxy between would break that).
Fencing is what makes that safe: the old primary is made read-only and its sessions killed, or,
when it does not answer, powered off through the provider.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dr.failover import gtid, journal
from dr.failover.plan import FailoverPlan, Step
from dr.failover.topology import observe_host, powered_on, remote, run_sql
from infra.lab import control
from infra.lab.layout import Layout
from infra.state import SecretStore, record_db_primary
from inventories.errors import HcopsError
from inventories.model import Region
from inventories.schema import MySQL

FENCE_FILE = "/etc/mysql/mariadb.conf.d/99-hcops-fence.cnf"
FENCE_CNF = ("# Written by hcops failover: this server was fenced (or rejoined as a replica).\n"
             "# It boots read-only until hcops promotes it again, whatever 60-hcops.cnf says.\n"
             "[mysqld]\nread_only = ON\n")
TLS_CA = "/etc/mysql/tls/ca.pem"  # the mysql role's mysql_tls_dir
REPL_USER = "repl"  # the mysql role's mysql_replication_user
CATCH_UP_TIMEOUT_S = 30.0

KILL_APP_SESSIONS = (
    "SELECT CONCAT('KILL CONNECTION ', id, ';') AS n FROM information_schema.PROCESSLIST "
    "WHERE user NOT IN ('root','system user','event_scheduler','repl','zbx_monitor','mysql') "
    "AND id <> CONNECTION_ID();\n"
)


@dataclass
class StepResult:
    action: str
    host: str
    detail: str
    started: str
    ended: str
    ok: bool
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class FailoverResult:
    plan: FailoverPlan
    started: str
    ended: str = ""
    ok: bool = False
    new_primary: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        p = self.plan
        return {"region": p.region, "service": p.service, "kind": p.kind, "from": p.old_primary,
                "to": p.candidate, "forced": p.forced, "warnings": p.warnings, "started": self.started,
                "ended": self.ended, "ok": self.ok, "new_primary": self.new_primary, "error": self.error,
                "steps": [s.as_dict() for s in self.steps]}


def iso(t: datetime | None = None) -> str:
    return (t or journal.now()).isoformat(timespec="milliseconds")


def sql(region: Region, host: str, statements: str, timeout: float = 20) -> list[list[dict[str, str]]]:
    return run_sql(region, host, statements, timeout=timeout)


def _quote(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def set_boot_fence(region: Region, host: str, present: bool) -> None:
    """Keep a fenced server read-only across restarts (or lift that on promotion).

    A powered-off lab host gets the file on its disk before it boots, so it never comes up
    writable beside the new primary, not even for the seconds before a rejoin reaches it.
    """
    if region.spec.region.kind == "lab" and not powered_on(region, host):
        f = Layout(region).host(host).root / FENCE_FILE.lstrip("/")
        if present:
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(FENCE_CNF)
            f.chmod(0o644)
        else:
            f.unlink(missing_ok=True)
        return
    if present:
        remote(region, host, f"umask 022; cat > {FENCE_FILE}", timeout=15, check=True, stdin=FENCE_CNF)
    else:
        remote(region, host, f"rm -f {FENCE_FILE}", timeout=15, check=True)


def block_writes(region: Region, host: str) -> str:
    set_boot_fence(region, host, True)
    sets = sql(region, host, "SET GLOBAL read_only=ON;\n" + KILL_APP_SESSIONS)
    kills = [r["n"] for r in (sets[0] if sets else [])]
    if kills:  # --force: a session that ended by itself between the list and its kill is no error
        remote(region, host, "mariadb --batch --force", timeout=10, stdin="\n".join(kills) + "\n")
    return f"read_only=ON, {len(kills)} application session(s) killed"


def fence(region: Region, svc: MySQL, host: str) -> str:
    st = observe_host(region, svc, host)
    if st.reachable:
        return block_writes(region, host)
    if region.spec.region.kind == "lab":
        note = "already powered off"
        if powered_on(region, host):
            control.stop_host(region, host)
            note = "did not answer: powered off"
        set_boot_fence(region, host, True)
        return note + "; boots read-only"
    raise HcopsError(f"{host} does not answer and provider {region.spec.region.kind!r} cannot power it off here",
                     f"power {host} off (or cut its network) by hand, then rerun with --force")


def wait_applied(region: Region, svc: MySQL, host: str, target: str | None, timeout: float = CATCH_UP_TIMEOUT_S) -> str:
    """Wait until `host` has applied `target` (or, when None, everything it has received)."""
    deadline = time.monotonic() + timeout
    while True:
        st = observe_host(region, svc, host)
        if not st.reachable:
            raise HcopsError(f"{host} stopped answering during catch-up: {st.error}", "check it and rerun")
        want = target if target is not None else st.replica.get("Gtid_IO_Pos", st.current_pos)
        if gtid.covers(st.current_pos, want):
            return f"applied up to {st.current_pos or '(empty)'}"
        if st.replica.get("Slave_SQL_Running") == "No":
            raise HcopsError(f"{host}'s SQL thread stopped: {st.replica.get('Last_SQL_Error')}",
                             f"fix replication on {host} (SHOW SLAVE STATUS) before promoting it")
        if time.monotonic() > deadline:
            raise HcopsError(f"{host} did not catch up to {want} within {timeout:.0f} s (at {st.current_pos})",
                             "wait and rerun, or pick another replica with --to")
        time.sleep(0.2)


def promote(region: Region, host: str) -> str:
    sql(region, host, "STOP SLAVE;\nRESET SLAVE ALL;\nSET GLOBAL read_only=OFF;\n")
    set_boot_fence(region, host, False)
    return "read_only=OFF, replication removed"


def replicate_from(region: Region, svc: MySQL, host: str, primary: str, use: str = "current_pos") -> str:
    password = SecretStore(region.name).get(f"mysql-{_service_name(region, svc)}-replication")
    addr = str(region.hosts[primary].primary_address)
    set_boot_fence(region, host, True)
    # A former primary's own writes are in its binlog, not in gtid_slave_pos. Rather than leave it
    # on MASTER_USE_GTID=current_pos (which deploy would then rewrite: the role replicates with
    # slave_pos), take its current position as the replication position, once, and use slave_pos.
    adopt = "SET GLOBAL gtid_slave_pos=@@GLOBAL.gtid_current_pos;\n" if use == "current_pos" else ""
    stmt = (f"SET GLOBAL read_only=ON;\nSTOP SLAVE;\n{adopt}CHANGE MASTER TO MASTER_HOST={_quote(addr)}, "
            f"MASTER_PORT={svc.port}, MASTER_USER={_quote(REPL_USER)}, MASTER_PASSWORD={_quote(password)}, "
            f"MASTER_SSL=1, MASTER_SSL_CA={_quote(TLS_CA)}, MASTER_SSL_VERIFY_SERVER_CERT=1, "
            f"MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos;\nSTART SLAVE;\n")
    sql(region, host, stmt)
    return f"replicating from {primary} ({addr})"


def _service_name(region: Region, svc: MySQL) -> str:
    return next(n for n, s in region.services.items() if s is svc)


def verify(region: Region, svc: MySQL, primary: str) -> str:
    members = [svc.primary, *svc.replicas]
    states = [observe_host(region, svc, h) for h in members]
    writable = [s.host for s in states if s.writable]
    if writable != [primary]:
        raise HcopsError(f"after the switch the writable servers are {writable or 'none'}, expected [{primary}]",
                         "inspect with `hcops failover status` and fence by hand")
    return f"{primary} is the only writable server"


def execute(region: Region, plan: FailoverPlan, svc: MySQL) -> FailoverResult:
    if not plan.runnable:
        raise HcopsError("the plan is refused: " + "; ".join(plan.refusals) or "nothing to do",
                         "fix what is named, or pass --force where the refusal allows it")
    assert plan.candidate is not None and plan.old_primary is not None
    res = FailoverResult(plan, started=iso())
    old, cand = plan.old_primary, plan.candidate
    old_binlog = plan.states[old].binlog_pos
    for step in plan.steps:
        started = iso()
        try:
            note = _do(region, svc, plan, step, cand=cand, old_binlog=old_binlog)
            res.steps.append(StepResult(step.action, step.host, step.detail, started, iso(), True, note))
            if step.action == "block-writes":  # the position to reach is final only once writes stop
                old_binlog = observe_host(region, svc, old).binlog_pos
        except HcopsError as exc:
            res.steps.append(StepResult(step.action, step.host, step.detail, started, iso(), False, exc.message))
            res.error = f"{step.action} on {step.host}: {exc.message}"
            if step.action in ("block-writes", "catch-up") and plan.kind == "switchover":
                # Nothing was switched yet: give the old primary its writes back.
                try:
                    sql(region, old, "SET GLOBAL read_only=OFF;\n")
                    res.steps.append(StepResult("rollback", old, "SET GLOBAL read_only=OFF", iso(), iso(), True,
                                                "writes unblocked on the old primary"))
                except HcopsError as exc2:
                    res.steps.append(StepResult("rollback", old, "SET GLOBAL read_only=OFF", iso(), iso(), False,
                                                exc2.message))
            break
    else:
        res.ok = True
        res.new_primary = cand
        # deploy reads it: a later run configures cand as the primary, not the model's
        record_db_primary(region.name, plan.service, cand)
    res.ended = iso()
    journal.append(region.name, res.as_dict())
    return res


def _do(region: Region, svc: MySQL, plan: FailoverPlan, step: Step, *, cand: str, old_binlog: str) -> str:
    if step.action == "block-writes":
        return block_writes(region, step.host)
    if step.action == "fence":
        return fence(region, svc, step.host)
    if step.action == "catch-up":
        return wait_applied(region, svc, step.host, old_binlog if plan.kind == "switchover" else None)
    if step.action == "promote":
        return promote(region, step.host)
    if step.action == "repoint":
        use = "current_pos" if step.host == plan.old_primary else "slave_pos"
        return replicate_from(region, svc, step.host, cand, use)
    if step.action == "verify":
        return verify(region, svc, cand)
    raise HcopsError(f"unknown step {step.action}", "this is a bug in hcops")  # pragma: no cover
