"""Availability by design: each SLO's service composed from the topology in the model.

A service is the series of its tiers (the service itself, then what it depends on: an nginx
service's pools, a canary's database). A tier is a redundant group of members, each member the
series of its host and the dedicated line(s) between it and the tier that calls it; the group
is up while any member is, less the failover time each failure of the active member costs
(measured by drills where a drill has run, else `defaults`). A tier on the same hosts as an
earlier one adds no hardware of its own (the same failure takes both) and is counted once.

The weakest link is the part whose perfection would save the most downtime; when the design
misses its target, single changes (another route for a line, automated database failover, a
second host for a lone tier) are tried and the first that meets the target is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from dr.availability import algebra, defaults
from dr.availability.drills import DrillRuns
from inventories.dependencies import tiers as service_tiers
from inventories.errors import HcopsError
from inventories.model import Region
from inventories.schema import Link, MySQL, Nginx, Reliability


@dataclass(frozen=True)
class WhatIf:
    """Changes to the model tried by the design search (and parts made perfect for the weakest link)."""

    perfect: frozenset[str] = frozenset()  # part names ("host db1", "line x", "failover appdb")
    extra_uplinks: frozenset[str] = frozenset()
    failover_s: tuple[tuple[str, float], ...] = ()
    extra_member: frozenset[str] = frozenset()


@dataclass
class Part:
    name: str
    availability: float
    note: str = ""


@dataclass
class Tier:
    service: str
    kind: str
    members: list[str]
    availability: float
    failover_s: float | None
    failover_source: str
    shared_with: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "kind": self.kind, "members": self.members,
                "availability": self.availability, "failover_s": self.failover_s,
                "failover_source": self.failover_source, "shared_with": self.shared_with}


@dataclass
class Change:
    what: str
    availability: float
    downtime_min_year: float
    meets: bool


@dataclass
class ServiceDesign:
    slo: str
    service: str
    target: float
    availability: float
    tiers: list[Tier]
    parts: list[Part]
    weakest: str
    weakest_saves_min_year: float
    suggestion: Change | None
    candidates: list[Change] = field(default_factory=list)

    @property
    def downtime_min_year(self) -> float:
        return algebra.downtime_minutes_per_year(self.availability)

    @property
    def allowed_min_year(self) -> float:
        return algebra.MINUTES_PER_YEAR * (100 - self.target) / 100

    @property
    def meets(self) -> bool:
        return self.availability * 100 >= self.target - 1e-12

    def as_dict(self) -> dict[str, Any]:
        return {
            "slo": self.slo, "service": self.service, "target": self.target,
            "availability_pct": round(self.availability * 100, 5),
            "downtime_min_year": round(self.downtime_min_year, 2),
            "allowed_min_year": round(self.allowed_min_year, 2), "meets_target": self.meets,
            "weakest_link": self.weakest, "weakest_saves_min_year": round(self.weakest_saves_min_year, 2),
            "suggestion": _change_dict(self.suggestion) if self.suggestion else None,
            "candidates": [_change_dict(c) for c in self.candidates],
            "tiers": [t.as_dict() for t in self.tiers],
            "parts": [{"name": p.name, "availability_pct": round(p.availability * 100, 5), "note": p.note}
                      for p in self.parts],
        }


def _change_dict(change: Change) -> dict[str, Any]:
    return {"what": change.what, "availability_pct": round(change.availability * 100, 5),
            "downtime_min_year": round(change.downtime_min_year, 2), "meets_target": change.meets}


@dataclass
class DesignResult:
    region: str
    services: list[ServiceDesign]
    assumptions: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "services": [s.as_dict() for s in self.services],
                "assumptions": self.assumptions}


class Composer:
    def __init__(self, region: Region, drills: DrillRuns, what_if: WhatIf) -> None:
        self.region = region
        self.drills = drills
        self.what_if = what_if
        self.parts: dict[str, Part] = {}

    # ---- parts --------------------------------------------------------------------------
    def _part(self, name: str, rel: Reliability, note: str) -> tuple[float, float]:
        """(availability, failures a year) of a part, honouring what-ifs."""
        if name in self.what_if.perfect:
            return 1.0, 0.0
        avail = algebra.steady(rel.mtbf_h, rel.mttr_h)
        self.parts.setdefault(name, Part(name, avail, note))
        return avail, algebra.failures_per_year(rel.mtbf_h, rel.mttr_h)

    def host(self, host: str) -> tuple[float, float]:
        rel = self.region.hosts[host].spec.reliability
        note = "model" if rel else f"default MTBF {defaults.HOST.mtbf_h:g} h, MTTR {defaults.HOST.mttr_h:g} h"
        return self._part(f"host {host}", rel or defaults.HOST, note)

    def line(self, name: str, link: Link) -> tuple[float, float]:
        part = f"line {name}"
        if part in self.what_if.perfect:
            return 1.0, 0.0
        rel = link.reliability or defaults.LINE_ROUTE
        routes = link.uplinks + (1 if name in self.what_if.extra_uplinks else 0)
        route = algebra.steady(rel.mtbf_h, rel.mttr_h)
        avail = algebra.parallel([route] * routes)
        # The line is down when every route is: that state ends at the routes' combined repair rate.
        freq = (1 - avail) * routes * (1 / rel.mttr_h) * algebra.HOURS_PER_YEAR
        note = (f"{routes} route(s) of {route * 100:.3f}% "
                + ("(model)" if link.reliability else f"(default MTBF {rel.mtbf_h:g} h, MTTR {rel.mttr_h:g} h)"))
        if not self.what_if.extra_uplinks:
            self.parts.setdefault(part, Part(part, avail, note))
        return avail, freq

    def links_between(self, site_a: str, site_b: str) -> list[tuple[str, Link]]:
        if site_a == site_b:
            return []
        return [(n, lk) for n, lk in self.region.links.items() if set(lk.between) == {site_a, site_b}]

    # ---- tiers --------------------------------------------------------------------------
    def failover(self, service: str, members: int) -> tuple[float, str]:
        for name, value in self.what_if.failover_s:
            if name == service:
                return value, "what-if"
        svc = self.region.services[service]
        if isinstance(svc, MySQL):
            measured = self.drills.measured_failover_s(service, self.region.service_hosts(service))
            if measured:
                return measured[0], f"measured by drill {measured[1]}"
            return defaults.FAILOVER_DB_S, "default (no drill measured it)"
        if isinstance(svc, Nginx):
            return (defaults.FAILOVER_VIP_S, "default (keepalived VIP)") if svc.vip else (
                defaults.FAILOVER_NO_VIP_S, "default (no VIP)")
        for other in self.region.services.values():
            if isinstance(other, Nginx):
                for pool in other.pools.values():
                    if pool.service == service:
                        return float(pool.fail_timeout_s), "nginx pool fail_timeout_s (model)"
        return defaults.FAILOVER_OTHER_S, "default"

    def tier(self, service: str, client_site: str | None, seen: dict[frozenset[str], str]) -> Tier:
        hosts = self.region.service_hosts(service)
        kind = self.region.services[service].kind
        if not hosts:
            return Tier(service, kind, [], 1.0, None, "no hosts of its own in the model (not counted)")
        key = frozenset(hosts)
        if key in seen:
            return Tier(service, kind, hosts, 1.0, None, "", shared_with=seen[key])
        seen[key] = service
        members: list[float] = []
        active_failures = 0.0
        for index, host in enumerate(hosts):
            avail, failures = self.host(host)
            site = self.region.hosts[host].site_name
            for name, link in self.links_between(client_site, site) if client_site else []:
                line_avail, line_failures = self.line(name, link)
                avail *= line_avail
                failures += line_failures
            members.append(avail)
            if index == 0:
                active_failures = failures
        if service in self.what_if.extra_member:
            members.append(members[-1])
        fail_s, source = self.failover(service, len(members)) if len(members) > 1 else (None, "single member")
        if fail_s is not None and f"failover {service}" in self.what_if.perfect:
            fail_s = 0.0
        if fail_s is not None and len(members) > 1:
            cost = algebra.failover_cost(active_failures, fail_s)
            self.parts.setdefault(f"failover {service}", Part(
                f"failover {service}", 1 - algebra.failover_cost(active_failures, fail_s) if cost else 1.0,
                f"{active_failures:.2f} failovers a year x {fail_s:g} s ({source})"))
        availability = algebra.redundant(members, active_failures, fail_s or 0.0)
        return Tier(service, kind, hosts, availability, fail_s, source)

    def service(self, service: str) -> tuple[float, list[Tier]]:
        seen: dict[frozenset[str], str] = {}
        tiers: list[Tier] = []
        client: str | None = None
        for name in service_tiers(self.region, service):
            tier = self.tier(name, client, seen)
            tiers.append(tier)
            if tier.members:
                client = self.region.hosts[tier.members[0]].site_name
        return algebra.series(t.availability for t in tiers), tiers


def _compose(region: Region, drills: DrillRuns, service: str, what_if: WhatIf) -> tuple[float, list[Tier], list[Part]]:
    composer = Composer(region, drills, what_if)
    avail, tiers = composer.service(service)
    return avail, tiers, list(composer.parts.values())


def design(region: Region, drills: DrillRuns | None = None) -> DesignResult:
    if not region.slos:
        raise HcopsError(f"region {region.name!r} declares no SLOs", "add an `slos:` section to the region")
    runs = drills or DrillRuns()
    out: list[ServiceDesign] = []
    for slo_name, slo in region.slos.items():
        if slo.service not in region.services:
            continue
        avail, tiers, parts = _compose(region, runs, slo.service, WhatIf())
        gains = []
        for part in parts:
            better, _, _ = _compose(region, runs, slo.service, WhatIf(perfect=frozenset({part.name})))
            gains.append((algebra.downtime_minutes_per_year(avail) - algebra.downtime_minutes_per_year(better),
                          part.name))
        gains.sort(key=lambda g: (-round(g[0]), g[1]))  # ties: the failover before its host
        weakest_gain, weakest = gains[0] if gains else (0.0, "(none)")
        candidates = _candidates(region, runs, slo.service, slo.target, tiers, weakest=weakest)
        result = ServiceDesign(slo_name, slo.service, slo.target, avail, tiers, parts, weakest, weakest_gain,
                               None, candidates)
        if not result.meets:
            meeting = [c for c in candidates if c.meets]
            result.suggestion = meeting[0] if meeting else (max(candidates, key=lambda c: c.availability)
                                                            if candidates else None)
        out.append(result)
    assumptions = [
        "parts fail independently; a part's availability is MTBF / (MTBF + MTTR)",
        f"defaults where the model states none: host MTBF {defaults.HOST.mtbf_h:g} h / MTTR "
        f"{defaults.HOST.mttr_h:g} h; line route MTBF {defaults.LINE_ROUTE.mtbf_h:g} h / MTTR "
        f"{defaults.LINE_ROUTE.mttr_h:g} h (see dr/availability/defaults.py)",
        "each failure of a redundant tier's active member costs its failover time",
        f"drill runs read: {len(runs.runs)}" + (f" ({len(runs.skipped)} unreadable journal(s) skipped)"
                                                 if runs.skipped else ""),
    ]
    return DesignResult(region.name, out, assumptions)


def _candidates(region: Region, drills: DrillRuns, service: str, target: float, tiers: list[Tier], *,
                weakest: str) -> list[Change]:
    tries: list[tuple[str, WhatIf]] = []
    _, _, parts = _compose(region, drills, service, WhatIf())
    lines = sorted(p.name.split(" ", 1)[1] for p in parts if p.name.startswith("line "))
    for name in lines:
        link = region.links[name]
        tries.append((f"add a route to line {name} ({link.uplinks} -> {link.uplinks + 1} uplinks, 1+1 protection)",
                      WhatIf(extra_uplinks=frozenset({name}))))
    for tier in tiers:
        if tier.shared_with or not tier.members:
            continue
        svc = region.services[tier.service]
        if isinstance(svc, MySQL) and (tier.failover_s or 0) > defaults.AUTOMATED_DB_FAILOVER_S:
            tries.append((f"automate {tier.service}'s failover (<= {defaults.AUTOMATED_DB_FAILOVER_S:g} s "
                          f"instead of {tier.failover_s:g} s)",
                          WhatIf(failover_s=((tier.service, defaults.AUTOMATED_DB_FAILOVER_S),))))
        if len(tier.members) == 1:
            tries.append((f"give {tier.service} a second host", WhatIf(extra_member=frozenset({tier.service}))))
    # The change aimed at the weakest link first.
    key = weakest.split(" ", 1)[-1]
    tries.sort(key=lambda t: 0 if key in t[0] else 1)
    out = []
    for what, what_if in tries:
        avail, _, _ = _compose(region, drills, service, what_if)
        out.append(Change(what, avail, algebra.downtime_minutes_per_year(avail), avail * 100 >= target - 1e-12))
    return out


__all__ = ["DesignResult", "ServiceDesign", "WhatIf", "design", "replace"]
