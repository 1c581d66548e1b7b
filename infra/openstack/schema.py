"""The provider's published schema, and a strict check of what the program sends against it.

Pulumi's mock runtime accepts any call: a misspelt property, a missing required input or a
number where the provider wants a string all "work" offline and fail on the first real `pulumi
up`. The pulumi-openstack provider publishes its schema (every resource's inputs, which are
required, their types; every function's arguments), so the offline run checks each
registration and each invoke against it, the way the provider would.

`SCHEMA_FILE` is a trimmed copy (types, required lists, replace-on-change flags; no prose) of
the schema of the provider line the SDK pin allows, made by `trim()` from the full published
file, so the check needs nothing outside the repository. A test keeps the copy, the full file
(where it is at hand) and the installed SDK in agreement.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("pulumi-openstack-schema.json")
PROVIDER_TYPE = "pulumi:providers:openstack"
SCHEMA_LINE = "5.5"  # the provider release line the trimmed copy was taken from
_KEEP = ("type", "$ref", "items", "additionalProperties", "willReplaceOnChanges", "enum")


@dataclass(frozen=True)
class SchemaFinding:
    """One input the real provider would refuse: where, which property, what is wrong."""

    resource: str  # logical name of the resource, or the function token for an invoke
    type: str
    property: str
    problem: str  # unknown-property | missing-required | wrong-type | unknown-type

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"[schema:{self.problem}] {self.type} {self.resource}: {self.property}"


def _trim_prop(prop: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _KEEP:
        if key not in prop:
            continue
        val = prop[key]
        if key in ("items", "additionalProperties") and isinstance(val, dict):
            val = _trim_prop(val)
        if key == "enum":
            val = [e.get("value") if isinstance(e, dict) else e for e in val]
        out[key] = val
    return out


def _trim_obj(props: dict[str, Any], required: list[str] | None) -> dict[str, Any]:
    return {"properties": {k: _trim_prop(v) for k, v in sorted(props.items())},
            "required": sorted(required or [])}


def trim(full: dict[str, Any]) -> dict[str, Any]:
    """What the check needs from the published schema, nothing else (about a tenth of its size)."""
    return {
        "name": full["name"],
        "provider": _trim_obj(full["provider"].get("inputProperties", {}), full["provider"].get("requiredInputs")),
        "resources": {tok: _trim_obj(r.get("inputProperties", {}), r.get("requiredInputs"))
                      for tok, r in sorted(full["resources"].items())},
        "functions": {tok: _trim_obj((f.get("inputs") or {}).get("properties", {}),
                                     (f.get("inputs") or {}).get("required"))
                      for tok, f in sorted(full["functions"].items())},
        "types": {tok: ({"enum": [e.get("value") for e in t["enum"]], "type": t.get("type")} if "enum" in t
                        else _trim_obj(t.get("properties", {}), t.get("required")))
                  for tok, t in sorted(full["types"].items())},
    }


@cache
def load(path: Path = SCHEMA_FILE) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def resource_token(typ: str) -> str:
    """Registrations use the full token (`openstack:compute/instance:Instance`) already."""
    return typ


class SchemaChecker:
    """Checks registrations and invokes; keeps every finding for the plan."""

    def __init__(self, schema: dict[str, Any] | None = None) -> None:
        self.schema = schema or load()
        self.findings: list[SchemaFinding] = []

    # -- entry points -----------------------------------------------------------------------

    def check_resource(self, typ: str, name: str, inputs: dict[str, Any]) -> list[SchemaFinding]:
        if typ == PROVIDER_TYPE:
            spec = self.schema["provider"]
        elif typ.startswith("openstack:"):
            spec = self.schema["resources"].get(typ)
            if spec is None:
                return self._add([SchemaFinding(name, typ, "(type)", "unknown-type")])
        else:
            return []  # components and dynamic resources: no provider schema
        return self._add(self._object(name, typ, "", spec, inputs))

    def check_invoke(self, token: str, args: dict[str, Any]) -> list[SchemaFinding]:
        if not token.startswith("openstack:"):
            return []
        spec = self.schema["functions"].get(token)
        if spec is None:
            return self._add([SchemaFinding(token, "function", "(function)", "unknown-type")])
        return self._add(self._object(token, "function", "", spec, args))

    def _add(self, found: list[SchemaFinding]) -> list[SchemaFinding]:
        self.findings.extend(found)
        return found

    # -- the walk ---------------------------------------------------------------------------

    def _object(self, name: str, typ: str, path: str, spec: dict[str, Any],
                value: dict[str, Any]) -> list[SchemaFinding]:
        out: list[SchemaFinding] = []
        props: dict[str, Any] = spec["properties"]
        for key in spec["required"]:
            if value.get(key) is None:
                out.append(SchemaFinding(name, typ, f"{path}{key}", "missing-required"))
        for key, val in value.items():
            if key.startswith("__"):  # engine bookkeeping (`__defaults`, ...)
                continue
            if key not in props:
                out.append(SchemaFinding(name, typ, f"{path}{key}", "unknown-property"))
            elif val is not None:
                out.extend(self._value(name, typ, f"{path}{key}", props[key], val))
        return out

    def _value(self, name: str, typ: str, path: str, prop: dict[str, Any], val: Any) -> list[SchemaFinding]:
        ref = prop.get("$ref")
        if ref:
            if not ref.startswith("#/types/"):
                return []  # pulumi.json#/Archive, /Asset, /Any: anything goes
            target = self.schema["types"].get(ref.removeprefix("#/types/"))
            if target is None:
                return [SchemaFinding(name, typ, path, "unknown-type")]
            if "enum" in target:
                ok = val in target["enum"]
                return [] if ok else [SchemaFinding(name, typ, f"{path}={val!r}", "wrong-type")]
            if not isinstance(val, dict):
                return [SchemaFinding(name, typ, f"{path} (object expected, got {type(val).__name__})",
                                      "wrong-type")]
            return self._object(name, typ, f"{path}.", target, val)
        kind = prop.get("type")
        if kind == "array":
            if not isinstance(val, list):
                return [SchemaFinding(name, typ, f"{path} (array expected, got {type(val).__name__})", "wrong-type")]
            out: list[SchemaFinding] = []
            for i, item in enumerate(val):
                if item is not None:
                    out.extend(self._value(name, typ, f"{path}[{i}]", prop.get("items") or {}, item))
            return out
        if kind == "object":
            if not isinstance(val, dict):
                return [SchemaFinding(name, typ, f"{path} (object expected, got {type(val).__name__})", "wrong-type")]
            extra = prop.get("additionalProperties")
            out = []
            if extra:
                for k, item in val.items():
                    if item is not None:
                        out.extend(self._value(name, typ, f"{path}.{k}", extra, item))
            return out
        if kind is not None and not _scalar_ok(kind, val):
            return [SchemaFinding(name, typ, f"{path} ({kind} expected, got {type(val).__name__} {val!r})",
                                  "wrong-type")]
        return []


def _scalar_ok(kind: str, val: Any) -> bool:
    # The runtime carries every number as a float: 22 arrives as 22.0.
    if kind == "string":
        return isinstance(val, str)
    if kind == "boolean":
        return isinstance(val, bool)
    if kind == "integer":
        return isinstance(val, int | float) and not isinstance(val, bool) and float(val).is_integer()
    if kind == "number":
        return isinstance(val, int | float) and not isinstance(val, bool)
    return True
