"""The latest acceptance result of each county's items, kept in the region's state directory so the
board (and the city's scripts) can read where every county stands without rerunning checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

from infra.plans.verify import AcceptanceReport
from infra.state import region_state_dir
from inventories.errors import HcopsError


def reports_dir(region: str) -> Path:
    return region_state_dir(region) / "acceptance"


def save_latest(report: AcceptanceReport) -> Path:
    """Merge a run into the county's latest results: each item keeps its own latest result and
    date, so a rerun of one item (`--only`) updates that item and leaves the others as they were."""
    d = reports_dir(report.region)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = d / f"{report.county}.json"
    previous = load_latest(report.region, report.county)
    merged = {i.id: i for i in (previous.items if previous else [])}
    merged.update({i.id: i for i in report.items})
    latest = AcceptanceReport(report.region, report.county, previous.started_at if previous else report.started_at,
                              report.finished_at, report.model_revision, report.model_digest, report.hcops_version,
                              list(merged.values()))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(latest.as_dict(), indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def load_latest(region: str, county: str) -> AcceptanceReport | None:
    path = reports_dir(region) / f"{county}.json"
    if not path.exists():
        return None
    try:
        return AcceptanceReport.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise HcopsError(f"{path} is not a readable acceptance report: {exc}",
                         f"delete it and run `hcops plan verify --region {region} --county {county}` again") from None
