"""The region's backup key and the per-backup data keys it wraps (envelope encryption).

The region key (32 random bytes) lives in the controller's state dir, never beside the data:
not on backup1, not in the bucket. Each backup gets a fresh data key; only its wrapped form
(AES-256-GCM under the region key, bound to the backup id) goes into the manifest. Without
the region key nothing can be restored, so `hcops backup key export` writes it out for
offline custody in a small text format that carries its fingerprint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from infra.state import region_state_dir
from inventories.errors import HcopsError

KEY_BYTES = 32
EXPORT_HEADER = "hcops-backup-key v1"


@dataclass(frozen=True)
class RegionKey:
    region: str
    secret: bytes

    @property
    def fingerprint(self) -> str:
        """Names the key without revealing it (a keyed hash, not the key's own hash)."""
        return hmac.new(self.secret, b"hcops-backup-fingerprint", hashlib.sha256).hexdigest()[:16]

    def subkey(self, purpose: str) -> bytes:
        return hmac.new(self.secret, f"hcops-backup:{purpose}".encode(), hashlib.sha256).digest()

    def wrap(self, data_key: bytes, backup_id: str) -> str:
        nonce = os.urandom(12)
        ct = AESGCM(self.subkey("wrap")).encrypt(nonce, data_key, f"dk:{backup_id}".encode())
        return base64.b64encode(nonce + ct).decode()

    def unwrap(self, wrapped: str, backup_id: str) -> bytes:
        raw = base64.b64decode(wrapped)
        try:
            return AESGCM(self.subkey("wrap")).decrypt(raw[:12], raw[12:], f"dk:{backup_id}".encode())
        except InvalidTag:
            raise HcopsError(f"the region backup key (fingerprint {self.fingerprint}) does not open backup "
                             f"{backup_id}'s data key: wrong key",
                             "use the key exported for this region (`hcops backup key export` on the "
                             "controller that made the backup) with --key-file") from None

    def export_text(self) -> str:
        return (f"{EXPORT_HEADER}\nregion: {self.region}\nfingerprint: {self.fingerprint}\n"
                f"key: {base64.b64encode(self.secret).decode()}\n")


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def key_path(region: str) -> Path:
    return region_state_dir(region) / "backup" / "region.key"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    tmp.replace(path)


def parse_export(text: str, source: str) -> RegionKey:
    fields: dict[str, str] = {}
    lines = text.strip().splitlines()
    if not lines or lines[0].strip() != EXPORT_HEADER:
        raise HcopsError(f"{source} is not an exported hcops backup key (first line must be {EXPORT_HEADER!r})",
                         "pass the file written by `hcops backup key export`")
    for line in lines[1:]:
        k, _, v = line.partition(":")
        fields[k.strip()] = v.strip()
    try:
        secret = base64.b64decode(fields["key"], validate=True)
        key = RegionKey(fields["region"], secret)
    except (KeyError, ValueError):
        raise HcopsError(f"{source}: the key file is damaged (region/key lines missing or not base64)",
                         "use an intact copy of the exported key") from None
    if len(secret) != KEY_BYTES or key.fingerprint != fields.get("fingerprint"):
        raise HcopsError(f"{source}: the key does not match its fingerprint (damaged copy)",
                         "use an intact copy of the exported key")
    return key


def load_key(region: str, key_file: Path | None = None, create: bool = False) -> RegionKey:
    """The region key: from an exported file when given, else the controller's own (created on first backup)."""
    if key_file is not None:
        try:
            return parse_export(key_file.read_text(), str(key_file))
        except OSError as exc:
            raise HcopsError(f"cannot read key file {key_file}: {exc.strerror}", "check the path") from None
    path = key_path(region)
    if path.exists():
        return parse_export(path.read_text(), str(path))
    if not create:
        raise HcopsError(f"region {region} has no backup key on this controller ({path})",
                         "restore with --key-file <exported key>, or run a backup first to create one")
    key = RegionKey(region, os.urandom(KEY_BYTES))
    _write_private(path, key.export_text())
    return key


def export_key(key: RegionKey, dest: Path) -> Path:
    if dest.exists():
        raise HcopsError(f"{dest} already exists", "choose a new file name; an export never overwrites")
    _write_private(dest, key.export_text())
    return dest
