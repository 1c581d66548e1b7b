"""A failover plan is data: who is primary, who will be, the steps, and why it may not run.

`hcops failover db` without `--yes` shows this and exits 2; with `--yes` the runbook carries out
the same object. Rules, in the order Orchestrator applies them: a reachable writable primary means
a planned switchover (lossless: block writes, wait for catch-up, switch); an unreachable one means
an unplanned failover, refused when the best replica lags beyond the model's `max_lag_s` or when
the last unplanned failover is younger than `anti_flap_s` (unless forced).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from dr.failover import gtid, journal
from dr.failover.topology import DbState
from inventories.model import Region
from inventories.schema import MySQL


@dataclass
class Step:
    action: Literal["fence", "block-writes", "catch-up", "promote", "repoint", "verify"]
    host: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"action": self.action, "host": self.host, "detail": self.detail}


@dataclass
class FailoverPlan:
    region: str
    service: str
    kind: Literal["switchover", "failover", "none"]
    old_primary: str | None
    candidate: str | None
    steps: list[Step] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    forced: bool = False
    states: dict[str, DbState] = field(default_factory=dict)

    @property
    def runnable(self) -> bool:
        return self.kind != "none" and not self.refusals

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "service": self.service, "kind": self.kind,
                "old_primary": self.old_primary, "candidate": self.candidate,
                "steps": [s.as_dict() for s in self.steps], "refusals": self.refusals,
                "warnings": self.warnings, "forced": self.forced, "runnable": self.runnable,
                "servers": {h: s.as_dict() for h, s in self.states.items()}}


def _address_to_host(region: Region, members: list[str], address: str) -> str | None:
    for h in members:
        if str(region.hosts[h].primary_address) == address or h == address:
            return h
    return None


def find_old_primary(region: Region, svc: MySQL, states: dict[str, DbState]) -> str:
    """The server that is (or was) primary: the writable non-replica, else whom replicas follow."""
    members = [svc.primary, *svc.replicas]
    writable = [h for h, s in states.items() if s.writable and not s.is_replica]
    if len(writable) == 1:
        return writable[0]
    followed = {_address_to_host(region, members, s.replica.get("Master_Host", ""))
                for s in states.values() if s.is_replica}
    followed.discard(None)
    if len(followed) == 1:
        return str(next(iter(followed)))
    return svc.primary


def best_candidate(svc: MySQL, states: dict[str, DbState], old: str) -> str | None:
    """The reachable replica holding the most transactions (GTID); ties go to model order."""
    order = [svc.primary, *svc.replicas]
    cands = [s for h, s in states.items() if h != old and s.reachable and s.is_replica]
    if not cands:
        return None
    return max(cands, key=lambda s: (gtid.total(s.received_pos), -order.index(s.host))).host


def build_plan(region: Region, service: str, svc: MySQL, states: dict[str, DbState], *,
               to: str | None = None, force: bool = False, now: datetime | None = None) -> FailoverPlan:
    members = [svc.primary, *svc.replicas]
    old = find_old_primary(region, svc, states)
    old_st = states[old]
    planned = old_st.writable and not old_st.is_replica
    plan = FailoverPlan(region.name, service, "switchover" if planned else "failover", old, None,
                        forced=force, states=states)
    writable = [h for h, s in states.items() if s.writable]
    if len(writable) > 1:
        plan.refusals.append(f"more than one writable server ({', '.join(writable)}): split brain; "
                             "fence one by hand (SET GLOBAL read_only=ON) and compare GTIDs first")
    if to is not None:
        if to not in members:
            plan.refusals.append(f"--to {to} is not a server of {service} ({', '.join(members)})")
            plan.kind = "none"
            return plan
        if to == old:
            plan.refusals.append(f"{to} is already the primary")
            plan.kind = "none"
            return plan
        cand = to
    else:
        found = best_candidate(svc, states, old)
        if found is None:
            plan.refusals.append(f"no reachable replica of {old} to promote")
            plan.kind = "none"
            return plan
        cand = found
    plan.candidate = cand
    cst = states[cand]
    if not cst.reachable:
        plan.refusals.append(f"{cand} is not reachable: {cst.error}")
    elif not cst.is_replica:
        plan.refusals.append(f"{cand} is not a replica (nothing replicates into it)")
    elif _address_to_host(region, members, cst.replica.get("Master_Host", "")) != old:
        plan.refusals.append(f"{cand} replicates from {cst.replica.get('Master_Host')}, not from {old}")

    _check_lag_and_flap(region, svc, plan, old_st, cst, planned=planned, force=force, now=now)
    if planned:
        plan.steps = [
            Step("block-writes", old, "SET GLOBAL read_only=ON; kill application sessions"),
            Step("catch-up", cand, f"wait until {cand} has applied {old}'s gtid_binlog_pos"),
            Step("promote", cand, "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=OFF"),
            Step("repoint", old, f"replicate from {cand} (GTID from its own current position, verified TLS)"),
        ]
    else:
        fence = ("already powered off" if old_st.error == "host is powered off" else
                 "power off through the provider" if region.spec.region.kind == "lab" else
                 "SET GLOBAL read_only=ON if it answers; otherwise power it off by hand")
        plan.steps = [
            Step("fence", old, fence),
            Step("catch-up", cand, f"apply what {cand} already received (relay log up to Gtid_IO_Pos)"),
            Step("promote", cand, "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=OFF"),
        ]
        if region.spec.region.kind != "lab" and old_st.reachable:
            plan.steps[0] = Step("fence", old, "SET GLOBAL read_only=ON; kill application sessions")
    for other in members:
        if other not in (old, cand) and states[other].reachable:
            plan.steps.append(Step("repoint", other, f"replicate from {cand}"))
    plan.steps.append(Step("verify", cand, "exactly one writable server; the application writes again"))
    return plan


def _check_lag_and_flap(region: Region, svc: MySQL, plan: FailoverPlan, old_st: DbState, cst: DbState, *,
                        planned: bool, force: bool, now: datetime | None) -> None:
    policy = svc.failover
    service, old, cand = plan.service, plan.old_primary, plan.candidate
    lag = cst.lag_s
    if planned:
        missing = gtid.behind(cst.received_pos, old_st.binlog_pos)
        if lag is not None and lag > policy.max_lag_s:
            msg = f"{cand} is {lag:.0f} s behind {old} (max_lag_s {policy.max_lag_s:g})"
            (plan.warnings if force else plan.refusals).append(msg + (" - forced" if force else ""))
        if missing:
            plan.warnings.append(f"{cand} lacks {missing} transaction(s) of {old}; the switchover waits for them")
    else:
        if cst.reachable and cst.replica and lag is None and cst.replica.get("Slave_SQL_Running") != "Yes":
            plan.refusals.append(f"{cand}'s SQL thread is stopped: {cst.replica.get('Last_SQL_Error') or '?'}")
        elif lag is not None and lag > policy.max_lag_s:
            msg = f"{cand} was {lag:.0f} s behind when {old} was lost (max_lag_s {policy.max_lag_s:g})"
            (plan.warnings if force else plan.refusals).append(msg + (" - forced" if force else ""))
        last = journal.last_unplanned(region.name, service)
        t = now or journal.now()
        if last is not None and (t - last).total_seconds() < policy.anti_flap_s:
            msg = (f"the last unplanned failover of {service} ended {int((t - last).total_seconds())} s ago, "
                   f"inside the anti-flap window of {policy.anti_flap_s} s")
            (plan.warnings if force else plan.refusals).append(msg + (" - forced" if force else ""))

