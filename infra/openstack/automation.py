"""The real path: the region program driven by Pulumi's Automation API.

One stack per region (named after it), a local file backend under the region's state
directory by default (`--backend-url` for any other), and a generated passphrase (0600, in
the state dir) for the stack's secrets. The Automation API needs the `pulumi` CLI; where it is
missing, `pulumi_command` says so plainly instead of failing deep inside the SDK.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from pulumi import automation as auto

from infra.openstack.stackfile import stack_values
from infra.providers import InfraOptions
from infra.state import SecretStore, region_state_dir
from inventories.errors import HcopsError
from inventories.model import Region

PROJECT = "hcops"
PLUGIN = ("openstack", "v5.5.3")
MISSING_CLI = "the pulumi CLI is not installed (no `pulumi` on PATH or in ~/.pulumi/bin)"
MISSING_CLI_HINT = ("install the Pulumi CLI and put it on PATH, then the OpenStack plugin "
                    "(`pulumi plugin install resource openstack 5.5.3`); meanwhile "
                    "`hcops infra preview --offline` shows the plan without a cloud")


def find_cli() -> Path | None:
    found = shutil.which("pulumi")
    if found:
        return Path(found)
    home = Path.home() / ".pulumi" / "bin" / "pulumi"
    return home if home.exists() else None


class StackMissing(HcopsError):
    """The region's stack does not exist at the backend (status/destroy/refresh never create one)."""


def command_root(cli: Path) -> str | None:
    """`PulumiCommand(root=R)` runs `R/bin/pulumi`. That fits `~/.pulumi/bin/pulumi`, not a
    tarball unpacked anywhere (`/opt/pulumi/pulumi`, no `bin/`): a CLI found on PATH is run from
    PATH (root None), one found only under ~/.pulumi by its root."""
    if shutil.which("pulumi") and Path(shutil.which("pulumi") or "").resolve() == cli.resolve():
        return None
    return str(cli.parent.parent) if cli.parent.name == "bin" else None


def pulumi_command() -> auto.PulumiCommand:
    """A `PulumiCommand` for the installed CLI, or an HcopsError saying how to install one."""
    cli = find_cli()
    if cli is None:
        raise HcopsError(MISSING_CLI, MISSING_CLI_HINT)
    try:
        return auto.PulumiCommand(root=command_root(cli))
    except Exception as exc:  # the SDK raises several kinds for a CLI it cannot use
        raise HcopsError(f"the pulumi CLI at {cli} cannot be used: {exc}", MISSING_CLI_HINT) from None


def backend_url(region: Region, opts: InfraOptions) -> str:
    if opts.backend_url:
        return opts.backend_url
    path = region_state_dir(region.name, create=True) / "pulumi-state"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"file://{path}"


def project_settings(backend: str) -> auto.ProjectSettings:
    """The inline project names this interpreter's environment: the engine starts the S3 dynamic
    provider (and the policy pack) as separate Python processes, which must import hcops."""
    return auto.ProjectSettings(name=PROJECT, runtime=auto.ProjectRuntimeInfo(
        name="python", options={"virtualenv": sys.prefix}), backend=auto.ProjectBackend(url=backend))


POLICY_PACK_MAIN = """# Written by hcops: the CrossGuard pack of infra/openstack/policypack.py.
from infra.openstack.policypack import run

run()
"""


def policy_pack(region_name: str) -> str:
    """A policy-pack directory for `--policy-pack` in the region's state dir: PulumiPolicy.yaml
    naming this interpreter's environment and a `__main__.py` that runs hcops' pack (the same
    rule functions as the offline path)."""
    root = region_state_dir(region_name, create=True) / "policy-pack"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    (root / "PulumiPolicy.yaml").write_text(
        "description: hcops level-3 and HA policies for OpenStack regions\n"
        f"runtime:\n  name: python\n  options:\n    virtualenv: {sys.prefix}\n")
    (root / "__main__.py").write_text(POLICY_PACK_MAIN)
    return str(root)


def select_stack(region: Region, opts: InfraOptions, program: Callable[[], None], *,
                 create: bool = True) -> auto.Stack:
    """Select the region's stack with the inline program (create it only when `create`), and
    apply the stack file's settings so a hand-run `pulumi` and hcops see the same config."""
    cmd = pulumi_command()
    backend = backend_url(region, opts)
    work_dir = region_state_dir(region.name, create=True) / "pulumi-workspace"
    work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = {
        "PULUMI_CONFIG_PASSPHRASE": SecretStore(region.name).get("pulumi-passphrase", "token"),
        "PULUMI_BACKEND_URL": backend,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    ws = auto.LocalWorkspaceOptions(
        work_dir=str(work_dir), pulumi_command=cmd, env_vars=env, project_settings=project_settings(backend))
    name = opts.stack or region.name
    try:
        if create:
            stack = auto.create_or_select_stack(stack_name=name, project_name=PROJECT, program=program, opts=ws)
        else:
            stack = auto.select_stack(stack_name=name, project_name=PROJECT, program=program, opts=ws)
        config = {f"hcops:{k}": auto.ConfigValue(v if isinstance(v, str) else _json(v))
                  for k, v in stack_values(region.name).items()}
        config["hcops:region"] = auto.ConfigValue(region.name)
        config["hcops:regionPath"] = auto.ConfigValue(str(region.root))  # for the policy pack
        stack.set_all_config(config)
        plugins = {p.name for p in stack.workspace.list_plugins()}
        if PLUGIN[0] not in plugins:
            stack.workspace.install_plugin(*PLUGIN)
    except auto.errors.StackNotFoundError:
        raise StackMissing(f"region {region.name} has no stack {name} at {backend}",
                           "run `hcops infra up` first, or pass the --backend-url the stack was created at") from None
    except auto.errors.CommandError as exc:
        raise HcopsError(f"pulumi could not open stack {opts.stack or region.name} at {backend}: "
                         f"{_last_lines(str(exc))}", "check the backend URL and the pulumi CLI") from None
    return stack


def _last_lines(text: str, n: int = 6) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-n:] if line.strip())


def _json(data: object) -> str:
    import json  # noqa: PLC0415

    return json.dumps(data, sort_keys=True)
