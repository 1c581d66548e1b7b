"""Small helpers to read `hcops monitor ... --output json` answers in tests."""

from __future__ import annotations

import json
from typing import Any


def as_json(stdout: str) -> Any:
    return json.loads(stdout)


def changes(plan: dict[str, Any], action: str | None = None, kind: str | None = None) -> dict[str, dict[str, Any]]:
    """The plan's changes keyed 'kind:key', optionally of one action or kind."""
    return {f"{c['kind']}:{c['key']}": c for c in plan["changes"]
            if (action is None or c["action"] == action) and (kind is None or c["kind"] == kind)}
