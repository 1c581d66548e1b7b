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
    duplicate: bool = False
    """A second owned copy of a key (left by a retried create): its delete is no prune."""

    @property
    def rotate_psk(self) -> bool:
        return "psk" in self.fields

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "kind": self.kind, "key": self.key,
                "fields": {k: {"from": _plain(a), "to": _plain(b)} for k, (a, b) in self.fields.items()}}


PRUNE_SHARE = 0.25
"""A plan deleting more than this share of what hcops owns is refused without --allow-prune."""
PRUNE_FLOOR = 3
"""... unless it deletes this few (a small region shrinking by one host)."""


@dataclass
class Plan:
    region: str
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)
    """Things left alone on purpose (a host an operator disabled), for the plan's reader."""
    owned: int = 0
    """Objects hcops owns in Zabbix now (the ledger's ids that still exist)."""

    @property
    def prunes(self) -> int:
        return sum(1 for c in self.changes if c.action == "delete" and not c.duplicate)

    @property
    def mass_prune(self) -> bool:
        """Deletes more than PRUNE_SHARE of what hcops owns: an empty or partial model, most likely."""
        return self.prunes > PRUNE_FLOOR and self.prunes > PRUNE_SHARE * self.owned

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
                "changes": [c.as_dict() for c in self.changes], "notes": self.notes,
                "mass_prune": self.mass_prune}


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
            "rename or delete them in Zabbix, or add those two tags and rerun with --adopt to let hcops "
            "take them over",
        )
    foreign = {kind: keys for kind, keys in lookups.foreign.items() if keys}
    if foreign:
        listed = "; ".join(f"{kind} {', '.join(sorted(keys))}" for kind, keys in sorted(foreign.items()))
        raise HcopsError(
            f"Zabbix already holds objects the model needs that hcops did not create ({listed})",
            "if they are hcops' from an earlier run whose ledger was lost, rerun with --adopt; "
            "otherwise rename or delete them in Zabbix",
        )
    plan = Plan(region, owned=lookups.owned_total + len(lookups.adopted))
    plan.notes += [f"host {h} was disabled by an operator: left disabled (--enable-disabled to enable it)"
                   for h in sorted(lookups.disabled_kept)]
    plan.notes += [f"host group {g} exists and was not made by hcops: used, never changed or deleted"
                   for g in sorted(lookups.shared_groups)]
    plan.notes += [f"{kind} {key} carries hcops' marks: adopted (--adopt)" for kind, _, key in lookups.adopted]
    for kind in KINDS:
        want, have = desired.objects[kind], actual.objects[kind]
        creates: list[Change] = []
        updates: list[Change] = []
        for key, obj in want.items():
            if kind == "hostgroup" and key in lookups.shared_groups:
                plan.unchanged += 1
                continue
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
        creates.sort(key=lambda c: c.key.count("/") if kind == "service" else
                     (1 if kind == "item" and c.desired and c.desired.fields["master"] else 0))
        plan.changes += creates + updates
    for kind in reversed(KINDS):
        want, have = desired.objects[kind], actual.objects[kind]
        plan.changes += [Change("delete", kind, f"{d.key} (duplicate id {d.id})", {}, actual=d, duplicate=True)
                         for d in actual.duplicates if d.kind == kind]
        plan.changes += [Change("delete", kind, key, {k: (v, None) for k, v in obj.fields.items()}, actual=obj)
                         for key, obj in have.items() if key not in want]
    return plan
