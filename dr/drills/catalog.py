"""The drill catalog: one Chaos Toolkit experiment file per drill, beside this module."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inventories.errors import HcopsError

EXPERIMENTS = Path(__file__).resolve().parent / "experiments"


@dataclass(frozen=True)
class Drill:
    name: str
    title: str
    description: str
    path: Path
    ready: bool
    missing: str

    def experiment(self) -> dict[str, Any]:
        return dict(json.loads(self.path.read_text(encoding="utf-8")))


def _ext(exp: dict[str, Any]) -> dict[str, Any]:
    return next((e for e in exp.get("extensions", []) if e.get("name") == "hcops"), {})


def drills() -> dict[str, Drill]:
    out = {}
    for p in sorted(EXPERIMENTS.glob("*.json")):
        exp = json.loads(p.read_text(encoding="utf-8"))
        ext = _ext(exp)
        out[p.stem] = Drill(p.stem, exp["title"], exp.get("description", ""), p,
                            not ext.get("missing"), str(ext.get("missing", "")))
    return out


def get(name: str) -> Drill:
    found = drills()
    if name not in found:
        raise HcopsError(f"no drill named {name!r}", f"pick one of: {', '.join(found)} (`hcops drill list`)")
    return found[name]
