"""Which engine builds a region's hosts, and the operations every engine offers.

A region names a provider per site (`lab` or `openstack`). `hcops infra <op>` means the same for
both: each provider module exposes the functions of `ProviderOps`, taking the validated region
and the command's options and returning a result object (`OpResult`: an `exit_code` property,
0 ok / no changes, 2 changes planned, 1 error, and `as_dict()` for JSON) that the CLI renders;
a bare exit code is still accepted from a provider that prints for itself. Engines never ask:
`InfraOptions.yes` carries the caller's confirmation decision. Modules are imported only when a
region uses them, so the lab needs no Pulumi import and the Pulumi program needs no nspawn.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from inventories.errors import HcopsError
from inventories.model import Region

PROVIDER_MODULES = {
    "openstack": "infra.openstack.ops",
    "lab": "infra.lab.ops",
}
# Cloud sides first: the lab (or a cloud region's local side) may depend on cloud outputs.
ORDER = ("openstack", "lab")


@dataclass
class InfraOptions:
    json: bool = False
    yes: bool = False  # the caller's confirmation decision (--yes, or the answer to the CLI's question)
    offline: bool = False
    strict: bool = False
    backend_url: str | None = None
    stack: str | None = None
    progress: Callable[[str], None] | None = None  # progress lines (the CLI prints them on stderr)
    on_plan: Callable[[Any], None] | None = None  # `up` hands its plan here before carrying it out


class OpResult(Protocol):
    @property
    def exit_code(self) -> int: ...
    def as_dict(self) -> dict[str, Any]: ...


Outcome = int | OpResult


class ProviderOps(Protocol):
    def preview(self, region: Region, opts: InfraOptions) -> Outcome: ...
    def up(self, region: Region, opts: InfraOptions) -> Outcome: ...
    def destroy(self, region: Region, opts: InfraOptions) -> Outcome: ...
    def status(self, region: Region, opts: InfraOptions) -> Outcome: ...
    def refresh(self, region: Region, opts: InfraOptions) -> Outcome: ...
    def outputs(self, region: Region, opts: InfraOptions) -> Outcome: ...


def providers_of(region: Region) -> list[str]:
    used = {site.provider for site in region.sites.values()}
    return [p for p in ORDER if p in used]


def load_ops(provider: str) -> ProviderOps:
    try:
        module = importlib.import_module(PROVIDER_MODULES[provider])
    except ImportError as exc:
        raise HcopsError(f"the {provider} provider cannot be loaded: {exc}",
                         "reinstall hcops with its dependencies (see README)") from None
    ops: ProviderOps = module  # a module with the functions above satisfies the protocol
    return ops
