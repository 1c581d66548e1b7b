"""The resource graph a program declares: what the policy checks and the plan view read.

Built by the mock runtime (`mocks.py`) from the registrations the program makes, or by hand in
tests that seed violations. Plain data: no Pulumi object survives into it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SITE_COMPONENT = "hcops:openstack:Site"
SIDE_COMPONENT = "hcops:openstack:CloudSide"
DYNAMIC = "pulumi-python:dynamic:Resource"


@dataclass(frozen=True)
class PlannedResource:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    id: str = ""
    parent: str = ""
    provider: str = ""
    depends_on: tuple[str, ...] = ()
    custom: bool = True
    # Resource options that decide whether a replacement or a destroy can go wrong.
    ignore_changes: tuple[str, ...] = ()
    delete_before_replace: bool = False
    retain_on_delete: bool = False
    protect: bool = False

    @property
    def kind(self) -> str:
        """Short type: `SecGroupRule`, `Instance`, a component's last segment, or the dynamic kind."""
        if self.type == DYNAMIC:
            return str(self.inputs.get("hcopsKind", "Dynamic")).split(":")[-1]
        return self.type.split(":")[-1]


@dataclass
class ResourceGraph:
    resources: list[PlannedResource] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_urn = {r.urn: r for r in self.resources}

    def add(self, res: PlannedResource) -> None:
        self.resources.append(res)
        self._by_urn[res.urn] = res

    def get(self, urn: str) -> PlannedResource | None:
        return self._by_urn.get(urn)

    def of_kind(self, kind: str) -> list[PlannedResource]:
        """Custom resources of a kind (components share short names with them: LoadBalancer)."""
        return [r for r in self.resources if r.kind == kind and r.custom]

    def by_id(self, kind: str) -> dict[str, PlannedResource]:
        return {r.id: r for r in self.of_kind(kind) if r.id}

    def named(self, kind: str, name: str) -> PlannedResource | None:
        return next((r for r in self.of_kind(kind) if r.name == name), None)

    def children(self, urn: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.parent == urn]

    def ancestor(self, res: PlannedResource, component_type: str) -> PlannedResource | None:
        seen = set()
        node: PlannedResource | None = res
        while node is not None and node.urn not in seen:
            seen.add(node.urn)
            if node.type == component_type:
                return node
            node = self._by_urn.get(node.parent)
        return None

    def placement(self, res: PlannedResource) -> str:
        """`site:<name>`, `side:<name>`, or `region` for what hangs off the stack itself."""
        site = self.ancestor(res, SITE_COMPONENT)
        if site is not None:
            return f"site:{site.name}"
        side = self.ancestor(res, SIDE_COMPONENT)
        return f"side:{side.name}" if side is not None else "region"

    def custom_resources(self) -> list[PlannedResource]:
        return [r for r in self.resources if r.custom and not r.type.startswith("pulumi:providers:")]

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(r.kind for r in self.custom_resources()).items()))

    def depends(self, res: PlannedResource, on: PlannedResource) -> bool:
        return on.urn in res.depends_on
