"""Which region a probe or action works on, and what the running drill has learned so far.

Chaos Toolkit hands every activity the experiment's `configuration`; ours carries `hcops_region`
(a region name or directory, from the environment variable HCOPS_REGION under `chaos run`).
Activities of one run share `RunContext`: the targets they picked (which host was primary, which
LB held the VIP) so that a rollback undoes exactly what the method did.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from inventories.errors import HcopsError
from inventories.loader import load_region
from inventories.model import Region
from inventories.schema import Link


@lru_cache(maxsize=8)
def _load(region_arg: str) -> Region:
    return load_region(region_arg)


def region_of(configuration: dict[str, Any] | None) -> Region:
    arg = (configuration or {}).get("hcops_region") or os.environ.get("HCOPS_REGION") or "lab"
    return _load(str(arg))


def dedicated_line(region: Region) -> str:
    """The region's dedicated line: what the link-cut drill and the backup line fault cut."""
    for name, link in region.spec.links.items():
        if isinstance(link, Link) and link.kind == "dedicated_line":
            return name
    raise HcopsError(f"region {region.name} has no dedicated line", "add one under links:")


@dataclass
class RunContext:
    targets: dict[str, Any] = field(default_factory=dict)
    marks: list[dict[str, Any]] = field(default_factory=list)  # timeline events the activities note


_lock = threading.Lock()
_runs: dict[str, RunContext] = {}


def run_context(region: Region) -> RunContext:
    with _lock:
        return _runs.setdefault(region.name, RunContext())


def reset(region: Region) -> RunContext:
    with _lock:
        _runs[region.name] = RunContext()
        return _runs[region.name]
