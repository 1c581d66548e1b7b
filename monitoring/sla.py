"""Are we inside 99.95% this month? SLI and error budget read back from Zabbix's own SLAs.

Zabbix computes uptime and downtime of each SLA's services from their status history
(`sla.getsli`); hcops adds the budget in the units on-call staff count in: the downtime a
target allows over a nominal window (99.95% is 21.9 minutes in a 30.4-day month, 262.8 minutes
in a 365-day year) minus the downtime already spent in the current one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from inventories.errors import HcopsError
from inventories.model import Region, allowed_downtime
from monitoring.client import ZabbixClient
from monitoring.objects import sla_prefix

Period = Literal["month", "quarter", "year"]
SPAN = {"month": 1, "quarter": 3, "year": 12}


def period_start(period: Period, now: datetime) -> datetime:
    first_month = {"month": now.month, "quarter": (now.month - 1) // 3 * 3 + 1, "year": 1}[period]
    return datetime(now.year, first_month, 1, tzinfo=UTC)


@dataclass
class SliRow:
    slo: str
    service: str
    target: float
    period: Period
    period_from: datetime
    period_to: datetime
    uptime_min: float
    downtime_min: float
    sli: float | None
    budget_min: float

    @property
    def budget_left_min(self) -> float:
        return round(self.budget_min - self.downtime_min, 2)

    @property
    def within(self) -> bool:
        return self.budget_left_min >= 0

    def as_dict(self) -> dict[str, Any]:
        return {"slo": self.slo, "service": self.service, "target": self.target, "period": self.period,
                "from": self.period_from.isoformat(), "to": self.period_to.isoformat(),
                "uptime_min": self.uptime_min, "downtime_min": self.downtime_min,
                "sli": self.sli, "budget_min": self.budget_min, "budget_left_min": self.budget_left_min,
                "within_target": self.within}


def report(client: ZabbixClient, region: Region, period: Period, now: datetime | None = None) -> list[SliRow]:
    """One row per SLO of the model, from the SLA `hcops monitor apply` created for it."""
    if not region.slos:
        raise HcopsError(f"region {region.name!r} declares no SLOs", "add an `slos:` section to the region")
    moment = now or datetime.now(UTC)
    slas = client.call("sla.get", {"output": ["slaid", "name"], "search": {"name": sla_prefix(region.name)},
                                   "startSearch": True})
    by_name = {s["name"]: s["slaid"] for s in slas}
    rows: list[SliRow] = []
    for slo_name, slo in region.slos.items():
        slaid = by_name.get(f"{sla_prefix(region.name)}{slo_name}")
        if slaid is None:
            raise HcopsError(f"Zabbix has no SLA for SLO {slo_name!r} of region {region.name!r}",
                             f"run `hcops monitor apply --region {region.name}` first")
        # An SLA reports whole periods of its own: a yearly SLO cannot be cut into months.
        effective: Period = period if SPAN[slo.window] <= SPAN[period] else slo.window
        start = period_start(effective, moment)
        answer = client.call("sla.getsli", {"slaid": slaid, "period_from": int(start.timestamp()),
                                            "period_to": int(moment.timestamp())})
        periods = answer.get("periods") or []
        uptime = downtime = 0
        for per_period in answer.get("sli") or []:
            for cell in per_period:
                uptime += int(cell["uptime"])
                downtime += int(cell["downtime"])
        total = uptime + downtime
        first = datetime.fromtimestamp(periods[0]["period_from"], UTC) if periods else start
        last = datetime.fromtimestamp(periods[-1]["period_to"], UTC) if periods else moment
        rows.append(SliRow(
            slo=slo_name, service=slo.service, target=slo.target, period=effective,
            period_from=first, period_to=min(last, moment),
            uptime_min=round(uptime / 60, 2), downtime_min=round(downtime / 60, 2),
            sli=round(100 * uptime / total, 4) if total else None,
            budget_min=allowed_downtime(slo.target, effective),
        ))
    return rows
