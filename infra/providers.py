"""Which engine builds a region's hosts, and the operations every engine offers.

A region names a provider per site (`lab` or `openstack`). `hcops infra <op>` means the same for
both: each provider module exposes the functions of `ProviderOps`, taking the validated region
and the command's options and returning an exit code (0 ok / no changes, 2 changes planned,
1 error). Modules are imported only when a region uses them, so the lab needs no Pulumi import
and the Pulumi program needs no nspawn.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol

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
    yes: bool = False
    offline: bool = False
    strict: bool = False
    backend_url: str | None = None
    stack: str | None = None


class ProviderOps(Protocol):
    def preview(self, region: Region, opts: InfraOptions) -> int: ...
    def up(self, region: Region, opts: InfraOptions) -> int: ...
    def destroy(self, region: Region, opts: InfraOptions) -> int: ...
    def status(self, region: Region, opts: InfraOptions) -> int: ...
    def refresh(self, region: Region, opts: InfraOptions) -> int: ...
    def outputs(self, region: Region, opts: InfraOptions) -> int: ...


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
