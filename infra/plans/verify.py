"""Run a county's acceptance checklist against its hosts: the engine behind `hcops plan verify`.

Every item runs (one failure does not hide the next), each against its own host through
testinfra; the result is an `AcceptanceReport` with pass/fail, reason and evidence per item ID,
stored as the county's latest result for the board and written as HTML and JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.plans.checklist import CheckItem, checklist, has_zabbix
from infra.plans.hosts import connect
from infra.plans.probes import PROBES, Context, Outcome, fetch_zabbix
from infra.plans.render import environment
from infra.plans.revision import hcops_version, model_revision
from infra.state import read_outputs
from inventories.errors import HcopsError
from inventories.model import Region


@dataclass
class ItemResult:
    id: str
    kind: str
    title: str
    host: str
    expect: str
    passed: bool
    reason: str
    evidence: dict[str, Any]
    checked_at: str
    seconds: float
    model_digest: str = ""  # the model this item was checked against (results merge across runs)


@dataclass
class AcceptanceReport:
    region: str
    county: str
    started_at: str
    finished_at: str
    model_revision: str
    model_digest: str
    hcops_version: str
    items: list[ItemResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.items) and all(i.passed for i in self.items)

    @property
    def failed(self) -> list[ItemResult]:
        return [i for i in self.items if not i.passed]

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "county": self.county, "passed": self.passed,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "model_revision": self.model_revision, "model_digest": self.model_digest,
                "hcops_version": self.hcops_version,
                "summary": {"items": len(self.items), "passed": len(self.items) - len(self.failed),
                            "failed": len(self.failed)},
                "items": [asdict(i) for i in self.items]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AcceptanceReport:
        items = [ItemResult(**i) for i in data["items"]]
        return cls(data["region"], data["county"], data["started_at"], data["finished_at"],
                   data["model_revision"], data["model_digest"], data["hcops_version"], items)


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def run_item(ctx: Context, item: CheckItem, host: Any) -> Outcome:
    try:
        return PROBES[item.kind](ctx, item, host)
    except HcopsError as exc:
        return Outcome(False, exc.message, {})
    except Exception as exc:
        text = str(exc).strip().splitlines()
        return Outcome(False, f"could not check {item.host}: {type(exc).__name__}: "
                       f"{text[-1] if text else ''}"[:400], {})


def run_verify(region: Region, county: str, only: list[str] | None = None,
               progress: Callable[[ItemResult], None] | None = None) -> AcceptanceReport:
    items = checklist(region, county)
    if only:
        unknown = sorted(set(only) - {i.id for i in items})
        if unknown:
            raise HcopsError(f"unknown checklist item(s) {', '.join(unknown)} for county {county}",
                             f"use IDs from the plan's checklist: {', '.join(i.id for i in items)}")
        items = [i for i in items if i.id in only]
    read_outputs(region.name)  # an unprovisioned region stops here, with the fix
    revision = model_revision(region)
    ctx = Context(region)
    if has_zabbix(region) and any(i.kind == "ZBX" for i in items):
        fetch_zabbix(ctx, sorted({i.host for i in items if i.kind == "ZBX"}))
    report = AcceptanceReport(region.name, county, _now(), "", revision.label, revision.digest, hcops_version())
    hosts: dict[str, Any] = {}
    for item in items:
        started = time.monotonic()
        try:
            host = hosts.get(item.host) or hosts.setdefault(item.host, connect(region, item.host))
            outcome = run_item(ctx, item, host)
        except HcopsError as exc:
            outcome = Outcome(False, exc.message, {})
        res = ItemResult(item.id, item.kind, item.title, item.host, item.expect, outcome.passed, outcome.reason,
                         outcome.evidence, _now(), round(time.monotonic() - started, 2), revision.digest)
        report.items.append(res)
        if progress:
            progress(res)
    report.finished_at = _now()
    return report


def write_report(report: AcceptanceReport, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{report.region}-{report.county}-acceptance"
    js = out_dir / f"{stem}.json"
    js.write_text(json.dumps(report.as_dict(), indent=2, sort_keys=False, default=str) + "\n")
    html = out_dir / f"{stem}.html"
    html.write_text(environment().get_template("report.html.j2").render(r=report, d=report.as_dict(),
                                                                        dumps=_evidence_text))
    return html, js


def _evidence_text(ev: dict[str, Any]) -> str:
    return json.dumps(ev, indent=1, sort_keys=True, default=str)
