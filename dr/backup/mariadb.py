"""MariaDB sources: physical (mariabackup full and incremental, streamed), logical
(mariadb-dump, the portable fallback) and the binlog archive (point in time).

Commands run through a `Shell` (a local shell, or ssh to the database host), so the same code
backs up the lab's replica over ssh and a test server on this machine. Physical backups are
taken from a healthy replica when there is one (`pick_host`), so the primary is not loaded.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from inventories.errors import HcopsError

# The server's data-at-rest key file (file_key_management), stored sealed in each physical
# backup: mariabackup copies the pages encrypted, so a restore anywhere needs this key, and the
# backup's own copy is the one that matches its pages even after the host's key has rotated.
KEYFILE_OBJECT = "encryption.keyfile"

Shell = list[str]  # argv prefix that runs one shell script: ["sh", "-c"] or ssh args
LOCAL: Shell = ["sh", "-c"]


def run(shell: Shell, script: str, timeout: float = 600, stdin: bytes | None = None) -> str:
    proc = subprocess.run([*shell, script], input=stdin, capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise HcopsError(f"`{script[:120]}` failed (exit {proc.returncode}): "
                         f"{proc.stderr.decode(errors='replace').strip()[-600:]}", "see the message above")
    return proc.stdout.decode(errors="replace")


def stream(shell: Shell, script: str, out: IO[bytes], what: str) -> str:
    """Run script, copying its stdout into out; returns stderr; raises with stderr's tail on failure."""
    with subprocess.Popen([*shell, script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        err: list[bytes] = []
        t = threading.Thread(target=lambda: err.append(proc.stderr.read()))  # type: ignore[union-attr]
        t.start()
        try:
            while chunk := proc.stdout.read(1 << 20):
                out.write(chunk)
        except BaseException:
            proc.kill()
            raise
        finally:
            t.join()
        rc = proc.wait()
    text = b"".join(err).decode(errors="replace")
    if rc != 0:
        raise HcopsError(f"{what} failed (exit {rc}): {text.strip()[-800:]}",
                         "check the database host (is the server up? enough space in /var/tmp?)")
    return text


def parse_checkpoints(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in text.splitlines()) if v}


_BINLOG_POS = re.compile(r"filename '(?P<file>[^']*)', position '(?P<pos>\d+)'(?:, GTID of the last change "
                         r"'(?P<gtid>[^']*)')?")


@dataclass
class PhysicalSource:
    """mariabackup --backup --stream=mbstream on the database host, one object `backup.mbstream`."""

    shell: Shell
    source: str
    client_opts: str = "--user=root"
    parent: str | None = None
    base_lsn: int | None = None  # the parent's to_lsn: an incremental when set
    host: str = ""
    tmp: str = "/var/tmp/hcops-mariabackup"  # noqa: S108 (on the DB host, recreated 0700 by each run)
    _facts: dict[str, object] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "incremental" if self.base_lsn is not None else "full"

    @property
    def facts(self) -> dict[str, object]:
        return self._facts

    def _write(self, out: IO[bytes]) -> None:
        d = shlex.quote(self.tmp)
        incr = f" --incremental-lsn={int(self.base_lsn)}" if self.base_lsn is not None else ""
        script = (f"rm -rf {d} && mkdir -p -m 0700 {d}/t {d}/lsn && "
                  f"mariabackup --backup {self.client_opts} --stream=mbstream --target-dir={d}/t "
                  f"--extra-lsndir={d}/lsn --slave-info{incr}")
        stream(self.shell, script, out, f"mariabackup on {self.host or 'the database host'}")
        info = run(self.shell, f"cat {d}/lsn/xtrabackup_checkpoints; echo; cat {d}/lsn/xtrabackup_info; "
                   f"rm -rf {d}")
        cp = parse_checkpoints(info)
        self._facts.update({"host": self.host, "from_lsn": int(cp.get("from_lsn", 0)),
                            "to_lsn": int(cp.get("to_lsn", 0)), "backup_type": cp.get("backup_type", ""),
                            "end_time": cp.get("end_time", "")})
        m = _BINLOG_POS.search(cp.get("binlog_pos", ""))
        if m:
            self._facts.update({"binlog_file": m["file"], "binlog_pos": int(m["pos"]), "gtid": m["gtid"] or ""})
        gtid = run(self.shell, f"mariadb {self.client_opts} -N -B -e 'SELECT @@gtid_current_pos'").strip()
        self._facts.setdefault("gtid", gtid)
        if not self._facts.get("gtid"):
            self._facts["gtid"] = gtid

    def keyfile_path(self) -> str:
        """The key file the server encrypts with, or "" when it does not encrypt at rest."""
        out = run(self.shell, f"mariadb {self.client_opts} -N -B -e "
                  "\"SHOW GLOBAL VARIABLES LIKE 'file_key_management_filename'\"", timeout=60)
        return out.partition("\t")[2].strip()

    def objects(self) -> Iterator[tuple[str, Callable[[IO[bytes]], None]]]:
        yield "backup.mbstream", self._write
        keyfile = self.keyfile_path()
        self._facts["encrypted_at_rest"] = bool(keyfile)
        if keyfile:
            def write_key(out: IO[bytes]) -> None:
                stream(self.shell, f"cat {shlex.quote(keyfile)}", out, f"read the encryption key file {keyfile}")
            yield KEYFILE_OBJECT, write_key


@dataclass
class LogicalSource:
    """mariadb-dump of every database in one consistent transaction, GTID recorded."""

    shell: Shell
    source: str
    client_opts: str = "--user=root"
    parent: str | None = None
    host: str = ""
    databases: list[str] | None = None  # None: every database
    kind: str = "logical"
    _facts: dict[str, object] = field(default_factory=dict)

    @property
    def facts(self) -> dict[str, object]:
        return self._facts

    def _write(self, out: IO[bytes]) -> None:
        gtid = run(self.shell, f"mariadb {self.client_opts} -N -B -e 'SELECT @@gtid_current_pos'").strip()
        which = ("--databases " + " ".join(shlex.quote(d) for d in self.databases)) if self.databases \
            else "--all-databases"
        stream(self.shell, f"mariadb-dump {self.client_opts} --single-transaction {which} --routines "
               "--events --triggers --gtid --master-data=2", out, f"mariadb-dump on {self.host or 'the db host'}")
        self._facts.update({"host": self.host, "gtid_before": gtid})

    def objects(self) -> Iterator[tuple[str, Callable[[IO[bytes]], None]]]:
        yield "dump.sql", self._write


@dataclass
class BinlogSource:
    """Binlog files written by the archiver (mariadb-binlog --raw --stop-never) on the backup host.

    Each run stores the files that are new or have grown since the last binlog backup; the
    archiver's current file is stored as it stands and again when it has grown.
    """

    shell: Shell
    source: str
    archive_dir: str
    already: dict[str, int]  # file -> size already stored
    parent: str | None = None
    kind: str = "binlog"
    _facts: dict[str, object] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = shlex.quote(self.archive_dir)
        out = run(self.shell, f"cd {d} 2>/dev/null && stat -c '%n %s' * 2>/dev/null || true")
        for line in out.splitlines():
            name, _, size = line.rpartition(" ")
            if name and size.isdigit() and int(size) > 0 and self.already.get(name) != int(size):
                self.files[name] = int(size)

    @property
    def facts(self) -> dict[str, object]:
        return self._facts

    def objects(self) -> Iterator[tuple[str, Callable[[IO[bytes]], None]]]:
        for name in sorted(self.files):
            def write(out: IO[bytes], _name: str = name) -> None:
                stream(self.shell, f"cat {shlex.quote(self.archive_dir + '/' + _name)}", out, f"read binlog {_name}")
            yield name, write
        self._facts["binlogs"] = dict(self.files)


def archiver_command(archive_dir: str, host: str, port: int, defaults_file: str, first: str) -> list[str]:
    """The continuous binlog archiver (run as a service on the backup host)."""
    return ["mariadb-binlog", f"--defaults-extra-file={defaults_file}", "--read-from-remote-server", "--raw",
            "--stop-never", f"--host={host}", f"--port={port}", f"--result-file={archive_dir.rstrip('/')}/", first]


def replica_healthy(shell: Shell, client_opts: str = "--user=root", max_lag_s: int = 300) -> tuple[bool, str]:
    """Whether a replica may serve backups: both threads running and not too far behind."""
    try:
        out = run(shell, f"mariadb {client_opts} -e 'SHOW SLAVE STATUS\\G'", timeout=20)
    except (HcopsError, subprocess.TimeoutExpired) as exc:
        return False, f"unreachable ({exc})"
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if v}
    if fields.get("Slave_IO_Running") != "Yes" or fields.get("Slave_SQL_Running") != "Yes":
        return False, "replication threads not running"
    lag = fields.get("Seconds_Behind_Master", "NULL")
    if not lag.isdigit() or int(lag) > max_lag_s:
        return False, f"behind by {lag} s"
    return True, f"healthy, {lag} s behind"


def pick_host(candidates: list[tuple[str, Shell, bool]], client_opts: str = "--user=root") -> tuple[str, Shell, str]:
    """The first healthy replica, else the primary (`(host, shell, why)`); candidates: (host, shell, is_replica)."""
    reasons = []
    for host, shell, is_replica in candidates:
        if not is_replica:
            continue
        ok, why = replica_healthy(shell, client_opts)
        if ok:
            return host, shell, f"replica {host} {why}"
        reasons.append(f"replica {host}: {why}")
    for host, shell, is_replica in candidates:
        if not is_replica:
            return host, shell, "; ".join(reasons + [f"using the primary {host}"])
    raise HcopsError("no database host to back up", "the service has no primary in the model")
