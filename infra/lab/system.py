"""Running host tools with errors a user can act on, and the preconditions the lab needs.

Every failure of a system command becomes an `HcopsError` naming the step and the tail of its
output, so `hcops infra up` never ends in a traceback when, say, debootstrap cannot fetch.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from inventories.errors import HcopsError

# Tool -> Debian package that provides it: the hint when the tool is missing.
TOOL_PACKAGES = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "ip": "iproute2",
    "tc": "iproute2",
    "nft": "nftables",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "tinyproxy": "tinyproxy",
    "nsenter": "util-linux",
    "mount": "mount",
    "chroot": "coreutils",
}

# Kernel features the lab uses, with the module that must exist (probed by creating one).
KERNEL_LINK_KINDS = ("bridge", "veth")


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run(args: Sequence[str], step: str, *, check: bool = True, timeout: float = 120,
        input_text: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise an HcopsError that says which step failed and why."""
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              input=input_text, env=env, check=False)
    except FileNotFoundError:
        tool = args[0]
        raise HcopsError(f"{step}: `{tool}` is not installed",
                         f"apt-get install {TOOL_PACKAGES.get(tool, tool)}") from None
    except subprocess.TimeoutExpired:
        raise HcopsError(f"{step}: `{' '.join(args)}` did not finish within {timeout:.0f} s",
                         "check the machine's load and rerun; `hcops infra up` repairs what is half built") from None
    if check and proc.returncode != 0:
        out = tail(proc.stderr + "\n" + proc.stdout)
        raise HcopsError(f"{step} failed (exit {proc.returncode}): {' '.join(args)}\n{out}",
                         "read the output above; rerun `hcops infra up` once it is fixed")
    return proc


def ok(args: Sequence[str], timeout: float = 30) -> bool:
    """True when the command succeeds; for probes whose failure is an answer, not an error."""
    try:
        return subprocess.run(list(args), capture_output=True, timeout=timeout, check=False).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


def require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise HcopsError(f"{action} needs root: the lab creates bridges, namespaces and containers",
                         "run it as root (e.g. with sudo)")


def require_tools(tools: Sequence[str]) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pkgs = sorted({TOOL_PACKAGES.get(t, t) for t in missing})
        raise HcopsError(f"missing tools for the lab: {', '.join(missing)}",
                         f"apt-get install {' '.join(pkgs)}")


def require_kernel() -> None:
    """Fail early, by name, when the kernel lacks what the lab is made of."""
    fs = Path("/proc/filesystems").read_text()
    if "overlay" not in fs:
        raise HcopsError("the kernel has no overlay file system (hosts are overlays of the base image)",
                         "load it with `modprobe overlay`, or run the lab on a kernel that has it")
    if not Path("/dev/net/tun").exists():
        raise HcopsError("/dev/net/tun is missing (the collector's wireguard-go needs it)",
                         "load the tun module (`modprobe tun`) or create the device node")
    raise_inotify_instances()


# Every container's systemd holds several inotify instances; Debian's default of 128 per user runs
# out with a few dozen hosts on one machine (containers then fail to boot: "Too many open files").
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_WANTED = 1024


def raise_inotify_instances() -> None:
    """Raise the per-user inotify instance limit to what a lab needs (never lower it)."""
    try:
        if int(INOTIFY_INSTANCES.read_text()) < INOTIFY_WANTED:
            INOTIFY_INSTANCES.write_text(f"{INOTIFY_WANTED}\n")
    except (OSError, ValueError) as exc:
        raise HcopsError(f"cannot raise fs.inotify.max_user_instances to {INOTIFY_WANTED}: {exc}",
                         f"run `sysctl fs.inotify.max_user_instances={INOTIFY_WANTED}` as root") from None


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write a file readable only by its owner (credentials, keys), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    tmp.replace(path)


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (reaping it if it is our child)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def terminate(pid: int, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; returns once the process is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while alive(pid) and time.monotonic() < deadline + 5:
            time.sleep(0.1)
