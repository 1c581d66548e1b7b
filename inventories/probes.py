"""What the canary's prober checks for each SLO, derived from the model (no engine).

Each SLO's service is probed through the path its users take: a public nginx service at its
VIP's health URL (which nginx passes to the canary, healthy only while database writes are
acknowledged), the canary's own mysql service by a TLS write with the canary's account, any
other service by a TCP connect to its hosts. The prober role renders these targets; `hcops
availability report` reads the history they produce.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from inventories.model import Region, allowed_downtime
from inventories.schema import Canary, MySQL, Nginx

ProbeKind = Literal["http", "mysql", "tcp"]


@dataclass(frozen=True)
class ProbeTarget:
    slo: str
    service: str
    kind: ProbeKind
    url: str = ""
    addresses: tuple[str, ...] = ()
    port: int = 0
    database: str = ""
    user: str = ""
    target: float = 0.0
    window: str = "month"
    allowed_min: float = 0.0
    how: str = field(default="", compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {"slo": self.slo, "service": self.service, "kind": self.kind, "url": self.url,
                "addresses": list(self.addresses), "port": self.port, "database": self.database,
                "user": self.user, "target": self.target, "window": self.window, "allowed_min": self.allowed_min,
                "how": self.how}


@dataclass(frozen=True)
class Prober:
    host: str
    canary: str
    interval_s: float


def prober(region: Region) -> Prober | None:
    """The host the model names to keep the probe history (the first canary that names one)."""
    for name, svc in region.services.items():
        if isinstance(svc, Canary) and svc.prober:
            return Prober(svc.prober, name, svc.probe_interval_s)
    return None


def probe_targets(region: Region) -> list[ProbeTarget]:
    found = prober(region)
    canary = region.services[found.canary] if found else None
    out: list[ProbeTarget] = []
    for slo_name, slo in region.slos.items():
        svc = region.services.get(slo.service)
        if svc is None:
            continue
        addresses = tuple(str(region.service_address(slo.service, h)) for h in region.service_hosts(slo.service))
        if isinstance(svc, Nginx):
            lst = sorted(svc.listeners, key=lambda item: (item.protocol != "https", item.port))[0]
            address = str(svc.vip) if svc.vip else addresses[0]
            url = f"{lst.protocol}://{address}:{lst.port}/health"
            out.append(ProbeTarget(slo_name, slo.service, "http", url=url, how=f"GET {url} (200 = up)"))
        elif (isinstance(svc, MySQL) and isinstance(canary, Canary) and canary.database == slo.service
              and "canary" in svc.databases):
            out.append(ProbeTarget(slo_name, slo.service, "mysql", addresses=addresses, port=svc.port,
                                   database="canary", user=svc.databases["canary"].user,
                                   how=f"TLS write to the writable one of {', '.join(addresses)}:{svc.port}"))
        else:
            port = region.service_ports(slo.service)[0]
            out.append(ProbeTarget(slo_name, slo.service, "tcp", addresses=addresses, port=port,
                                   how=f"TCP connect to any of {', '.join(addresses)}:{port}"))
    return [replace(t, target=region.slos[t.slo].target, window=region.slos[t.slo].window,
                    allowed_min=allowed_downtime(region.slos[t.slo].target, region.slos[t.slo].window)) for t in out]
