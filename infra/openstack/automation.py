"""The real path: the region program driven by Pulumi's Automation API.

One stack per region (named after it), a local file backend under the region's state
directory by default (`--backend-url` for any other), and a generated passphrase (0600, in
the state dir) for the stack's secrets. The Automation API needs the `pulumi` CLI; where it is
missing, `pulumi_command` says so plainly instead of failing deep inside the SDK.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from pulumi import automation as auto

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


def pulumi_command() -> auto.PulumiCommand:
    """A `PulumiCommand` for the installed CLI, or an HcopsError saying how to install one."""
    cli = find_cli()
    if cli is None:
        raise HcopsError(MISSING_CLI, MISSING_CLI_HINT)
    try:
        return auto.PulumiCommand(root=str(cli.parent.parent))
    except Exception as exc:  # the SDK raises several kinds for a CLI it cannot use
        raise HcopsError(f"the pulumi CLI at {cli} cannot be used: {exc}", MISSING_CLI_HINT) from None


def backend_url(region: Region, opts: InfraOptions) -> str:
    if opts.backend_url:
        return opts.backend_url
    path = region_state_dir(region.name, create=True) / "pulumi-state"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"file://{path}"


def select_stack(region: Region, opts: InfraOptions, program: Callable[[], None]) -> auto.Stack:
    """Create or select the region's stack with the inline program (no project directory needed)."""
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
        work_dir=str(work_dir), pulumi_command=cmd, env_vars=env,
        project_settings=auto.ProjectSettings(name=PROJECT, runtime="python",
                                              backend=auto.ProjectBackend(url=backend)))
    try:
        stack = auto.create_or_select_stack(stack_name=opts.stack or region.name, project_name=PROJECT,
                                            program=program, opts=ws)
        stack.set_config("hcops:region", auto.ConfigValue(region.name))
        plugins = {p.name for p in stack.workspace.list_plugins()}
        if PLUGIN[0] not in plugins:
            stack.workspace.install_plugin(*PLUGIN)
    except auto.errors.CommandError as exc:
        raise HcopsError(f"pulumi could not open stack {opts.stack or region.name} at {backend}: "
                         f"{_last_lines(str(exc))}", "check the backend URL and the pulumi CLI") from None
    return stack


def _last_lines(text: str, n: int = 6) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-n:] if line.strip())
