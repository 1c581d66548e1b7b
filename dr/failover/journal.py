"""The failover journal: one JSON line per failover or switchover, in the region's state dir.

It is what the anti-flap rule reads (when was the last unplanned failover?) and what on-call staff
read the morning after. `infra.state` owns the directory; nothing else writes here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.state import region_state_dir


def path(region: str) -> Path:
    return region_state_dir(region) / "failover" / "journal.jsonl"


def append(region: str, record: dict[str, Any]) -> Path:
    p = path(region)
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with p.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
    return p


def records(region: str) -> list[dict[str, Any]]:
    p = path(region)
    if not p.exists():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a torn last line from a crash: the rest still counts
    return out


def last_unplanned(region: str, service: str) -> datetime | None:
    """When the last unplanned failover of `service` finished (successfully), if ever."""
    times = [datetime.fromisoformat(r["ended"]) for r in records(region)
             if r.get("service") == service and r.get("kind") == "failover" and r.get("ok")]
    return max(times) if times else None


def now() -> datetime:
    return datetime.now(UTC)
