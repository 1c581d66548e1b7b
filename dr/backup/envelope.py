"""The object format: a stream compressed with zstd, then sealed in AES-256-GCM frames.

Layout: `HCB1` + 8-byte nonce prefix, then frames of `<u32 length><ciphertext+tag>`. Frame i
uses nonce prefix||i and authenticates (object name, i, last-frame flag), so a frame that is
altered, reordered, moved to another object or cut off at the end fails to open: truncation
is caught because the last frame is flagged. Everything streams: memory stays at a frame or two,
whatever the backup's size. The sha256 is of the stored (encrypted) bytes, so a store can be
checked without the key.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from inventories.errors import HcopsError

MAGIC = b"HCB1"
FRAME = 1 << 20  # plaintext bytes per frame (compressed)
READ = 1 << 20


class Writer(Protocol):
    def write(self, data: bytes, /) -> int: ...


@dataclass
class Sealed:
    plain_bytes: int = 0
    stored_bytes: int = 0
    sha256: str = ""


class CorruptObject(HcopsError):
    """A stored object does not open: tampered, truncated or sealed with another key."""


def _aad(name: str, index: int, last: bool) -> bytes:
    return f"{name}\0{index}\0{int(last)}".encode()


class SealingWriter:
    """File-like sink: write plaintext, it compresses, encrypts and passes frames to `out`."""

    def __init__(self, out: Writer, data_key: bytes, name: str, level: int = 3,
                 progress: Callable[[int], None] | None = None) -> None:
        self.out, self.name, self.progress = out, name, progress
        self.aead = AESGCM(data_key)
        self.prefix = os.urandom(8)
        self.comp = zstandard.ZstdCompressor(level=level).compressobj()
        self.buf = bytearray()
        self.index = 0
        self.result = Sealed()
        self.hash = hashlib.sha256()
        self._emit(MAGIC + self.prefix)

    def _emit(self, data: bytes) -> None:
        self.out.write(data)
        self.hash.update(data)
        self.result.stored_bytes += len(data)

    def _frame(self, chunk: bytes, last: bool) -> None:
        nonce = self.prefix + struct.pack(">I", self.index)
        ct = self.aead.encrypt(nonce, chunk, _aad(self.name, self.index, last))
        self._emit(struct.pack(">I", len(ct)) + ct)
        self.index += 1

    def write(self, data: bytes) -> int:
        self.result.plain_bytes += len(data)
        self.buf += self.comp.compress(data)
        while len(self.buf) >= FRAME:
            self._frame(bytes(self.buf[:FRAME]), last=False)
            del self.buf[:FRAME]
        if self.progress:
            self.progress(len(data))
        return len(data)

    def close(self) -> Sealed:
        self.buf += self.comp.flush()
        while len(self.buf) > FRAME:
            self._frame(bytes(self.buf[:FRAME]), last=False)
            del self.buf[:FRAME]
        self._frame(bytes(self.buf), last=True)
        self.buf.clear()
        self.result.sha256 = self.hash.hexdigest()
        return self.result


def seal(reader: BinaryIO, out: Writer, data_key: bytes, name: str,
         progress: Callable[[int], None] | None = None) -> Sealed:
    w = SealingWriter(out, data_key, name, progress=progress)
    while chunk := reader.read(READ):
        w.write(chunk)
    return w.close()


def _read_exact(reader: BinaryIO, n: int) -> bytes:
    data = reader.read(n)
    while data is not None and len(data) < n:
        more = reader.read(n - len(data))
        if not more:
            break
        data += more
    return data or b""


def open_frames(reader: BinaryIO, data_key: bytes, name: str) -> Iterator[bytes]:
    """Yield the plaintext of a sealed object; raises CorruptObject naming the object and frame."""
    head = _read_exact(reader, 12)
    if len(head) < 12 or head[:4] != MAGIC:
        raise CorruptObject(f"object {name}: not an hcops backup object (bad header)",
                            "the object was replaced or damaged; restore from another copy")
    prefix = head[4:]
    aead = AESGCM(data_key)
    dec = zstandard.ZstdDecompressor().decompressobj()
    index = 0
    while True:
        lenb = _read_exact(reader, 4)
        if len(lenb) < 4:
            raise CorruptObject(f"object {name}: truncated after frame {index} (no final frame)",
                                "the object is incomplete; restore from another copy (local or offsite)")
        (n,) = struct.unpack(">I", lenb)
        ct = _read_exact(reader, n)
        if len(ct) < n:
            raise CorruptObject(f"object {name}: truncated inside frame {index}",
                                "the object is incomplete; restore from another copy (local or offsite)")
        nonce = prefix + struct.pack(">I", index)
        for last in (False, True):
            try:
                chunk = aead.decrypt(nonce, ct, _aad(name, index, last))
                break
            except InvalidTag:
                continue
        else:
            raise CorruptObject(f"object {name}: frame {index} fails authentication (tampered, or another key)",
                                "restore from another copy; if every copy fails, check the key")
        out = dec.decompress(chunk)
        if out:
            yield out
        index += 1
        if last:
            if _read_exact(reader, 1):
                raise CorruptObject(f"object {name}: data after the final frame",
                                    "the object was altered; restore from another copy")
            return


def unseal(reader: BinaryIO, out: Writer, data_key: bytes, name: str) -> int:
    total = 0
    for chunk in open_frames(reader, data_key, name):
        out.write(chunk)
        total += len(chunk)
    return total


class UnsealingReader:
    """A read()-able view of a sealed object's plaintext (for tarfile and subprocess stdin)."""

    def __init__(self, reader: BinaryIO, data_key: bytes, name: str) -> None:
        self.frames = open_frames(reader, data_key, name)
        self.buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self.buf) < n:
            try:
                self.buf += next(self.frames)
            except StopIteration:
                break
        if n < 0:
            data, self.buf = self.buf, b""
        else:
            data, self.buf = self.buf[:n], self.buf[n:]
        return data


def sha256_file(reader: BinaryIO) -> str:
    h = hashlib.sha256()
    while chunk := reader.read(READ):
        h.update(chunk)
    return h.hexdigest()
