"""Drill runs on disk: `<region state dir>/drills/<run-id>/{journal.json,report.html,report.md}`.

The journal is Chaos Toolkit's, with hcops' measurements under the top-level key "hcops"
(drill, run_id, started, ended, outages, rto_s, rpo_lost_writes, failed_requests, targets, ...).
Other engines (availability, the lab summary) read runs through `list_runs` only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.state import region_state_dir


def drills_dir(region: str) -> Path:
    return region_state_dir(region) / "drills"


def new_run_dir(region: str, drill: str, now: datetime | None = None) -> tuple[str, Path]:
    t = now or datetime.now(UTC)
    run_id = f"{t:%Y%m%dT%H%M%S}{t.microsecond // 1000:03d}Z-{drill}"
    d = drills_dir(region) / run_id
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return run_id, d


@dataclass(frozen=True)
class DrillRun:
    run_id: str
    drill: str
    directory: Path
    hcops: dict[str, Any]
    status: str

    @property
    def journal(self) -> Path:
        return self.directory / "journal.json"

    @property
    def report_html(self) -> Path:
        return self.directory / "report.html"

    @property
    def report_md(self) -> Path:
        return self.directory / "report.md"

    @property
    def started(self) -> datetime:
        return datetime.fromisoformat(self.hcops["started"])

    @property
    def passed(self) -> bool:
        return bool(self.hcops.get("verdict", {}).get("passed"))

    @property
    def outages(self) -> list[dict[str, Any]]:
        return list(self.hcops.get("outages", []))


def read_run(directory: Path) -> DrillRun | None:
    try:
        journal = json.loads((directory / "journal.json").read_text(encoding="utf-8"))
        h = journal["hcops"]
        return DrillRun(str(h["run_id"]), str(h["drill"]), directory, h, str(journal.get("status", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a run still in progress or torn: not a run to report


def list_runs(region: Any) -> list[DrillRun]:
    """Every finished drill run of the region (a Region or its name), oldest first."""
    name = region if isinstance(region, str) else region.name
    d = drills_dir(name)
    if not d.exists():
        return []
    runs = [r for r in (read_run(p) for p in sorted(d.iterdir()) if p.is_dir()) if r is not None]
    return sorted(runs, key=lambda r: r.hcops.get("started", ""))
