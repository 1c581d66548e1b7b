"""`hcops infra <op>` for OpenStack sites: engine functions that return results, never print.

`preview --offline` runs the program under the mock runtime (strict: every input checked
against the provider's schema) and needs nothing but Python. Everything else goes through the
Automation API and needs the `pulumi` CLI; without it the call raises an HcopsError saying
what to install. `cli/infra_openstack.py` renders the results and picks the exit code; a
destructive call takes the caller's confirmation as a parameter and refuses without it.

Every path reads the stack's own settings: the stack file `Pulumi.<region>.yaml` beside the
project (`stackfile.py`), applied to the stack before a real run, so the policy checks of `up`
see the same flavors, networks and gateways the cloud run will.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pulumi import automation as auto

from infra.openstack import automation
from infra.openstack.config import ProgramConfig, ProgramSettingsError, build_config
from infra.openstack.mocks import OfflinePlan, run_offline
from infra.openstack.policy import Finding, PolicyContext, check
from infra.openstack.program import OUTPUT_KEY, PUBLIC_KEY, pulumi_main
from infra.openstack.quota import owned_from_deployment
from infra.openstack.schema import SchemaFinding
from infra.openstack.stackfile import stack_values
from infra.openstack.topology import openstack_sites
from infra.providers import InfraOptions
from infra.state import RegionOutputs, outputs_path, read_outputs, region_state_dir, write_outputs
from inventories.errors import HcopsError
from inventories.model import Region

Progress = Callable[[str], None]


@dataclass
class OfflineResult:
    """The offline plan with everything found in it."""

    plan: OfflinePlan
    findings: list[Finding]
    schema_findings: list[SchemaFinding]
    notes: list[str] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return len(self.plan.graph.custom_resources())


@dataclass
class PreviewResult:
    region: str
    stack: str
    changes: dict[str, int]
    findings: list[Finding]

    @property
    def changed(self) -> int:
        return sum(n for op, n in self.changes.items() if op != "same")


@dataclass
class UpResult:
    region: str
    outputs_file: str
    public_addresses: dict[str, str]


@dataclass
class DestroyResult:
    region: str
    destroyed: int
    outputs_removed: bool
    retained_volumes: list[str]


@dataclass
class StatusResult:
    region: str
    outputs: RegionOutputs | None
    stack_exists: bool | None  # None: no pulumi CLI to ask
    last_update: dict[str, str]


@dataclass
class RefreshResult:
    region: str
    changed: int


def _config(region: Region, offline: bool) -> ProgramConfig:
    try:
        return build_config(region.name, stack_values(region.name), offline=offline)
    except ProgramSettingsError as exc:
        raise HcopsError(f"OpenStack settings for region {region.name}: {exc.message}", exc.hint) from None


def offline_check(region: Region) -> OfflineResult:
    """Run the program under mocks, with the stack's settings, and check policies and schema."""
    if not openstack_sites(region):
        raise HcopsError(f"region {region.name} has no `provider: openstack` site",
                         "set `provider: openstack` on the sites Pulumi should build")
    cfg = _config(region, offline=True)
    try:
        plan = run_offline(region, cfg)
    except ProgramSettingsError as exc:
        raise HcopsError(f"the OpenStack program refused region {region.name}: {exc.message}", exc.hint) from None
    findings = check(plan.graph, PolicyContext.from_region(region, cfg.encrypted_volume_types))
    notes = [n for s in (plan.program.sites.values() if plan.program else []) for n in s.vpc.route_notes]
    return OfflineResult(plan, findings, list(plan.schema_findings), notes)


def _stack(region: Region, opts: InfraOptions, *, create: bool) -> auto.Stack:
    return automation.select_stack(region, opts, lambda: pulumi_main(region), create=create)


def _run(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except auto.errors.CommandError as exc:
        lines = [ln for ln in str(exc).splitlines() if ln.strip()][-8:]
        raise HcopsError(f"pulumi {what} failed: " + " | ".join(ln.strip() for ln in lines),
                         "read the pulumi output above; nothing after the failing step was changed") from None


def _summary(summary: dict[Any, int] | None) -> dict[str, int]:
    return {str(getattr(k, "value", k)): int(v) for k, v in (summary or {}).items()}


def _refuse_on(checked: OfflineResult, strict: bool) -> None:
    if checked.schema_findings:
        raise HcopsError(f"{len(checked.schema_findings)} input(s) the provider would refuse "
                         f"(first: {checked.schema_findings[0]}); nothing was changed",
                         "fix the program or the stack settings named above")
    if checked.findings and strict:
        raise HcopsError(f"{len(checked.findings)} policy finding(s) and --strict: nothing was changed",
                         "fix the model (or the program) so the findings above go away")


def preview(region: Region, opts: InfraOptions, checked: OfflineResult,
            progress: Progress | None = None) -> PreviewResult:
    """`pulumi preview` of the region's stack (needs the CLI), after the offline checks passed."""
    automation.pulumi_command()  # fail fast, before any state is written
    _refuse_on(checked, opts.strict)
    stack = _stack(region, opts, create=True)
    pack = automation.policy_pack(region.name)
    result = _run("preview", lambda: stack.preview(on_output=progress, policy_packs=[pack]))
    return PreviewResult(region.name, stack.name, _summary(result.change_summary), checked.findings)


def ensure_ssh_key(region: Region) -> None:
    """Generate the region's admin key pair (state dir, 0600) unless a key was configured."""
    key = region_state_dir(region.name, create=True) / "ssh" / "id_ed25519"
    if key.exists():
        return
    key.parent.mkdir(mode=0o700, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"hcops-{region.name}", "-f", str(key)],
                   check=True)


def up(region: Region, opts: InfraOptions, checked: OfflineResult, *, confirmed: bool,
       progress: Progress | None = None) -> UpResult:
    """Create or update the stack. `confirmed` is the caller's decision (flag or prompt)."""
    automation.pulumi_command()
    _refuse_on(checked, opts.strict)
    if not confirmed:
        raise HcopsError(f"creating or updating the OpenStack resources of region {region.name} was not confirmed",
                         "rerun with --yes, or answer yes at the prompt")
    ensure_ssh_key(region)
    stack = _stack(region, opts, create=True)
    stack.set_config("hcops:quotaPreflight", auto.ConfigValue("true"))
    owned = owned_from_deployment(region, _run("stack export", stack.export_stack).deployment or {})
    stack.set_config("hcops:owned", auto.ConfigValue(_json(owned)))
    pack = automation.policy_pack(region.name)
    result = _run("up", lambda: stack.up(on_output=progress, policy_packs=[pack]))
    doc = result.outputs.get(OUTPUT_KEY)
    if doc is None:
        raise HcopsError("the stack has no `hcops` output", "rerun `hcops infra up`")
    path = write_outputs(RegionOutputs.model_validate(doc.value))
    public = result.outputs.get(PUBLIC_KEY)
    return UpResult(region.name, str(path), dict(public.value) if public and public.value else {})


def destroy(region: Region, opts: InfraOptions, *, confirmed: bool, progress: Progress | None = None) -> DestroyResult:
    """Destroy the stack's resources. Refuses a stack that does not exist (nothing to say it
    destroyed) and keeps outputs.json unless resources of this stack were really removed."""
    automation.pulumi_command()
    if not confirmed:
        raise HcopsError(f"destroying every OpenStack resource of region {region.name} was not confirmed",
                         "rerun with --yes, or answer yes at the prompt")
    stack = _stack(region, opts, create=False)
    deployment = _run("stack export", stack.export_stack).deployment or {}
    held = [r for r in deployment.get("resources") or [] if str(r.get("type", "")).startswith("openstack:")]
    if not held:
        raise HcopsError(f"stack {stack.name} at {automation.backend_url(region, opts)} holds no OpenStack resources",
                         "check --backend-url (the stack `up` wrote to); outputs.json was left as it was")
    retained = sorted(str((r.get("inputs") or {}).get("name", r.get("urn"))) for r in held
                      if r.get("retainOnDelete"))
    result = _run("destroy", lambda: stack.destroy(on_output=progress))
    destroyed = _summary(result.summary.resource_changes).get("delete", len(held))
    path = outputs_path(region.name)
    removed = path.exists()
    if removed:
        path.unlink()
    return DestroyResult(region.name, destroyed, removed, retained)


def refresh(region: Region, opts: InfraOptions, progress: Progress | None = None) -> RefreshResult:
    automation.pulumi_command()
    stack = _stack(region, opts, create=False)
    result = _run("refresh", lambda: stack.refresh(on_output=progress))
    changed = sum(n for op, n in _summary(result.summary.resource_changes).items() if op != "same")
    return RefreshResult(region.name, changed)


def status(region: Region, opts: InfraOptions) -> StatusResult:
    """The provisioned hosts (outputs.json) and, where the CLI exists, the stack's last update.
    Never creates a stack: a missing one is reported as missing."""
    path = outputs_path(region.name)
    doc = read_outputs(region.name) if path.exists() else None
    if automation.find_cli() is None:
        return StatusResult(region.name, doc, None, {})
    try:
        stack = _stack(region, opts, create=False)
    except automation.StackMissing:
        return StatusResult(region.name, doc, False, {})
    info = _run("stack info", stack.info)
    last = {"result": str(info.result), "kind": str(info.kind), "end_time": str(info.end_time)} if info else {}
    return StatusResult(region.name, doc, True, last)


def require_cli() -> None:
    """Raise the clear 'install the pulumi CLI' error where there is none."""
    automation.pulumi_command()


def outputs(region: Region) -> RegionOutputs:
    return read_outputs(region.name)


def _json(data: Any) -> str:
    import json  # noqa: PLC0415

    return json.dumps(data, sort_keys=True)
