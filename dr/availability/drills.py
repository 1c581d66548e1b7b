"""Drill outcomes, read from the journals failover drills write.

A drill run lives at `<region state dir>/drills/<run-id>/journal.json` with a top-level
`"hcops"` key: `{"drill", "run_id", "started", "ended", "outages": [{"start", "end", "what"}],
"rto_s", "rpo_lost_writes", "failed_requests", "targets"}`. The design model takes the
longest measured RTO per target service as its failover time; the report draws the outages
on its timeline. A journal that cannot be read is reported as skipped, never guessed at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from infra.state import region_state_dir


@dataclass(frozen=True)
class Outage:
    start: datetime
    end: datetime
    what: str

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class DrillRun:
    drill: str
    run_id: str
    started: datetime
    ended: datetime | None
    outages: tuple[Outage, ...]
    rto_s: float | None
    targets: tuple[str, ...]
    primary_host: str | None = None  # `model_primary`: the database primary the drill failed over

    def as_dict(self) -> dict[str, Any]:
        return {"drill": self.drill, "run_id": self.run_id, "started": self.started.isoformat(),
                "ended": self.ended.isoformat() if self.ended else None, "rto_s": self.rto_s,
                "targets": list(self.targets),
                "outages": [{"start": o.start.isoformat(), "end": o.end.isoformat(), "what": o.what}
                            for o in self.outages]}


@dataclass
class DrillRuns:
    runs: list[DrillRun] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def measured_failover_s(self, service: str, hosts: list[str] | None = None) -> tuple[float, str] | None:
        """The longest RTO measured for a service (named in the run's targets, or whose hosts hold
        the primary the drill failed over), with the run that measured it."""
        best: tuple[float, str] | None = None
        for run in self.runs:
            ours = service in run.targets or (run.primary_host is not None and run.primary_host in (hosts or []))
            if run.rto_s is not None and ours and (best is None or run.rto_s > best[0]):
                best = (run.rto_s, run.run_id)
        return best


def _time(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time {value!r} has no time zone")
    return moment


def parse_journal(data: dict[str, Any]) -> DrillRun:
    h = data["hcops"]
    targets = h.get("targets") or []
    if isinstance(targets, dict):  # the drills' own journals: RTO/RPO targets, not services
        targets = []
    return DrillRun(
        drill=str(h["drill"]), run_id=str(h["run_id"]), started=_time(h["started"]),
        ended=_time(h["ended"]) if h.get("ended") else None,
        outages=tuple(Outage(_time(o["start"]), _time(o["end"]), str(o.get("what", "")))
                      for o in h.get("outages") or []),
        rto_s=float(h["rto_s"]) if h.get("rto_s") is not None else None,
        targets=tuple(str(t) for t in targets),
        primary_host=str(h["model_primary"]) if h.get("model_primary") else None,
    )


def drills_dir(region: str) -> Path:
    return region_state_dir(region) / "drills"


def list_runs(region: str) -> DrillRuns:
    out = DrillRuns()
    root = drills_dir(region)
    if not root.is_dir():
        return out
    for path in sorted(root.glob("*/journal.json")):
        try:
            out.runs.append(parse_journal(json.loads(path.read_text())))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            out.skipped.append(f"{path}: {exc}")
    out.runs.sort(key=lambda r: r.started)
    return out
