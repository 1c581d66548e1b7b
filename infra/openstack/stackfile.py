"""The stack files: `Pulumi.<region>.yaml` beside `Pulumi.yaml`, one per OpenStack region.

Pulumi keeps a stack's config in `Pulumi.<stack>.yaml` in the project directory; a hand-run
`pulumi preview` in `infra/openstack/` reads it from there. `hcops infra preview/up` read the
same file (the offline preview and the policy checks before `up` too) and apply it to the
stack before a real run, so both see one configuration. Values under the `hcops:` namespace
only; nothing secret belongs here (passwords stay in clouds.yaml / secure.yaml / `OS_*`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from infra.openstack.config import ProgramSettingsError

PROJECT_DIR = Path(__file__).resolve().parent
NAMESPACE = "hcops:"


def stack_file(stack: str) -> Path:
    base = Path(os.environ.get("HCOPS_PULUMI_PROJECT_DIR") or PROJECT_DIR)
    return base / f"Pulumi.{stack}.yaml"


def stack_values(stack: str) -> dict[str, Any]:
    """The `hcops:*` config of a stack file, keys without the namespace; {} without a file."""
    path = stack_file(stack)
    if not path.exists():
        return {}
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProgramSettingsError(f"stack file {path} is not valid YAML: {exc}",
                                   "fix the file (it is plain `config:` YAML, as `pulumi config` writes it)") from None
    config = doc.get("config") if isinstance(doc, dict) else None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ProgramSettingsError(f"stack file {path}: `config` is not a mapping", "write `config:` as key: value")
    out: dict[str, Any] = {}
    for key, value in config.items():
        if str(key).startswith(NAMESPACE):
            name = str(key)[len(NAMESPACE):]
            out[name] = value
    if out.get("region") not in (None, stack):
        raise ProgramSettingsError(f"stack file {path} says hcops:region is {out.get('region')!r}",
                                   f"a stack file is for one region: set hcops:region: {stack}")
    out.pop("region", None)
    return out
