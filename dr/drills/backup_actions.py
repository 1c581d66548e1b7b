"""Chaos Toolkit actions of the object-store-outage drill: the cloud's S3 endpoint stops while an
offsite backup runs; the upload must wait it out and finish, and the copy must restore.

The endpoint is stopped as soon as the backup starts reading the database (so the outage covers
the whole offsite upload, not a moment after it), and started again `outage_s` later. The backup
either rides the outage out within its own retry window or ends `partial` and the next run resumes
it; either way the drill records when the backup became good and verifies the offsite copy by a
scratch restore. What it measured goes to the run context; the verdict reads it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dr.backup import engine, verify
from dr.drills.context import dedicated_line, region_of, run_context
from infra.lab import control
from inventories.errors import HcopsError
from inventories.model import Region
from inventories.schema import MySQL

Config = dict[str, Any] | None


def _mark(region: Region, what: str) -> None:
    run_context(region).marks.append({"t": time.time(), "what": what})


def offsite_policy(region: Region) -> str:
    """The first MariaDB backup policy with an offsite copy: what the drill backs up."""
    for name, pol in sorted(region.backup_policies.items()):
        if pol.offsite_target is not None and isinstance(region.services.get(pol.service), MySQL):
            return name
    raise HcopsError(f"region {region.name} has no MariaDB backup policy with an offsite_target",
                     "add one under backup_policies (see inventories/lab)")


FAULTS = ("object-store", "line")


@dataclass(frozen=True)
class Fault:
    """A fault a backup must ride out: how to cause and mend it, and the journal marks for both."""

    breaks: Callable[[], object]
    mends: Callable[[], object]
    broken: str
    mended: str


def _fault(region: Region, fault: str) -> Fault:
    if fault == "object-store":
        return Fault(lambda: control.stop_object_store(region), lambda: control.start_object_store(region),
                     "object store stopped", "object store started again")
    if fault == "line":  # the backup host's offsite upload crosses the line to the cloud's endpoint
        line = dedicated_line(region)
        return Fault(lambda: control.cut_link(region, line), lambda: control.restore_link(region, line),
                     f"{line} cut", f"{line} restored")
    raise HcopsError(f"fault {fault!r} is not one a backup drill knows", f"use one of: {', '.join(FAULTS)}")


def backup_through_outage(outage_s: float = 10, fault: str = "object-store",
                          configuration: Config = None) -> dict[str, Any]:
    """A full offsite backup while `fault` (the S3 endpoint stopped, or the line cut) lasts outage_s."""
    region = region_of(configuration)
    policy = offsite_policy(region)
    f = _fault(region, fault)
    times: dict[str, float] = {}
    stopped = threading.Event()

    def restart_later() -> None:
        threading.Event().wait(float(outage_s))
        f.mends()
        times["restarted"] = time.time()
        _mark(region, f.mended)

    restarter = threading.Thread(target=restart_later, daemon=True)

    def progress(label: str, _n: int, _total: int | None) -> None:
        if not stopped.is_set() and label.endswith("(read)"):
            stopped.set()
            f.breaks()
            times["stopped"] = time.time()
            _mark(region, f.broken)
            restarter.start()

    started = time.time()
    first = engine.run_policy(region, policy, "full", engine.Overrides(), progress=progress)
    if restarter.is_alive():
        restarter.join()
    result = first.results[-1]
    runs = [{"backup_id": r.backup_id, "state": r.state, "error": r.error} for r in first.results]
    if result.state == "partial":  # the outage outlasted the upload's retry window: resume it
        again = engine.run_policy(region, policy, "incremental", engine.Overrides())
        runs += [{"backup_id": r.backup_id, "state": r.state, "error": r.error} for r in again.results]
        result = next((r for r in again.results if r.backup_id == result.backup_id), result)
    good_at = time.time()
    ctx = engine.context(region, policy, engine.Overrides(), offsite=True)
    try:
        entry = ctx.catalog.get(result.backup_id)
        checked = verify.verify(ctx.key, ctx.offsite, ctx.catalog, result.backup_id,  # type: ignore[arg-type]
                                canary_sql=engine.CANARY_SQL) if entry.state == "good" else None
    finally:
        ctx.catalog.close()
    found = {
        "policy": policy, "fault": fault, "backup_id": result.backup_id, "state": entry.state, "runs": runs,
        "outage_planned_s": float(outage_s), "stopped_during_backup": "stopped" in times,
        "outage_s": round(times["restarted"] - times["stopped"], 3) if "restarted" in times else None,
        "good_after_restart_s": round(good_at - times["restarted"], 3) if "restarted" in times else None,
        "backup_s": round(good_at - started, 3),
        "verified_offsite": bool(checked and checked.ok),
        "verify_detail": (checked.detail if checked and checked.ok else "; ".join(checked.problems)) if checked
        else f"not verified: the backup is {entry.state}",
    }
    run_context(region).targets["offsite_backup"] = found
    return found


def ensure_object_store(configuration: Config = None) -> str:
    """Rollback: the endpoint runs again, whatever the method got to."""
    region = region_of(configuration)
    if control.object_store_running(region):
        return "object store running"
    control.start_object_store(region)
    _mark(region, "object store started (rollback)")
    return "object store started"


def object_store_answers(configuration: Config = None) -> bool:
    """Probe: the lab's S3 endpoint is up."""
    return control.object_store_running(region_of(configuration))
