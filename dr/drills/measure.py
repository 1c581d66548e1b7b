"""RTO, RPO and failed requests from what the canaries and the request load saw.

- An outage is a run of failed canary writes: from the first failed write to the next acknowledged
  one (detection is inside it: the canary fails from the moment the primary is lost). Overlapping
  outages of several canaries are merged. RTO is the longest outage that began before the method
  ended (the fault itself; a planned switch back in the rollback is listed, not counted).
- RPO is the count of writes the database acknowledged that the primary at the end lacks.
- Failed requests are HTTP requests through the VIP that did not return 200.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dr.failover.topology import current_primary, observe, run_sql
from inventories.model import Region


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


@dataclass
class Interval:
    start: float
    end: float
    what: str

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def as_dict(self) -> dict[str, Any]:
        return {"start": iso(self.start), "end": iso(self.end), "what": self.what,
                "seconds": round(self.seconds, 3)}


def failure_runs(points: list[tuple[float, bool]], end: float, what: str) -> list[Interval]:
    """Runs of failures in time-ordered (t, ok) points; an unfinished run ends at `end`."""
    out: list[Interval] = []
    start: float | None = None
    for t, ok in sorted(points):
        if not ok and start is None:
            start = t
        elif ok and start is not None:
            out.append(Interval(start, t, what))
            start = None
    if start is not None:
        out.append(Interval(start, end, what + " (not recovered)"))
    return out


def merge(intervals: list[Interval], what: str) -> list[Interval]:
    out: list[Interval] = []
    for iv in sorted(intervals, key=lambda i: i.start):
        if out and iv.start <= out[-1].end:
            out[-1].end = max(out[-1].end, iv.end)
        else:
            out.append(Interval(iv.start, iv.end, what))
    return out


@dataclass
class Measurement:
    write_outages: list[Interval] = field(default_factory=list)
    request_outages: list[Interval] = field(default_factory=list)
    rto_s: float | None = None
    rpo_lost_writes: int = 0
    lost: dict[str, list[int]] = field(default_factory=dict)
    acked_writes: int = 0
    failed_writes: int = 0
    requests: int = 0
    failed_requests: int = 0
    max_writable: int = 0
    final_primary: str | None = None


def write_outages(events: dict[str, list[dict[str, Any]]], end: float) -> list[Interval]:
    runs: list[Interval] = []
    for host, evs in events.items():
        runs += failure_runs([(float(e["t"]), bool(e["ok"])) for e in evs], end, f"writes from {host}")
    return merge(runs, "canary writes failing")


def lost_writes(region: Region, events: dict[str, list[dict[str, Any]]]) -> tuple[str | None, dict[str, list[int]]]:
    """Acknowledged sequence numbers per canary that the current primary does not hold."""
    _name, _svc, states = observe(region)
    primary = current_primary(states)
    if primary is None:
        return None, {h: sorted(int(e["seq"]) for e in evs if e.get("acked")) for h, evs in events.items()}
    lost: dict[str, list[int]] = {}
    for host, evs in events.items():
        acked = sorted({int(e["seq"]) for e in evs if e.get("acked") and e.get("seq") is not None})
        if not acked:
            continue
        if not host.replace("-", "").isalnum():  # host names are model names; refuse anything else
            raise ValueError(f"unexpected canary writer name {host!r}")
        query = (f"SELECT seq FROM canary.canary_seq WHERE writer='{host}' "  # noqa: S608 (checked name, ints)
                 f"AND seq BETWEEN {int(acked[0])} AND {int(acked[-1])};\n")
        rows = run_sql(region, primary, query)
        have = {int(r["seq"]) for r in (rows[0] if rows else [])}
        missing = [s for s in acked if s not in have]
        if missing:
            lost[host] = missing
    return primary, lost


def measure(region: Region, events: dict[str, list[dict[str, Any]]], requests: list[tuple[float, bool, str]],
            writable: list[tuple[float, list[str]]], *, method_end: float, end: float) -> Measurement:
    m = Measurement()
    m.write_outages = write_outages(events, end)
    fault = [iv for iv in m.write_outages if iv.start <= method_end]
    m.rto_s = round(max(iv.seconds for iv in fault), 3) if fault else None
    m.acked_writes = sum(1 for evs in events.values() for e in evs if e.get("acked"))
    m.failed_writes = sum(1 for evs in events.values() for e in evs if not e.get("ok"))
    m.requests = len(requests)
    m.failed_requests = sum(1 for _t, ok, _w in requests if not ok)
    m.request_outages = merge(failure_runs([(t, ok) for t, ok, _w in requests], end, "requests failing"),
                              "requests through the VIP failing")
    m.max_writable = max((len(w) for _t, w in writable), default=0)
    m.final_primary, m.lost = lost_writes(region, events)
    m.rpo_lost_writes = sum(len(v) for v in m.lost.values())
    return m
