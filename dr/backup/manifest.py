"""A backup's manifest, as pgBackRest keeps one: what the backup holds and how to check it.

Objects (name, stored size, sha256 of the stored bytes), the chain it belongs to (full or
incremental of a parent), source facts (LSNs, binlog position, GTID, time), and the wrapped
data key. It is signed with an HMAC under a subkey of the region key, so a manifest edited to
match a tampered object is caught, and it is stored beside the objects at every destination:
with the key and the bucket alone the catalog can be rebuilt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from dr.backup.keys import RegionKey
from inventories.errors import HcopsError

if TYPE_CHECKING:
    from dr.backup.stores import Store

FORMAT = 1


@dataclass(frozen=True)
class ObjectEntry:
    name: str
    size: int
    sha256: str
    plain_size: int = 0


@dataclass
class Manifest:
    backup_id: str
    region: str
    policy: str
    kind: str  # full | incremental | logical | binlog | files | rman
    source: str  # what was backed up: service name or tree
    started_at: str  # ISO 8601 UTC
    finished_at: str = ""
    parent: str | None = None  # the backup this one is an increment of
    wrapped_key: str = ""
    key_fingerprint: str = ""
    objects: list[ObjectEntry] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT
    signature: str = ""

    def body(self) -> bytes:
        data = asdict(self)
        data.pop("signature")
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    def sign(self, key: RegionKey) -> None:
        self.signature = hmac.new(key.subkey("manifest"), self.body(), hashlib.sha256).hexdigest()

    def check_signature(self, key: RegionKey) -> None:
        want = hmac.new(key.subkey("manifest"), self.body(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, self.signature):
            raise HcopsError(f"manifest of backup {self.backup_id} fails its signature check "
                             "(altered, or signed with another region key)",
                             "restore from another copy of the backup, or pass the right --key-file")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> Manifest:
        try:
            data = json.loads(text)
            data["objects"] = [ObjectEntry(**o) for o in data.get("objects", [])]
            return cls(**data)
        except (ValueError, TypeError, KeyError) as exc:
            raise HcopsError(f"{where}: not a valid backup manifest ({exc})",
                             "the manifest is damaged; use another copy (local or offsite)") from None

    def object(self, name: str) -> ObjectEntry:
        for o in self.objects:
            if o.name == name:
                return o
        raise HcopsError(f"backup {self.backup_id} has no object {name}", "see `hcops backup show`")

    @property
    def stored_bytes(self) -> int:
        return sum(o.size for o in self.objects)


def manifest_key(policy: str, backup_id: str) -> str:
    return f"{policy}/{backup_id}/manifest.json"


def stored_manifests(store: Store, policy: str) -> set[str]:
    """The ids of the backups whose manifest a store holds, from one listing (not one call per backup)."""
    return {k.split("/")[1] for k in store.list(f"{policy}/")
            if k.endswith("/manifest.json") and k.count("/") == 2}


def object_key(policy: str, backup_id: str, name: str) -> str:
    return f"{policy}/{backup_id}/{name}"
