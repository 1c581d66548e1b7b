"""Where backup objects live: a directory (on the backup host, reached locally or over ssh)
and S3 (offsite). Both confirm what they hold by checksums they compute themselves.

A write never leaves a partial object under its final name: the local store writes `NAME.part`
and renames after fsync, removing the part on any failure (a full disk included); S3 writes by
multipart upload, completed only when every part is in.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from inventories.errors import HcopsError


class StoreError(HcopsError):
    """A destination refused or failed an operation."""


class Store(Protocol):
    where: str  # "local" or "offsite"

    def writer(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...
    def open(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]: ...
    def read_bytes(self, key: str) -> bytes: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def sha256(self, key: str) -> str | None: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...


def _disk_full(exc: OSError, where: str) -> StoreError:
    if exc.errno == errno.ENOSPC:
        return StoreError(f"{where}: the disk is full; the partial object was removed",
                          "free space on the backup store (or prune: `hcops backup prune`), then rerun")
    return StoreError(f"{where}: {exc.strerror or exc}", "check the backup store's disk and permissions")


class DirStore:
    """A directory on this machine (the backup host itself, or a mounted volume)."""

    where = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if not str(p).startswith(str(self.root.resolve())):
            raise StoreError(f"object key {key!r} escapes the store", "object keys are relative paths")
        return p

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[IO[bytes]]:
        final = self.path(key)
        part = final.with_name(final.name + ".part")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            with open(part, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            part.replace(final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                part.unlink()
            raise _disk_full(exc, f"local store {self.root}") from None
        except BaseException:
            with contextlib.suppress(OSError):
                part.unlink()
            raise

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        try:
            fh = open(self.path(key), "rb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            raise StoreError(f"local store {self.root} has no object {key}",
                             "restore from the offsite copy (--from offsite)") from None
        with fh:
            yield fh

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    def put_bytes(self, key: str, data: bytes) -> None:
        with self.writer(key) as fh:
            fh.write(data)

    def sha256(self, key: str) -> str | None:
        try:
            with open(self.path(key), "rb") as fh:
                return hashlib.file_digest(fh, "sha256").hexdigest()
        except FileNotFoundError:
            return None

    def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*")
                      if p.is_file() and not p.name.endswith(".part"))

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()
        parent = self.path(key).parent
        with contextlib.suppress(OSError):
            while parent != self.root.resolve():
                parent.rmdir()
                parent = parent.parent

    def local_file(self, key: str) -> Path:
        return self.path(key)


class SshDirStore:
    """A directory on a remote backup host, over ssh (what `local_target` names on real regions).

    Writes stream through `ssh host 'cat > NAME.part'` and are renamed only after the remote
    side confirms; checksums are computed on the host by sha256sum.
    """

    where = "local"

    def __init__(self, ssh: list[str], root: str, host: str) -> None:
        self.ssh, self.root, self.host = ssh, root.rstrip("/"), host

    def _run(self, script: str, stdin: bytes | None = None, timeout: float = 600) -> bytes:
        proc = subprocess.run([*self.ssh, script], input=stdin, capture_output=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()[-400:]
            if "No space left" in err:
                raise StoreError(f"backup store {self.host}:{self.root}: the disk is full; the partial object "
                                 "was removed", "free space on the backup host (or prune), then rerun")
            raise StoreError(f"backup store {self.host}:{self.root}: `{script}` failed: {err}",
                             f"check the host: `hcops lab ssh {self.host}`")
        return proc.stdout

    def _p(self, key: str) -> str:
        if ".." in key.split("/"):
            raise StoreError(f"object key {key!r} escapes the store", "object keys are relative paths")
        return f"{self.root}/{key}"

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[IO[bytes]]:
        final = self._p(key)
        part = final + ".part"
        script = (f"mkdir -p {shlex.quote(os.path.dirname(final))} && cat > {shlex.quote(part)} && "
                  f"sync {shlex.quote(part)} && mv {shlex.quote(part)} {shlex.quote(final)} "
                  f"|| {{ rc=$?; rm -f {shlex.quote(part)}; exit $rc; }}")
        proc = subprocess.Popen([*self.ssh, script], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        assert proc.stdin is not None
        try:
            yield proc.stdin
            proc.stdin.close()
        except BaseException:
            proc.kill()
            proc.wait()
            with contextlib.suppress(StoreError):
                self._run(f"rm -f {shlex.quote(part)}")
            raise
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.wait() != 0:
            with contextlib.suppress(StoreError):
                self._run(f"rm -f {shlex.quote(part)}")
            if "No space left" in err:
                raise StoreError(f"backup store {self.host}:{self.root}: the disk is full; the partial object "
                                 "was removed", "free space on the backup host (or prune), then rerun")
            raise StoreError(f"backup store {self.host}:{self.root}: writing {key} failed: {err.strip()[-300:]}",
                             f"check the host: `hcops lab ssh {self.host}`")

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        proc = subprocess.Popen([*self.ssh, f"cat {shlex.quote(self._p(key))}"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        try:
            yield proc.stdout  # type: ignore[misc]
        finally:
            proc.stdout.close()
            proc.kill()
            proc.wait()

    def read_bytes(self, key: str) -> bytes:
        return self._run(f"cat {shlex.quote(self._p(key))}")

    def put_bytes(self, key: str, data: bytes) -> None:
        with self.writer(key) as fh:
            fh.write(data)

    def sha256(self, key: str) -> str | None:
        out = self._run(f"sha256sum {shlex.quote(self._p(key))} 2>/dev/null || true").decode().split()
        return out[0] if out else None

    def list(self, prefix: str) -> list[str]:
        base = self._p(prefix)
        out = self._run(f"[ -d {shlex.quote(base)} ] && find {shlex.quote(base)} -type f ! -name '*.part' || true")
        n = len(self.root) + 1
        return sorted(line[n:] for line in out.decode().splitlines() if line)

    def delete(self, key: str) -> None:
        self._run(f"rm -f {shlex.quote(self._p(key))}")


def copy_stream(src: BinaryIO, dst: IO[bytes]) -> None:
    shutil.copyfileobj(src, dst, 1 << 20)


def part_reader(store: DirStore | SshDirStore, key: str) -> tuple[int, Callable[[int, int], bytes]]:
    """(size, read(offset, n)) over a stored object, for the offsite upload of the local copy."""
    if isinstance(store, DirStore):
        path = store.path(key)
        size = path.stat().st_size

        def read_local(off: int, n: int) -> bytes:
            with open(path, "rb") as fh:
                return os.pread(fh.fileno(), n, off)
        return size, read_local
    p = shlex.quote(store._p(key))
    size = int(store._run(f"stat -c %s {p}").decode().strip())

    def read_remote(off: int, n: int) -> bytes:
        return store._run(f"dd if={p} bs=1M iflag=skip_bytes,count_bytes skip={off} count={n} status=none")
    return size, read_remote


def remote_part_sender(store: SshDirStore, key: str, rate_bytes_s: float | None = None
                       ) -> Callable[[int, int, int, str, str | None], tuple[str, bool]]:
    """Parts of a backup-host object sent by the backup host itself (dd | curl to a presigned URL),
    so offsite traffic leaves from where the backup is and crosses the line like any client's.

    One ssh round trip per part: the host checksums the part, skips it if the server already
    holds it, else sends it with its Content-MD5. The URL (a signed capability) arrives on stdin
    and reaches curl through a here-document (-K), so it is on no command line on either side."""
    p = shlex.quote(store._p(key))
    limit = f" --limit-rate {int(rate_bytes_s)}" if rate_bytes_s else ""

    def send(part: int, off: int, n: int, url: str, held: str | None) -> tuple[str, bool]:
        dd = f"dd if={p} bs=1M iflag=skip_bytes,count_bytes skip={off} count={n} status=none"
        if not url:  # only the checksum (is what the server holds this object?)
            return store._run(f"{dd} | md5sum").decode().split()[0], False
        if '"' in url or "\n" in url:
            raise StoreError("presigned URL has unexpected characters", "report this as a bug")
        held_hex = held if held and all(c in "0123456789abcdef" for c in held) else "-"
        # Content-MD5: the server checks the part (and buckets with object lock require it)
        script = (f"read -r url; md5=$({dd} | md5sum | cut -c1-32); [ ${{#md5}} -eq 32 ] || exit 1; "
                  f'echo "md5 $md5"; [ "$md5" = {held_hex} ] && exit 0; '
                  f'b64=$(printf %s "$md5" | tr a-f A-F | basenc --base16 -d | base64); '
                  f"{dd} | curl -sS -f -X PUT -T - -D - -o /dev/null --connect-timeout 5 --max-time 600{limit} "
                  f'-H "Content-MD5: $b64" -K /dev/fd/3 3<<EOF\nurl = "$url"\nEOF\n')
        out = store._run(script, stdin=url.encode() + b"\n").decode(errors="replace")
        lines = out.splitlines()
        md5 = lines[0].removeprefix("md5 ") if lines and lines[0].startswith("md5 ") else ""
        if len(md5) != 32:
            raise StoreError(f"part {part} of {key}: the backup host gave no checksum ({out.strip()[:200]!r})",
                             f"check the host: `hcops lab ssh {store.host}`")
        if md5 == held:
            return md5, False
        etag = next((ln.split(":", 1)[1].strip().strip('"') for ln in lines[1:]
                     if ln.lower().startswith("etag:")), "")
        if etag != md5:
            raise StoreError(f"part {part} of {key}: the server's ETag {etag or '(none)'} is not the part's MD5 {md5}",
                             "rerun `hcops backup run`; the part is sent again")
        return md5, True
    return send
