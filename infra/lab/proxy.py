"""Package access for lab hosts: one tinyproxy per site network, on the host's bridge address.

The proxy accepts only the lab's own networks and forwards only to the hosts of this
machine's Debian apt sources (a default-deny domain filter), so lab hosts can `apt-get
install` as real hosts do and reach nothing else. Config files live under /run/hcops (the
proxy drops to the `tinyproxy` user and must read its filter file).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from pathlib import Path

from infra.lab.image import mirror_hosts
from infra.lab.layout import PROXY_PORT, BridgeSpec, Layout
from infra.lab.system import alive, require_tools, terminate
from inventories.errors import HcopsError


def proxy_dir(layout: Layout) -> Path:
    return Path("/run/hcops") / layout.name / "proxy"


def pidfile(layout: Layout, br: BridgeSpec) -> Path:
    return layout.run_dir / f"proxy-{br.key}.pid"


def config_text(layout: Layout, br: BridgeSpec, filter_file: Path) -> str:
    allows = "\n".join(f"Allow {b.cidr}" for b in layout.bridges.values())
    return (f"User tinyproxy\nGroup tinyproxy\nPort {PROXY_PORT}\nListen {br.host_address}\n"
            "Timeout 600\nMaxClients 100\nLogLevel Notice\nDisableViaHeader Yes\n"
            f"{allows}\nFilter \"{filter_file}\"\nFilterType ere\nFilterDefaultDeny Yes\n"
            "ConnectPort 443\n")


def filter_text() -> str:
    return "".join(f"^{re.escape(h)}$\n" for h in mirror_hosts())


def running(layout: Layout, br: BridgeSpec) -> int | None:
    try:
        pid = int(pidfile(layout, br).read_text().strip())
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if not alive(pid):
        return None
    return pid if cmd and cmd[0].endswith(b"tinyproxy") else None


def _listening(addr: str, port: int) -> bool:
    needle = f"{addr}:{port}"
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=False).stdout
    return any(needle in line.split()[3:4] for line in out.splitlines() if len(line.split()) > 3)


def ensure(layout: Layout, br: BridgeSpec) -> bool:
    """Start the proxy for this network if it is not running; True if it was started."""
    if running(layout, br) is not None:
        return False
    require_tools(["tinyproxy"])
    pdir = proxy_dir(layout)
    pdir.mkdir(parents=True, exist_ok=True)
    pdir.chmod(0o755)
    filt = pdir / "filter"
    filt.write_text(filter_text())
    conf = pdir / f"{br.key}.conf"
    conf.write_text(config_text(layout, br, filt))
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    log = layout.state / "logs" / f"proxy-{br.key}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if _listening(str(br.host_address), PROXY_PORT):
        raise HcopsError(f"{br.host_address}:{PROXY_PORT} is already in use by another process",
                         "stop it (see `ss -ltnp`), then rerun `hcops infra up`")
    with open(log, "ab") as fh:
        proc = subprocess.Popen(["tinyproxy", "-d", "-c", str(conf)], stdin=subprocess.DEVNULL,
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    pidfile(layout, br).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HcopsError(f"the package proxy for {br.key} exited at start (exit {proc.returncode})",
                             f"see {log}")
        if _listening(str(br.host_address), PROXY_PORT):
            return True
        time.sleep(0.1)
    raise HcopsError(f"the package proxy for {br.key} does not listen on {br.host_address}:{PROXY_PORT}",
                     f"see {log}")


def stop(layout: Layout, br: BridgeSpec) -> bool:
    pid = running(layout, br)
    if pid is not None:
        terminate(pid)
    with contextlib.suppress(FileNotFoundError):
        pidfile(layout, br).unlink()
    return pid is not None
