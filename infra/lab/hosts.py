"""Lab hosts: systemd-nspawn containers booting an overlay of the cached base image.

The host has no systemd, so containers run with `--register=no --keep-unit`, detached in their
own session, console to a log file in the host's state directory. A container is found again by
its pid file and, if the nspawn process died, by the `HCOPS_MACHINE` variable in its init's
environment, so a crashed run leaves nothing that `up` or `down` cannot find.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from infra.lab.layout import PROXY_PORT, HostSpec, Layout
from infra.lab.system import alive, run
from infra.state import cache_root
from inventories.errors import HcopsError

NSPAWN_RUNTIME = Path("/run/systemd/nspawn")
MARK = "HCOPS_MACHINE"


def apt_archives() -> Path:
    """Shared .deb cache bind-mounted into every host, so rebuilt labs do not download again."""
    return cache_root() / "apt-archives"


# ---------------------------------------------------------------- processes

def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(x) for x in (task / "children").read_text().split()]
    return out


def nspawn_pid(host: HostSpec) -> int | None:
    """The running systemd-nspawn process of this host, if any."""
    try:
        pid = int(host.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    cmd = _cmdline(pid)
    if cmd and cmd[0].endswith("systemd-nspawn") and f"--machine={host.machine}" in cmd:
        return pid
    return None


def _is_marked(pid: int, machine: str) -> bool:
    try:
        return f"{MARK}={machine}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _marked_inits(machine: str) -> list[int]:
    """Container init processes carrying our mark (also those orphaned by a killed nspawn)."""
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and _is_marked(int(e.name), machine)]


def leader(host: HostSpec) -> int | None:
    """PID (host namespace) of the container's systemd, for nsenter."""
    pid = nspawn_pid(host)
    if pid is None:
        return None
    for child in _children(pid):
        if _is_marked(child, host.machine):
            return child
    return None


def orphans(host: HostSpec) -> list[int]:
    """Container inits still alive although their nspawn is gone (a killed or crashed run)."""
    lead = leader(host)
    return [p for p in _marked_inits(host.machine) if p != lead]


def uptime_seconds(pid: int) -> float | None:
    try:
        start_ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, boot - start_ticks / os.sysconf("SC_CLK_TCK"))


def nsenter(host: HostSpec, cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    pid = leader(host)
    if pid is None:
        raise HcopsError(f"host {host.name} is not running", f"start it: `hcops lab start-host {host.name}`")
    return subprocess.run(["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "-C", *cmd],
                          capture_output=True, text=True, timeout=timeout, check=False)


def system_state(host: HostSpec) -> str:
    """`systemctl is-system-running` inside, or `stopped` when the container is not running."""
    if leader(host) is None:
        return "stopped"
    try:
        return nsenter(host, ["systemctl", "is-system-running"], timeout=10).stdout.strip() or "unknown"
    except (subprocess.TimeoutExpired, HcopsError):
        return "unknown"


# ---------------------------------------------------------------- root file system

def is_mounted(path: Path) -> bool:
    target = str(path.resolve()) if path.exists() else str(path)
    with open("/proc/self/mountinfo") as fh:
        return any(line.split()[4] == target for line in fh)


def mount_root(host: HostSpec, base: Path) -> bool:
    """Mount the host's overlay (base image below, its own changes above); True if it mounted."""
    if is_mounted(host.root):
        return False
    for d in (host.upper, host.work, host.root):
        d.mkdir(parents=True, exist_ok=True)
    run(["mount", "-t", "overlay", f"hcops-{host.machine}", "-o",
         f"lowerdir={base},upperdir={host.upper},workdir={host.work}", str(host.root)],
        f"mount the root of {host.name}")
    return True


def _write_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return True


BLOCK_BEGIN = "# BEGIN hcops lab (managed by `hcops infra up`)"
BLOCK_END = "# END hcops lab"


def _with_block(path: Path, lines: list[str]) -> str:
    """The file with our managed block replaced (or added); what playbooks added around it stays."""
    text = path.read_text() if path.exists() else ""
    block = "\n".join([BLOCK_BEGIN, *lines, BLOCK_END]) + "\n"
    if BLOCK_BEGIN in text and BLOCK_END in text:
        head, rest = text.split(BLOCK_BEGIN, 1)
        tail = rest.split(BLOCK_END, 1)[1].lstrip("\n")
        return head + block + tail
    kept = [line for line in text.splitlines() if line.strip() and line not in lines]
    return block + "".join(f"{line}\n" for line in kept)


def _drop_block(path: Path) -> bool:
    """Remove our managed block from a file (what others added stays); True if it was there."""
    if not path.exists():
        return False
    text = path.read_text()
    if BLOCK_BEGIN not in text or BLOCK_END not in text:
        return False
    head, rest = text.split(BLOCK_BEGIN, 1)
    path.write_text(head + rest.split(BLOCK_END, 1)[1].lstrip("\n"))
    return True


# What the automation key may do: run commands (Ansible, hcops, testinfra), with a pty for
# `hcops lab ssh`; no port, agent or X11 forwarding, no ~/.ssh/rc.
AUTOMATION_KEY_OPTIONS = "restrict,pty"


def has_account(root: Path, user: str) -> bool:
    passwd = root / "etc/passwd"
    return passwd.exists() and any(line.split(":", 1)[0] == user for line in passwd.read_text().splitlines())


def ensure_automation_account(root: Path, user: str, authorized_key: str) -> bool:
    """The account the controller logs in as, made before first boot (cloud-init does it on OpenStack).

    Key only (its password field is `*`), passwordless sudo (every command logged by sudo and, on
    kernels that audit, by the execve rules), the key file owned by root so the account cannot
    add keys of its own. The baseline role manages the same account afterwards.
    """
    changed = False
    if not has_account(root, user):
        run(["useradd", "--root", str(root), "--create-home", "--user-group", "--shell", "/bin/bash",
             "--comment", "hcops automation (Ansible, hcops; no interactive use)", user],
            f"create the automation account {user}")
        run(["usermod", "--root", str(root), "--password", "*", user], f"key-only login for {user}")
        changed = True
    ssh_dir = root / "home" / user / ".ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    ssh_dir.chmod(0o755)
    keys = ssh_dir / "authorized_keys"
    changed |= _write_if_changed(keys, _with_block(keys, [f"{AUTOMATION_KEY_OPTIONS} {authorized_key.strip()}"]),
                                 0o644)
    changed |= _write_if_changed(root / "etc/sudoers.d/10-hcops-automation",
                                 f"# hcops automation account: passwordless sudo, every command logged\n"
                                 f"{user} ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440)
    return changed


def configure(layout: Layout, host: HostSpec, authorized_key: str) -> bool:
    """Hostname, address, keys and apt proxy inside the host's root; True if anything changed."""
    root = host.root
    br = host.bridge
    domain = layout.region.spec.region.domain
    hosts_lines = ["127.0.0.1\tlocalhost", f"127.0.1.1\t{host.name}.{domain}\t{host.name}"]
    hosts_lines += [f"{h.address}\t{h.name}.{domain}\t{h.name}" for h in layout.hosts.values() if h.name != host.name]
    network = (f"[Match]\nName=host0\n\n[Network]\nAddress={host.address}/{br.cidr.prefixlen}\n"
               f"Gateway={br.gateway}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n")
    proxy = f'Acquire::http::Proxy "http://{br.host_address}:{PROXY_PORT}";\n'
    changed = False
    changed |= _write_if_changed(root / "etc/hostname", host.name + "\n")
    changed |= _write_if_changed(root / "etc/hosts", _with_block(root / "etc/hosts", hosts_lines))
    changed |= _write_if_changed(root / "etc/systemd/network/10-host0.network", network)
    changed |= _write_if_changed(root / "etc/apt/apt.conf.d/01hcops-proxy", proxy)
    changed |= ensure_automation_account(root, layout.region.spec.region.automation_account, authorized_key)
    changed |= _drop_block(root / "root/.ssh/authorized_keys")  # root never logs in (PermitRootLogin no)
    if not (root / "etc/machine-id").read_text().strip():
        (root / "etc/machine-id").write_text(os.urandom(16).hex() + "\n")
        changed = True
    key = root / "etc/ssh/ssh_host_ed25519_key"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{host.name}", "-f", str(key)],
            f"host key for {host.name}")
        changed = True
    return changed


def host_public_key(host: HostSpec) -> str:
    return (host.root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[1]


# ---------------------------------------------------------------- start / stop

def ensure_nspawn_runtime() -> None:
    """nspawn wants /run/systemd/nspawn; without systemd on the host we provide it as a tmpfs."""
    if not is_mounted(NSPAWN_RUNTIME):
        NSPAWN_RUNTIME.mkdir(parents=True, exist_ok=True)
        run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(NSPAWN_RUNTIME)], "mount /run/systemd/nspawn")


def start(host: HostSpec) -> int:
    """Boot the container detached; returns the nspawn PID.

    A killed container's network namespace (and its veth) is freed asynchronously by the
    kernel, so a start right after one can find the veth name still taken: retry briefly.
    """
    left = orphans(host)
    for pid in left:
        kill_tree(pid)
    deadline = time.monotonic() + 10
    while any(alive(p) for p in left) and time.monotonic() < deadline:
        time.sleep(0.1)
    for attempt in range(20):
        try:
            return _start_once(host)
        except _VethBusy as busy:
            if attempt >= 4:
                # Still taken after a few seconds: no kernel cleanup is coming. The old
                # container of this name is dead (orphans were killed above), so the link is
                # a leftover of it, e.g. from a session killed mid-run, and ours to remove.
                drop_stale_veth(busy.link, host)
            time.sleep(0.25 * (attempt + 1) if attempt < 4 else 1.0)
    return _start_once(host)


class _VethBusy(Exception):
    def __init__(self, link: str) -> None:
        super().__init__(link)
        self.link = link


_VETH_TAKEN = re.compile(r"Failed to add new veth interfaces \((?P<link>[^:()\s]+):host0\): File exists")


def veth_taken(output: str) -> str | None:
    """The host-side veth name nspawn found taken, from what it printed at this start."""
    found = _VETH_TAKEN.search(output)
    return found.group("link") if found else None


def drop_stale_veth(link: str, host: HostSpec) -> bool:
    """Delete a leftover veth of this host's container if it hangs off our bridge (or none)."""
    shown = subprocess.run(["ip", "-o", "link", "show", "dev", link], capture_output=True, text=True, check=False)
    if shown.returncode != 0:
        return False  # already gone
    if " master " in shown.stdout and f" master {host.bridge.name} " not in shown.stdout:
        return False  # someone else's link on another bridge: not ours to touch
    return subprocess.run(["ip", "link", "del", "dev", link], capture_output=True, check=False).returncode == 0


def nspawn_args(host: HostSpec) -> list[str]:
    """The container's command line; a running host started with other arguments is restarted by `up`."""
    return ["systemd-nspawn", "-D", str(host.root), "-b", "--register=no", "--keep-unit",
            f"--machine={host.machine}", f"--network-bridge={host.bridge.name}",
            "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=read-only",
            "--bind=/dev/net/tun",
            # Shared .deb cache below, the host's own downloads above: apt's lock stays per host
            # (a shared bind made parallel installs fail on /var/cache/apt/archives/lock).
            f"--overlay={apt_archives()}:{host.archives}:/var/cache/apt/archives",
            f"--setenv={MARK}={host.machine}"]


def args_current(host: HostSpec) -> bool:
    pid = nspawn_pid(host)
    return pid is None or _cmdline(pid)[: len(nspawn_args(host))] == nspawn_args(host)


def harvest_debs(host: HostSpec) -> int:
    """Copy packages the host downloaded into the shared cache, for the next lab; returns the count."""
    shared = apt_archives()
    count = 0
    if not host.archives.is_dir():
        return 0
    for deb in host.archives.glob("*.deb"):
        target = shared / deb.name
        if not target.exists():
            tmp = shared / f".{deb.name}.tmp"
            shutil.copyfile(deb, tmp)
            tmp.replace(target)
            count += 1
    return count


def _start_once(host: HostSpec) -> int:
    ensure_nspawn_runtime()
    archives = apt_archives()
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    os.chown(archives / "partial", 42, 0)  # _apt in the Debian base image downloads into partial/
    host.archives.mkdir(parents=True, exist_ok=True)
    args = nspawn_args(host)
    start_at = host.log.stat().st_size if host.log.exists() else 0
    with open(host.log, "ab") as log:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    host.pidfile.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(host.log, "rb") as log:
                log.seek(start_at)
                printed = log.read().decode(errors="replace")
            link = veth_taken(printed)
            if link is not None:
                raise _VethBusy(link)
            tail_text = printed.strip().splitlines()[-12:]
            raise HcopsError(f"container {host.machine} exited at start (exit {proc.returncode}):\n"
                             + "\n".join(tail_text),
                             f"see {host.log}; a name or address in use? run `hcops infra down` then `up`")
        if leader(host) is not None:
            return proc.pid
        time.sleep(0.1)
    raise HcopsError(f"container {host.machine} did not start its init within 15 s", f"see {host.log}")


def kill_tree(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def wait_gone(host: HostSpec, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if nspawn_pid(host) is None and not _marked_inits(host.machine):
            return True
        time.sleep(0.2)
    return False


def stop(host: HostSpec, timeout: float = 60) -> None:
    """Clean poweroff from inside; after `timeout`, SIGKILL what is left."""
    pid = nspawn_pid(host)
    if pid is not None and leader(host) is not None:
        with contextlib.suppress(subprocess.TimeoutExpired, HcopsError):
            nsenter(host, ["systemctl", "poweroff", "--no-block"], timeout=10)
    elif pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if not wait_gone(host, timeout):
        for p in [*_marked_inits(host.machine), *([pid] if pid else [])]:
            kill_tree(p)
        wait_gone(host, 10)
    with contextlib.suppress(FileNotFoundError):
        host.pidfile.unlink()


def unmount_root(host: HostSpec) -> bool:
    if is_mounted(host.root):
        run(["umount", str(host.root)], f"unmount the root of {host.name}")
        return True
    return False


@dataclass
class HostState:
    name: str
    state: str  # running | degraded | starting | stopped | orphaned | ...
    pid: int | None
    uptime_s: float | None
    failed_units: list[str] = field(default_factory=list)


def failed_units(host: HostSpec) -> list[str]:
    try:
        out = nsenter(host, ["systemctl", "--failed", "--plain", "--no-legend"], timeout=10).stdout
    except (subprocess.TimeoutExpired, HcopsError):
        return []
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def observe(host: HostSpec) -> HostState:
    lead = leader(host)
    if lead is None:
        return HostState(host.name, "orphaned" if _marked_inits(host.machine) else "stopped", None, None)
    state = system_state(host)
    return HostState(host.name, state, lead, uptime_seconds(lead),
                     failed_units(host) if state == "degraded" else [])
