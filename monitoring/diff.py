"""Desired vs actual -> a plan of creates, updates (with the fields that differ) and deletes.

The plan is ordered for apply: creates and updates kind by kind in dependency order (groups,
hosts, web scenarios, services parents first, SLAs), then deletes in reverse, so nothing is
ever pointed at before it exists or removed while still referred to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from inventories.errors import HcopsError
from monitoring.actual import Lookups
from monitoring.objects import KINDS, Obj, State

Action = Literal["create", "update", "delete"]
ROTATED = "(new key from the secret store)"


@dataclass
class Change:
    action: Action
    kind: str
    key: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """field -> (current value, desired value); None on the side that does not exist"""
    desired: Obj | None = None
    actual: Obj | None = None

    @property
    def rotate_psk(self) -> bool:
        return "psk" in self.fields

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "kind": self.kind, "key": self.key,
                "fields": {k: {"from": _plain(a), "to": _plain(b)} for k, (a, b) in self.fields.items()}}


@dataclass
class Plan:
    region: str
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "delete": 0}
        for c in self.changes:
            out[c.action] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "summary": {**self.counts(), "unchanged": self.unchanged},
                "changes": [c.as_dict() for c in self.changes]}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def field_changes(desired: Obj, actual: Obj) -> dict[str, tuple[Any, Any]]:
    return {name: (actual.fields.get(name), want) for name, want in desired.fields.items()
            if actual.fields.get(name) != want}


def make_plan(region: str, desired: State, actual: State, lookups: Lookups, rotate_psk: bool = False) -> Plan:
    """Compare field by field; refuse to take over hosts hcops does not own."""
    if lookups.foreign_hosts:
        names = ", ".join(sorted(lookups.foreign_hosts))
        raise HcopsError(
            f"host(s) {names} exist in Zabbix but are not managed by hcops for region {region!r} "
            "(no tags managed-by: hcops and region: " + region + ")",
            "rename or delete them in Zabbix, or add those two tags to let hcops take them over",
        )
    plan = Plan(region)
    for kind in KINDS:
        want, have = desired.objects[kind], actual.objects[kind]
        creates: list[Change] = []
        updates: list[Change] = []
        for key, obj in want.items():
            current = have.get(key)
            if current is None:
                creates.append(Change("create", kind, key, {k: (None, v) for k, v in obj.fields.items()},
                                      desired=obj))
                continue
            diff = field_changes(obj, current)
            if kind == "host" and rotate_psk:
                diff["psk"] = ("(write-only)", ROTATED)
            if diff:
                updates.append(Change("update", kind, key, diff, desired=obj, actual=current))
            else:
                plan.unchanged += 1
        # Parents before children (a service key is its path), all creates before updates that
        # may point at them.
        creates.sort(key=lambda c: c.key.count("/") if kind == "service" else 0)
        plan.changes += creates + updates
    for kind in reversed(KINDS):
        want, have = desired.objects[kind], actual.objects[kind]
        plan.changes += [Change("delete", kind, key, {k: (v, None) for k, v in obj.fields.items()}, actual=obj)
                         for key, obj in have.items() if key not in want]
    return plan
