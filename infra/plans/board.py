"""The city's acceptance board: every county, each checklist item's latest result and date,
what is missing, and whether the county is ready for acceptance.

A county is ready when its latest report covers every item of its current checklist and all
of them passed. Items the model added since that report count as missing; a report made from
another model revision is shown as such (the county should verify again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.plans.checklist import checklist
from infra.plans.render import environment
from infra.plans.revision import model_revision
from infra.plans.store import load_latest
from inventories.model import Region


@dataclass
class BoardCell:
    id: str
    state: str  # "pass", "fail" or "missing"
    checked_at: str | None
    reason: str
    current: bool = True  # checked against the model as it is now


@dataclass
class BoardRow:
    county: str
    sites: list[str]
    verified_at: str | None
    model_revision: str | None
    current_model: bool
    cells: list[BoardCell] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(c.state == "pass" for c in self.cells)

    @property
    def failed(self) -> list[str]:
        return [c.id for c in self.cells if c.state == "fail"]

    @property
    def missing(self) -> list[str]:
        return [c.id for c in self.cells if c.state == "missing"]

    @property
    def ready(self) -> bool:
        return bool(self.cells) and not self.failed and not self.missing

    @property
    def status(self) -> str:
        if self.ready:
            return "ready"
        if self.verified_at is None:
            return "not verified"
        return "failing" if self.failed else "incomplete"

    def as_dict(self) -> dict[str, Any]:
        return {"county": self.county, "sites": self.sites, "status": self.status, "ready": self.ready,
                "verified_at": self.verified_at, "model_revision": self.model_revision,
                "current_model": self.current_model, "items": len(self.cells), "passed": self.passed,
                "failed": self.failed, "missing": self.missing,
                "results": {c.id: {"state": c.state, "checked_at": c.checked_at, "reason": c.reason,
                                   "current_model": c.current} for c in self.cells}}


@dataclass
class Board:
    region: str
    model_revision: str
    rows: list[BoardRow]

    @property
    def ready(self) -> list[str]:
        return [r.county for r in self.rows if r.ready]

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "model_revision": self.model_revision,
                "counties": len(self.rows), "ready": self.ready,
                "rows": [r.as_dict() for r in self.rows]}


def build_board(region: Region) -> Board:
    revision = model_revision(region)
    rows = []
    for county in region.counties:
        items = checklist(region, county)
        report = load_latest(region.name, county)
        latest = {i.id: i for i in report.items} if report else {}
        cells = []
        for item in items:
            got = latest.get(item.id)
            if got is None:
                cells.append(BoardCell(item.id, "missing", None, "not checked yet"))
            else:
                cells.append(BoardCell(item.id, "pass" if got.passed else "fail", got.checked_at, got.reason,
                                       got.model_digest == revision.digest))
        rows.append(BoardRow(county, region.county_sites(county), report.finished_at if report else None,
                             report.model_revision if report else None,
                             bool(report) and all(c.current for c in cells if c.state != "missing"), cells))
    return Board(region.name, revision.label, rows)


def write_board_html(board: Board, path: Path) -> Path:
    """The board as one offline page (the city's printout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(environment().get_template("board.html.j2").render(b=board))
    return path
