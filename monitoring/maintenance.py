"""Maintenance windows for drills and planned work: start one for some hosts, stop it early.

Drills (failover, restore) put the hosts they touch into maintenance so the alerts they cause
do not page anyone and the downtime can be told apart in the SLA. A window hcops opens is named
`hcops/<region>/maint-<UTC time>` and carries the reason; `stop` removes the given hosts from
every such window of the region (deleting a window left without hosts), and never touches a
maintenance someone created by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inventories.errors import HcopsError
from inventories.model import Region
from monitoring.client import ZabbixClient
from monitoring.objects import managed_tags, sla_prefix

MAX_MINUTES = 7 * 24 * 60
MIN_MINUTES = 5
"""Zabbix refuses a maintenance period shorter than 5 minutes."""


@dataclass
class Window:
    maintenanceid: str
    name: str
    hosts: list[str]
    active_since: int
    active_till: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.maintenanceid, "name": self.name, "hosts": self.hosts,
                "from": datetime.fromtimestamp(self.active_since, UTC).isoformat(),
                "until": datetime.fromtimestamp(self.active_till, UTC).isoformat(), "reason": self.reason}


def check_hosts(region: Region, hosts: list[str]) -> None:
    """Host names must come from the model (checked before any connection is made)."""
    if not hosts:
        raise HcopsError("no hosts given", "pass --hosts HOST[,HOST...] (host names from the region model)")
    unknown = [h for h in hosts if h not in region.hosts]
    if unknown:
        raise HcopsError(f"unknown host(s) {', '.join(unknown)} in region {region.name!r}",
                         f"use host names from the model: {', '.join(sorted(region.hosts))}")


def _host_ids(client: ZabbixClient, region: Region, hosts: list[str]) -> dict[str, str]:
    """Zabbix ids of model hosts hcops manages; unknown names fail before any change."""
    check_hosts(region, hosts)
    rows = client.call("host.get", {"output": ["hostid", "host"], "filter": {"host": hosts},
                                    "tags": managed_tags(region.name), "evaltype": 0})
    ids = {r["host"]: r["hostid"] for r in rows}
    missing = [h for h in hosts if h not in ids]
    if missing:
        raise HcopsError(f"host(s) {', '.join(missing)} are not in Zabbix yet",
                         f"run `hcops monitor apply --region {region.name}` first")
    return ids


def start(client: ZabbixClient, region: Region, hosts: list[str], *, reason: str, minutes: int,
          now: datetime | None = None) -> Window:
    if not reason.strip():
        raise HcopsError("a maintenance needs a reason", "pass --reason 'what is being done'")
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise HcopsError(f"--minutes {minutes} is out of range",
                         f"use {MIN_MINUTES} (Zabbix's shortest maintenance) to {MAX_MINUTES} minutes (a week)")
    repeated = sorted({h for h in hosts if hosts.count(h) > 1})
    if repeated:
        raise HcopsError(f"host(s) {', '.join(repeated)} given more than once", "name each host once in --hosts")
    ids = _host_ids(client, region, hosts)
    moment = int((now or datetime.now(UTC)).timestamp())
    expired = [w.maintenanceid for w in active(client, region) if w.active_till <= moment]
    if expired:  # hcops' own windows that ended: removed, so the list shows what is in force
        client.call("maintenance.delete", expired)
    begin = int((now or datetime.now(UTC)).timestamp()) // 60 * 60
    till = begin + minutes * 60
    name = f"{sla_prefix(region.name)}maint-{datetime.fromtimestamp(begin, UTC):%Y%m%dT%H%M%SZ}-{len(hosts)}h"
    existing = client.call("maintenance.get", {"output": ["name"], "filter": {"name": name}})
    if existing:
        name += f"-{begin % 100000}-{len(existing)}"
    answer = client.call("maintenance.create", [{
        "name": name, "maintenance_type": 0, "description": f"{reason} (started by hcops)",
        "active_since": begin, "active_till": till,
        "hosts": [{"hostid": ids[h]} for h in hosts],
        "timeperiods": [{"timeperiod_type": 0, "start_date": begin, "period": minutes * 60}],
    }])
    return Window(answer["maintenanceids"][0], name, list(hosts), begin, till, reason)


def active(client: ZabbixClient, region: Region) -> list[Window]:
    rows = client.call("maintenance.get", {
        "output": ["maintenanceid", "name", "active_since", "active_till", "description"],
        "search": {"name": sla_prefix(region.name) + "maint-"}, "startSearch": True,
        "selectHosts": ["host"],
    })
    return [Window(r["maintenanceid"], r["name"], sorted(h["host"] for h in r["hosts"]), int(r["active_since"]),
                   int(r["active_till"]), r["description"].removesuffix(" (started by hcops)"))
            for r in rows]


def stop(client: ZabbixClient, region: Region, hosts: list[str]) -> list[Window]:
    """End hcops' windows for these hosts; returns the windows that were changed or removed."""
    ids = _host_ids(client, region, hosts)
    touched: list[Window] = []
    to_delete: list[str] = []
    for window in active(client, region):
        keep = [h for h in window.hosts if h not in ids]
        if len(keep) == len(window.hosts):
            continue
        touched.append(window)
        if not keep:
            to_delete.append(window.maintenanceid)
            continue
        kept_ids = client.call("host.get", {"output": ["hostid"], "filter": {"host": keep}})
        client.call("maintenance.update", [{
            "maintenanceid": window.maintenanceid,
            "hosts": [{"hostid": r["hostid"]} for r in kept_ids],
            "timeperiods": [{"timeperiod_type": 0, "start_date": window.active_since,
                             "period": window.active_till - window.active_since}],
        }])
    if to_delete:
        client.call("maintenance.delete", to_delete)
    return touched
