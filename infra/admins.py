"""Credentials of the region's named administrators that the controller holds.

Each admin in the model (`admins:`) logs in with their own SSH key and a TOTP code (RFC 6238,
30 s, 6 digits) checked by pam_oath on the host. The TOTP seed is generated once per admin and
region in the secret store (0600, never in the repo) and enrolled in the admin's authenticator
from there (`totp_uri`). A lab region has no real people: when an admin of a lab region lists
no key, the controller makes one in the region's state dir, so tests can log in as that admin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from infra.deploy_pki import _locked as locked
from infra.deploy_pki import secret
from infra.state import SecretStore, region_state_dir

TOTP_STEP = 30
TOTP_DIGITS = 6


@dataclass(frozen=True)
class AdminCredentials:
    keys: list[str]
    totp_hex: str  # the seed pam_oath reads (hex); empty when not created (check mode)


def admin_key_path(region: str, admin: str) -> Path:
    return region_state_dir(region) / "ssh" / "admins" / admin


def totp_secret_name(admin: str) -> str:
    return f"totp-{admin}"


def credentials(region: str, admin: str, model_keys: list[str], *, lab: bool,
                create: bool = True) -> AdminCredentials:
    """The admin's public keys and TOTP seed, generating the lab key and the seed on first use."""
    keys = [k.strip() for k in model_keys]
    if not keys and lab:
        key = admin_key_path(region, admin)
        if not key.exists() and create:
            with locked(key.parent):  # Ansible's forks ask at once
                if not key.exists():
                    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{admin}@{region}-lab",
                                    "-f", str(key)], check=True, capture_output=True)
        if key.exists():
            keys = [Path(f"{key}.pub").read_text().strip()]
    name = totp_secret_name(admin)
    if create:
        seed = secret(region, name, "psk", "raw")
    else:
        seed = SecretStore(region).get(name, "psk") if SecretStore(region).exists(name) else ""
    return AdminCredentials(keys, seed[:40])  # 20 bytes, the RFC 4226 recommended seed size


def totp(seed_hex: str, at: float | None = None) -> str:
    """The current TOTP code for a seed (what the admin's authenticator shows)."""
    counter = int((time.time() if at is None else at) // TOTP_STEP)
    digest = hmac.new(bytes.fromhex(seed_hex), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 10**TOTP_DIGITS
    return f"{code:0{TOTP_DIGITS}d}"


def totp_uri(region: str, admin: str, seed_hex: str) -> str:
    """otpauth:// URI to enrol the seed in an authenticator app (shown to the admin only)."""
    secret = base64.b32encode(bytes.fromhex(seed_hex)).decode().rstrip("=")
    return (f"otpauth://totp/{quote(f'hcops {region}')}:{quote(admin)}?secret={secret}"
            f"&issuer={quote('hcops ' + region)}&digits={TOTP_DIGITS}&period={TOTP_STEP}")
