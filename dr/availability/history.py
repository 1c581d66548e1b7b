"""The canary's probe history: the format the prober writes, and reading it back over ssh.

The prober (playbooks/roles/canary, `tasks/prober.yml`) appends one line per probe to
`<history dir>/<slo>/<YYYY-MM-DD>.tsv` (UTC days): `epoch_seconds<TAB>ok(1|0)<TAB>ms<TAB>detail`,
flushed and fsynced, so a crash loses at most the probe in flight. hcops reads the days a
period covers with one ssh command, through the lab's control module or the region's ssh
settings from its outputs. A line that does not parse is counted, never guessed at.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from infra.lab import control
from infra.state import read_outputs
from inventories.errors import HcopsError
from inventories.model import Region
from inventories.probes import prober

HISTORY_DIR = "/var/lib/hcops-prober/history"  # canary role: canary_prober_history_dir


@dataclass(frozen=True)
class Probe:
    t: float
    ok: bool
    ms: float = 0.0
    detail: str = ""


@dataclass
class History:
    """Probes per SLO, sorted by time, with where they came from."""

    source: str
    interval_s: float
    probes: dict[str, list[Probe]] = field(default_factory=dict)
    bad_lines: int = 0


def parse(text: str, source: str, interval_s: float) -> History:
    """Parse `#<slo>/<day>.tsv` headers followed by that file's lines (what `fetch` prints)."""
    out = History(source, interval_s)
    current: list[Probe] | None = None
    for raw in text.splitlines():
        line = raw.rstrip("\n")
        if not line:
            continue
        if line.startswith("#"):
            slo = line[1:].split("/", 1)[0]
            current = out.probes.setdefault(slo, [])
            continue
        parts = line.split("\t")
        try:
            if current is None or len(parts) < 2 or parts[1] not in ("0", "1"):
                raise ValueError(line)
            current.append(Probe(float(parts[0]), parts[1] == "1", float(parts[2]) if len(parts) > 2 and parts[2]
                                 else 0.0, parts[3] if len(parts) > 3 else ""))
        except ValueError:
            out.bad_lines += 1
    for probes in out.probes.values():
        probes.sort(key=lambda p: p.t)
    return out


def read_file(path: Path, interval_s: float) -> History:
    """A history exported to a local file (the same text `fetch` reads)."""
    try:
        return parse(path.read_text(), str(path), interval_s)
    except OSError as exc:
        raise HcopsError(f"cannot read probe history {path}: {exc.strerror}", "pass an existing file") from None


def days(since: datetime, until: datetime) -> list[str]:
    out, day = [], since.astimezone(UTC).date()
    while day <= until.astimezone(UTC).date():
        out.append(day.isoformat())
        day += timedelta(days=1)
    return out


def read_command(slos: list[str], since: datetime, until: datetime, root: str = HISTORY_DIR) -> str:
    files = [f"{slo}/{day}.tsv" for slo in slos for day in days(since, until)]
    return (f"cd {shlex.quote(root)} 2>/dev/null || exit 3; for f in {' '.join(shlex.quote(f) for f in files)}; "
            'do [ -f "$f" ] && echo "#$f" && cat "$f"; done; exit 0')


def _ssh(region: Region, host: str, command: str) -> subprocess.CompletedProcess[str]:
    outputs = read_outputs(region.name)
    if outputs.provider == "lab":
        return control.ssh(region, host, command, timeout=300)
    out = outputs.hosts.get(host)
    if out is None:
        raise HcopsError(f"host {host} is not in the outputs of region {region.name}",
                         f"run `hcops infra up --region {region.name}`")
    args = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    if outputs.ssh_private_key:
        args += ["-i", str(outputs.ssh_private_key)]
    args += [f"{outputs.ssh_user}@{out.ssh_address}", "--", command]
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise HcopsError(f"reading the probe history on {host} took over 300 s", "check the host") from None


def fetch(region: Region, since: datetime, until: datetime) -> History:
    """The probe history of every SLO between two moments, from the host the model names."""
    found = prober(region)
    if found is None:
        raise HcopsError(f"region {region.name!r} names no prober host",
                         "set `prober: <host>` on the canary service and run `hcops deploy`")
    proc = _ssh(region, found.host, read_command(list(region.slos), since, until))
    if proc.returncode == 3:
        raise HcopsError(f"{found.host} keeps no probe history ({HISTORY_DIR} is missing)",
                         f"run `hcops deploy --region {region.name} --limit {found.host}`")
    if proc.returncode != 0:
        raise HcopsError(f"reading the probe history on {found.host} failed (exit {proc.returncode}): "
                         f"{proc.stderr.strip()[-300:]}", f"check ssh to {found.host}: `hcops lab ssh {found.host}`")
    return parse(proc.stdout, f"{found.host}:{HISTORY_DIR}", found.interval_s)
