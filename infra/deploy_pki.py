"""Key material deploy generates per region on the controller: a region CA, host certificates
signed by it, and WireGuard key pairs.

Why on the controller: the replicas must trust the primary's certificate, nginx and the canary
must trust MariaDB's, and the two ends of a tunnel must know each other's public key. Generating
everything in one place (the region's state dir, mode 0600, never in the repo) gives each host
what it needs without hosts exchanging keys, and a rerun finds the same material, so a second
deploy changes nothing. A file lock serialises Ansible's forks when they ask at the same time.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from infra.state import SecretKind, SecretStore, region_state_dir

CA_DAYS = 3650
CERT_DAYS = 825  # the most a public CA may issue; renewed by the next deploy 30 days before
RENEW_BEFORE = dt.timedelta(days=30)


# what a --check run is handed instead of a key or certificate it would create: the task that
# writes it reports a change, and the controller keeps no half-made PKI
NOT_ISSUED = "(not issued in check mode)"


@dataclass(frozen=True)
class IssuedCert:
    """PEM texts a host needs: its certificate and key, and the CA that signed it."""

    cert: str
    key: str
    ca: str


@contextmanager
def _locked(directory: Path, create: bool = True) -> Iterator[None]:
    if not create and not directory.exists():  # a --check run on a fresh controller: nothing to guard
        yield
        return
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class RegionPKI:
    """The region's CA and the certificates it issued, kept in `<state>/<region>/pki`."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.dir = region_state_dir(region) / "pki"

    def _ca(self, create: bool = True) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
        key_path, crt_path = self.dir / "ca.key", self.dir / "ca.crt"
        if key_path.exists() and crt_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return key, x509.load_pem_x509_certificate(crt_path.read_bytes())
        if not create:
            return None
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hcops"),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"hcops {self.region} region CA")])
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(minutes=5))
            .not_valid_after(_now() + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(key_path, _key_pem(key))
        crt_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return key, cert

    def ca_pem(self, create: bool = True) -> str:
        """The region CA certificate (created on first use), for hosts that only verify.
        With create=False (a --check run) a missing CA is NOT_ISSUED, and nothing is written."""
        with _locked(self.dir, create):
            ca = self._ca(create)
            return ca[1].public_bytes(serialization.Encoding.PEM).decode() if ca else NOT_ISSUED

    def issue(self, name: str, sans: list[str], create: bool = True) -> IssuedCert:
        """Certificate `name` for these DNS names / IP addresses; reissued only when the SANs
        change or expiry is near, so reruns hand out the same bytes. With create=False (a
        --check run) a certificate that would be issued is NOT_ISSUED, and nothing is written."""
        if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"bad certificate name {name!r}")
        wanted = sorted(set(sans))
        with _locked(self.dir, create):
            ca = self._ca(create)
            if ca is None:
                return IssuedCert(NOT_ISSUED, NOT_ISSUED, NOT_ISSUED)
            ca_key, ca_cert = ca
            ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM).decode()
            key_path, crt_path = self.dir / f"{name}.key", self.dir / f"{name}.crt"
            if key_path.exists() and crt_path.exists():
                cert = x509.load_pem_x509_certificate(crt_path.read_bytes())
                if (_sans_of(cert) == wanted and cert.not_valid_after_utc - RENEW_BEFORE > _now()
                        and cert.issuer == ca_cert.subject):
                    return IssuedCert(crt_path.read_text(), key_path.read_text(), ca_pem)
            if not create:
                return IssuedCert(NOT_ISSUED, NOT_ISSUED, ca_pem)
            key = ec.generate_private_key(ec.SECP256R1())
            alt: list[x509.GeneralName] = []
            for san in wanted:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(san)))
                except ValueError:
                    alt.append(x509.DNSName(san))
            cert = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hcops"),
                                         x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(_now() - dt.timedelta(minutes=5))
                .not_valid_after(_now() + dt.timedelta(days=CERT_DAYS))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName(alt), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256())
            )
            _write_private(key_path, _key_pem(key))
            crt_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            return IssuedCert(crt_path.read_text(), key_path.read_text(), ca_pem)


def _sans_of(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out = [str(v) for v in ext.get_values_for_type(x509.IPAddress)]
    out += ext.get_values_for_type(x509.DNSName)
    return sorted(out)


@dataclass(frozen=True)
class WireGuardKeys:
    private: str
    public: str


def wireguard_keys(region: str, host: str, create: bool = True) -> WireGuardKeys:
    """A host's WireGuard key pair (base64, as `wg` writes them); the private half is a secret
    `wireguard-<host>` in the region's secret store. With create=False (a --check run) a missing
    pair is NOT_ISSUED, and nothing is written."""
    store = SecretStore(region)
    name = f"wireguard-{host}"
    with _locked(store.dir, create):
        if store.exists(name):
            private = base64.b64decode(store.get(name))
            key = x25519.X25519PrivateKey.from_private_bytes(private)
        elif not create:
            return WireGuardKeys(NOT_ISSUED, NOT_ISSUED)
        else:
            key = x25519.X25519PrivateKey.generate()
            raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
            store.set(name, base64.b64encode(raw).decode())
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        private_b64 = base64.b64encode(
            key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                              serialization.NoEncryption())).decode()
        return WireGuardKeys(private_b64, base64.b64encode(public).decode())


def secret(region: str, name: str, kind: str = "password", encoding: str = "raw") -> str:
    """A generated secret, locked against concurrent first use by several forks.

    `encoding="base64"` turns a hex psk into the base64 form WireGuard wants for preshared keys.
    """
    store = SecretStore(region)
    if kind not in ("password", "psk", "token"):
        raise ValueError(f"unknown secret kind {kind!r}: use password, psk or token")
    with _locked(store.dir):
        value = store.get(name, cast(SecretKind, kind))
    if encoding == "base64":
        return base64.b64encode(bytes.fromhex(value)).decode()
    if encoding != "raw":
        raise ValueError(f"unknown encoding {encoding!r}: use raw or base64")
    return value


def store_secret(region: str, name: str, value: str) -> None:
    store = SecretStore(region)
    with _locked(store.dir):
        store.set(name, value)


def read_secret(region: str, name: str) -> str | None:
    """A stored secret, or None when it was never stored (no generation)."""
    store = SecretStore(region)
    if not store.exists(name):
        return None
    return store.get(name)
