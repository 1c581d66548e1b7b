"""The automatic manager as a systemd service on the operations host, and the lock that keeps it
the only manager of its region.

The `failover_manager` role installs `UNIT` (ExecStart `hcops failover watch`) where the model
asks for it (`failover.watch_service`). Whatever runs a manager (the service, `hcops failover
watch` by hand, a drill's in-process one) takes `manager_lock` first, so two managers never judge
the same primary at once. A drill pauses an active service for its run and starts it again after
(`pause` / `resume`): its own manager then holds the lock and its decisions go in the journal.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path
from typing import IO

from infra.state import region_state_dir
from inventories.errors import HcopsError

UNIT = "hcops-failover-manager-{region}.service"
"""The unit the failover_manager role writes (its template says the same name)."""


def unit(region: str) -> str:
    return UNIT.format(region=region)


class ManagerLock:
    """An exclusive, non-blocking flock on `<state>/failover-manager.lock` holding the owner's pid."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.path = region_state_dir(region, create=True) / "failover-manager.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            handle.close()
            raise HcopsError(
                f"another failover manager is running for region {self.region} (pid {owner})",
                f"only one may judge the primary: stop it first (systemctl stop {unit(self.region)}, "
                "or end that `hcops failover watch`); drills pause the service themselves") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=60, check=False)


def active(region: str) -> bool:
    """Is the region's manager service running on this (the operations) host?"""
    if shutil.which("systemctl") is None or not Path("/run/systemd/system").exists():
        return False
    return _systemctl("is-active", "--quiet", unit(region)).returncode == 0


def pause(region: str) -> bool:
    """Stop an active service for a drill; True if it was running (the drill resumes it)."""
    if not active(region):
        return False
    done = _systemctl("stop", unit(region))
    if done.returncode != 0:
        raise HcopsError(f"could not pause {unit(region)}: {done.stderr.strip()}",
                         "stop it by hand, then rerun the drill")
    return True


def resume(region: str) -> None:
    done = _systemctl("start", unit(region))
    if done.returncode != 0:
        raise HcopsError(f"could not start {unit(region)} again after the drill: {done.stderr.strip()}",
                         f"start it: systemctl start {unit(region)}")
