"""The lab's Debian 12 base image: built once with debootstrap, cached by the hash of its recipe.

Hosts are overlays of this tree, so it is never modified after it is built; a changed recipe
(package list, setup script, mirror) gives a new hash and a new directory, and labs still
running keep the image they were made from. The mirror is read from this machine's apt sources
at run time; no mirror name is written in the repository.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from infra.lab.system import require_root, require_tools, run, tail
from infra.state import cache_root
from inventories.errors import HcopsError

SUITE = "bookworm"
# What every lab host has before any playbook runs: systemd as init, sshd, and what Ansible's
# modules need (python3, python3-apt, sudo, locales). ping/curl/nc serve drills and checks.
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "iproute2",
    "python3-apt", "sudo", "ca-certificates", "gnupg", "locales", "iputils-ping",
    "curl", "netcat-openbsd", "procps", "less",
)
# Run in the new tree (chroot) after debootstrap. Bump RECIPE_VERSION when editing it.
RECIPE_VERSION = 1
SETUP_SCRIPT = r"""
set -eu
echo 'en_US.UTF-8 UTF-8' > /etc/locale.gen
locale-gen >/dev/null
echo 'LANG=en_US.UTF-8' > /etc/default/locale
systemctl enable systemd-networkd.service >/dev/null 2>&1
systemctl enable ssh.service >/dev/null 2>&1
# Every host gets its own host key and machine id when it is created.
rm -f /etc/ssh/ssh_host_* /etc/hostname
: > /etc/machine-id
mkdir -p /etc/ssh/sshd_config.d /root/.ssh
chmod 700 /root/.ssh
cat > /etc/ssh/sshd_config.d/10-hcops.conf <<'CONF'
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
CONF
# Keep downloaded packages: the archive directory is a cache shared by all lab hosts.
echo 'APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/10hcops-keep-debs
echo 'APT::Install-Recommends "false";' > /etc/apt/apt.conf.d/10hcops-no-recommends
apt-get clean
"""


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]

    @property
    def host(self) -> str:
        return urlparse(self.uri).hostname or ""


def _parse_deb822(text: str) -> list[AptSource]:
    out: list[AptSource] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            out.append(AptSource(uri, tuple(fields.get("suites", "").split()),
                                 tuple(fields.get("components", "main").split())))
    return out


def _parse_one_line(text: str) -> list[AptSource]:
    out: list[AptSource] = []
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            out.append(AptSource(words[1], (words[2],), tuple(words[3:]) or ("main",)))
    return out


def apt_sources(root: Path = Path("/etc/apt")) -> list[AptSource]:
    """The Debian sources this machine uses for the lab's suite (main archive and its updates)."""
    found: list[AptSource] = []
    files = [root / "sources.list"] + sorted((root / "sources.list.d").glob("*"))
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.name.endswith(".sources"):
            found += _parse_deb822(text)
        elif path.name.endswith(".list"):
            found += _parse_one_line(text)
    return [s for s in found if any(x.split("-")[0] == SUITE for x in s.suites)
            and s.uri.startswith(("http://", "https://"))]


def mirror() -> str:
    """The main Debian archive URI for the lab's suite, from this machine's apt sources."""
    for src in apt_sources():
        if SUITE in src.suites:
            return src.uri
    raise HcopsError(f"no Debian {SUITE} source found in /etc/apt/sources.list or /etc/apt/sources.list.d",
                     f"add a `deb <mirror> {SUITE} main` source to this machine's apt configuration")


def mirror_hosts() -> list[str]:
    """Hosts the lab's package proxy may reach: those of this machine's Debian sources."""
    return sorted({s.host for s in apt_sources() if s.host})


def sources_list() -> str:
    lines = [f"deb {s.uri} {suite} {' '.join(s.components)}" for s in apt_sources() for suite in s.suites]
    return "\n".join(lines) + "\n"


def recipe() -> dict[str, object]:
    return {"suite": SUITE, "variant": "minbase", "packages": list(PACKAGES), "setup": SETUP_SCRIPT,
            "version": RECIPE_VERSION, "mirror": mirror(), "sources": sources_list()}


def recipe_hash() -> str:
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:16]


def images_dir() -> Path:
    return cache_root() / "images"


def image_dir(digest: str | None = None) -> Path:
    return images_dir() / (digest or recipe_hash())


def rootfs(digest: str | None = None) -> Path:
    return image_dir(digest) / "rootfs"


def is_built(digest: str | None = None) -> bool:
    return (image_dir(digest) / "recipe.json").exists() and rootfs(digest).is_dir()


@contextmanager
def _build_lock() -> Iterator[None]:
    images_dir().mkdir(parents=True, exist_ok=True)
    with open(images_dir() / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure(log: list[str] | None = None) -> tuple[Path, float]:
    """The base image's root for the current recipe, built if missing; returns (rootfs, build seconds)."""
    digest = recipe_hash()
    if is_built(digest):
        return rootfs(digest), 0.0
    require_root("building the lab base image")
    require_tools(["debootstrap", "chroot"])
    with _build_lock():
        if is_built(digest):  # another process built it while we waited
            return rootfs(digest), 0.0
        started = time.monotonic()
        _build(digest)
        seconds = time.monotonic() - started
        if log is not None:
            log.append(f"built base image {digest} in {seconds:.0f} s")
        return rootfs(digest), seconds


def _build(digest: str) -> None:
    final = image_dir(digest)
    work = images_dir() / f"{digest}.building"
    shutil.rmtree(work, ignore_errors=True)
    target = work / "rootfs"
    target.mkdir(parents=True)
    debs = cache_root() / "debootstrap-debs"
    debs.mkdir(parents=True, exist_ok=True)
    logfile = images_dir() / f"{digest}.log"
    steps: list[tuple[str, list[str], float]] = [
        ("debootstrap", ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                         f"--cache-dir={debs}", SUITE, str(target), mirror()], 900),
        ("image setup", ["chroot", str(target), "/bin/sh", "-c", SETUP_SCRIPT], 300),
    ]
    with open(logfile, "w") as log:
        for step, args, timeout in steps:
            log.write(f"### {step}: {' '.join(args[:6])} ...\n")
            log.flush()
            proc = run(args, f"base image build, step {step!r}", check=False, timeout=timeout)
            log.write(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                shutil.rmtree(work, ignore_errors=True)
                raise HcopsError(
                    f"base image build failed at step {step!r} (exit {proc.returncode}); last output:\n"
                    + tail(proc.stdout + proc.stderr, 20),
                    f"full log: {logfile}; fix the cause (mirror reachable? disk space?) and rerun `hcops infra up`")
    (target / "etc/apt/sources.list").write_text(sources_list())
    (work / "recipe.json").write_text(json.dumps(recipe(), indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
