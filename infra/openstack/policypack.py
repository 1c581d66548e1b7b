"""The CrossGuard policy pack: the rules of `policy.py`, enforced by the Pulumi engine itself.

`hcops infra preview/up` pass this pack to the engine (`--policy-pack`, written by
`automation.policy_pack()`), so a real `pulumi preview/up` is held to exactly the rules the
offline preview applies: each rule of `policy.RULE_NAMES` is one mandatory stack policy whose
`validate` converts the engine's resources into the same `ResourceGraph` and calls the same
function. During a preview some ids are not known yet; a reference the engine does not know is
replaced by the URN of the one resource the property depends on, so links (monitor -> pool,
instance -> server group, floating IP -> VIP port) still resolve.

The facts the rules need from the model (HA sets, sensitive ports, encrypted volume types) come
from the stack config `hcops:regionPath` / `hcops:region` and `hcops:encryptedVolumeTypes`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from infra.openstack.graph import PlannedResource, ResourceGraph
from infra.openstack.policy import RULE_NAMES, PolicyContext, Rule

PACK_NAME = "hcops-openstack"
# pulumi_policy's sentinels for values not known during a preview (all start like this).
_UNKNOWN_PREFIXES = ("04da6b54-", "1c4a061d-", "3eeb2bf0-", "6a19a0b0-", "dd056dcd-", "030794c1-", "e48ece36-")


def _raw(value: Any) -> Any:
    """The plain value under pulumi_policy's unknown-checking proxies (sentinels left in)."""
    if isinstance(value, Mapping):
        target = value.get("__target", value)
        return {k: _raw(v) for k, v in dict(target).items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        try:
            target = value["__target"]  # type: ignore[call-overload]
        except (TypeError, KeyError, IndexError):
            target = value
        return [_raw(v) for v in target]
    return value


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(_UNKNOWN_PREFIXES)


def _resolve(value: Any, ref: str) -> Any:
    if is_unknown(value):
        return ref
    if isinstance(value, dict):
        return {k: _resolve(v, ref) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, ref) for v in value]
    return value


def _id_of(res: Any) -> str:
    props = _raw(res.props)
    rid = props.get("id") if isinstance(props, dict) else None
    return str(rid) if rid and not is_unknown(rid) else str(res.urn)


def graph_from(resources: Sequence[Any]) -> ResourceGraph:
    """The engine's resources (PolicyResource) as the graph the rules read."""
    graph = ResourceGraph()
    for res in resources:
        props = _raw(res.props)
        inputs = dict(props) if isinstance(props, dict) else {}
        for prop, deps in (res.property_dependencies or {}).items():
            if prop in inputs and len(deps) == 1:
                inputs[prop] = _resolve(inputs[prop], _id_of(deps[0]))
        typ = str(res.resource_type)
        graph.add(PlannedResource(
            urn=str(res.urn), type=typ, name=str(res.name), inputs=inputs, id=_id_of(res),
            parent=str(res.parent.urn) if getattr(res, "parent", None) else "",
            provider=str(res.provider.name) if getattr(res, "provider", None) else "",
            depends_on=tuple(str(d.urn) for d in res.dependencies or ()),
            custom=not typ.startswith("hcops:")))
    return graph


def validator(rule: Rule, context: Callable[[], PolicyContext]) -> Callable[[Any, Callable[..., None]], None]:
    """A StackValidationPolicy `validate` for one rule."""
    def validate(args: Any, report_violation: Callable[..., None]) -> None:
        for finding in rule(graph_from(args.resources), context()):
            report_violation(f"{finding.resource}: {finding.message}", finding.urn)
    return validate


def stack_context() -> PolicyContext:
    """The model facts for the stack being checked, from its config."""
    import pulumi  # noqa: PLC0415  (only inside the engine's analyzer process)

    from inventories.loader import load_region  # noqa: PLC0415

    cfg = pulumi.Config("hcops")
    name = cfg.get("regionPath") or cfg.require("region")
    region = load_region(name)
    types = cfg.get_object("encryptedVolumeTypes") or ["encrypted"]
    return PolicyContext.from_region(region, frozenset(str(t) for t in types))


def policies(context: Callable[[], PolicyContext] = stack_context) -> list[Any]:
    from pulumi_policy import EnforcementLevel, StackValidationPolicy  # noqa: PLC0415

    context = cache(context)  # one model load per run, not one per rule
    return [StackValidationPolicy(name=name, description=(rule.__doc__ or name).strip().splitlines()[0],
                                  validate=validator(rule, context),
                                  enforcement_level=EnforcementLevel.MANDATORY)
            for name, rule in RULE_NAMES.items()]


def run() -> None:
    """The pack's entry point (its `__main__.py`): serve the policies to the engine."""
    from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: PLC0415

    PolicyPack(name=PACK_NAME, policies=policies(), enforcement_level=EnforcementLevel.MANDATORY)
