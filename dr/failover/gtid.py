"""MariaDB GTID positions (`domain-server-seq,...`): parse and compare, no server needed.

A position is one GTID per replication domain. Position A covers B when, in every domain of B, A
has a sequence number at least as high: then a server at A has applied everything B has. Two
positions with the same sequence number from different servers in one domain have diverged.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Gtid:
    domain: int
    server: int
    seq: int


def parse(pos: str | None) -> dict[int, Gtid]:
    """`0-1-42,1-5-7` -> {0: Gtid(0, 1, 42), 1: Gtid(1, 5, 7)}; empty or NULL -> {}."""
    out: dict[int, Gtid] = {}
    for part in (pos or "").replace(" ", "").split(","):
        if not part or part.upper() == "NULL":
            continue
        try:
            d, s, q = (int(x) for x in part.split("-"))
        except ValueError:
            raise ValueError(f"not a MariaDB GTID: {part!r} (expected domain-server-seq)") from None
        out[d] = Gtid(d, s, q)
    return out


def covers(a: str | None, b: str | None) -> bool:
    """True when position `a` includes every transaction of position `b`."""
    pa, pb = parse(a), parse(b)
    return all(d in pa and pa[d].seq >= g.seq for d, g in pb.items())


def behind(a: str | None, b: str | None) -> int:
    """How many transactions `a` lacks to reach `b` (sum over domains; 0 when it covers it)."""
    pa, pb = parse(a), parse(b)
    return sum(max(0, g.seq - (pa[d].seq if d in pa else 0)) for d, g in pb.items())


def total(a: str | None) -> int:
    return sum(g.seq for g in parse(a).values())


def diverged(host: str | None, primary: str | None) -> bool:
    """True when `host` holds transactions the new primary never had (its binlogs no longer match).

    Either it is ahead of the primary in some domain, or it has the primary's sequence number in a
    domain but written by another server.
    """
    ph, pp = parse(host), parse(primary)
    for d, g in ph.items():
        other = pp.get(d)
        if other is None:
            return True
        if g.seq > other.seq or (g.seq == other.seq and g.server != other.server):
            return True
    return False
