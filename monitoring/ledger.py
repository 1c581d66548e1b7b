"""Which Zabbix objects hcops created: an owned-id ledger, not a name prefix or a tag.

A shared Zabbix holds the work of people as well as hcops'. Tags and name prefixes do not say
who made an object: a UI clone of a managed host keeps its tags, and anyone may name a group
`hcops/<region>/...`. So hcops records the id of every object it creates (and of every object an
operator explicitly hands over with `--adopt`) in `<state>/<region>/zabbix-owned.json`, and
counts as its own, to change or prune, only the ids listed there. The file is written
atomically (temp file, fsync, rename) with mode 0600 after every batch that creates or deletes,
so an interrupted apply leaves a ledger that matches what Zabbix holds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from infra.state import region_state_dir
from inventories.errors import HcopsError

LEDGER_FILE = "zabbix-owned.json"


class Ledger:
    """kind -> {zabbix id: hcops key} for one region (a region has one Zabbix)."""

    def __init__(self, region: str) -> None:
        self.path: Path = region_state_dir(region) / LEDGER_FILE
        self.ids: dict[str, dict[str, str]] = {}
        if self.path.exists():
            try:
                ids = json.loads(self.path.read_text())["owned"]
                if not isinstance(ids, dict):
                    raise TypeError("`owned` is not a mapping")
            except (ValueError, KeyError, AttributeError, TypeError) as exc:
                raise HcopsError(f"{self.path} is not a valid ownership ledger ({exc})",
                                 "restore it from a backup, or move it aside and rerun with --adopt "
                                 "to take over the objects that carry hcops' marks") from None
            self.ids = {kind: {str(k): str(v) for k, v in rows.items()} for kind, rows in ids.items()}

    def owns(self, kind: str, zid: str | None) -> bool:
        return zid is not None and zid in self.ids.get(kind, {})

    def names(self, kind: str) -> set[str]:
        return set(self.ids.get(kind, {}).values())

    def has_kind(self, kind: str) -> bool:
        return bool(self.ids.get(kind))

    def add(self, kind: str, zid: str, key: str) -> None:
        self.ids.setdefault(kind, {})[str(zid)] = key

    def remove(self, kind: str, zid: str) -> None:
        self.ids.get(kind, {}).pop(str(zid), None)

    def count(self) -> int:
        return sum(len(v) for v in self.ids.values())

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {"owned": {k: v for k, v in self.ids.items() if v}}
        write_private(self.path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically with mode 0600 (never a half-written or readable file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
