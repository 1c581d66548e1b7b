"""How plan checks reach a host: pytest-testinfra over the region's own ssh settings.

The one place that decides the login and whether commands need sudo: a region whose outputs
log in as root runs commands as they are; one that logs in as a named automation account
(level-3: no shared root logins) runs them through `sudo`, as testinfra's `sudo=True` does.
"""

from __future__ import annotations

import re
from typing import Any

import testinfra

from infra.lab.layout import Layout
from infra.state import read_outputs, region_state_dir
from inventories.errors import HcopsError
from inventories.model import Region


def _ssh_config_user(config_text: str, host: str) -> str | None:
    """The `User` of the first `Host` block naming `host` in an ssh config."""
    block: list[str] | None = None
    for raw in config_text.splitlines():
        line = raw.strip()
        if re.match(r"(?i)^host\s", line):
            names = line.split()[1:]
            block = names if host in names else None
            continue
        if block is not None:
            m = re.match(r"(?i)^user\s+(\S+)", line)
            if m:
                return m.group(1)
    return None


def _control_path(region: Region, host: str) -> str:
    """One ssh connection per host for a whole verify run (testinfra sets ControlMaster=auto).
    A plain path: testinfra %-formats the command, so ssh's own `%C` tokens cannot pass."""
    d = region_state_dir(region.name) / "ssh-mux"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return str(d / host)


def connect(region: Region, host: str) -> Any:
    """A testinfra host for `host`, with sudo when the login is not root."""
    outputs = read_outputs(region.name)
    if host not in outputs.hosts:
        raise HcopsError(f"host {host} is not in the outputs of region {region.name!r}",
                         f"run `hcops infra up --region {region.name}`")
    if outputs.provider == "lab":
        config = Layout(region).ssh_config
        if not config.exists():
            raise HcopsError(f"region {region.name!r} has no ssh config at {config}",
                             f"run `hcops infra up --region {region.name}`")
        user = _ssh_config_user(config.read_text(), host) or outputs.ssh_user
        return testinfra.get_host(f"ssh://{host}", ssh_config=str(config), sudo=user != "root",
                                  controlpath=_control_path(region, host))
    addr = outputs.hosts[host].ssh_address
    kwargs: dict[str, Any] = {"sudo": outputs.ssh_user != "root", "controlpath": _control_path(region, host)}
    if outputs.ssh_private_key:
        kwargs["ssh_identity_file"] = str(outputs.ssh_private_key)
    return testinfra.get_host(f"ssh://{outputs.ssh_user}@{addr}", **kwargs)
