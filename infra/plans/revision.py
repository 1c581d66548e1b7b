"""Which model a plan was made from: a content hash of the region's files, and a date.

A printed plan carries both on its cover, so a county team can match paper to model. The hash
covers exactly the files the loader reads, so it changes when (and only when) the model does.
The date comes from an explicit option, else the last commit that touched the region (when the
files are committed and unchanged), else the newest file time: never from the clock, so the same
model renders to the same bytes.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib.metadata import PackageNotFoundError, version

from inventories.errors import HcopsError
from inventories.loader import region_files
from inventories.model import Region


@dataclass(frozen=True)
class ModelRevision:
    digest: str  # sha256 of the region's files (relative path and content of each)
    commit: str | None  # the last git commit touching the region, when it is in a repository
    dirty: bool  # files differ from that commit
    date: date
    date_source: str  # "option", "commit" or "file times"

    @property
    def short(self) -> str:
        return self.digest[:12]

    @property
    def label(self) -> str:
        if self.commit is None:
            return f"sha256:{self.short}"
        return f"sha256:{self.short} (git {self.commit[:10]}{', with uncommitted changes' if self.dirty else ''})"


def _git(region: Region, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(region.root), *args], capture_output=True, text=True,
                              timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HcopsError(f"--date {text!r} is not a date", "write it as YYYY-MM-DD, e.g. --date 2026-12-01") from None


def model_revision(region: Region, explicit_date: date | None = None) -> ModelRevision:
    files = region_files(region.root)
    h = hashlib.sha256()
    for f in files:
        rel = f.relative_to(region.root).as_posix().encode()
        h.update(len(rel).to_bytes(4, "big") + rel)
        body = f.read_bytes()
        h.update(len(body).to_bytes(8, "big") + body)
    commit_line = _git(region, "log", "-1", "--format=%H %cI", "--", ".")
    commit = None
    commit_date = None
    dirty = False
    if commit_line:
        commit, iso = commit_line.split(" ", 1)
        commit_date = datetime.fromisoformat(iso).astimezone(UTC).date()
        dirty = bool(_git(region, "status", "--porcelain", "--", "."))
    if explicit_date is not None:
        return ModelRevision(h.hexdigest(), commit, dirty, explicit_date, "option")
    if commit_date is not None and not dirty:
        return ModelRevision(h.hexdigest(), commit, dirty, commit_date, "commit")
    newest = max((f.stat().st_mtime for f in files), default=0.0)
    return ModelRevision(h.hexdigest(), commit, dirty, datetime.fromtimestamp(newest, UTC).date(), "file times")


def hcops_version() -> str:
    try:
        return version("hcops")
    except PackageNotFoundError:  # a checkout without install
        return "0+unknown"
