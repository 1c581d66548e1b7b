"""What Zabbix holds for a region, read in a fixed number of bulk requests.

One `get` per kind, whatever the region's size (hosts come with their interfaces, groups,
templates, tags and macros in the same request), so an unchanged 10,000-host region re-plans
in a handful of calls. Only objects hcops owns are read as "actual": hosts, web scenarios and
services tagged `managed-by: hcops` and `region: <region>`, host groups under
`hcops/<region>`, SLAs named `hcops/<region>/...`. Everything else is invisible to the
diff and therefore never pruned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inventories.errors import HcopsError
from monitoring import burnrate
from monitoring.client import ZabbixClient
from monitoring.objects import (
    GROUP_ROOT,
    KEY_TAG,
    Obj,
    State,
    managed_tags,
    owns_group,
    sla_prefix,
    tags,
)


@dataclass
class Lookups:
    """Ids of things hcops refers to but does not own, read with the actual state."""

    templates: dict[str, str] = field(default_factory=dict)
    """template name -> templateid"""
    foreign_hosts: dict[str, str] = field(default_factory=dict)
    """desired host names that exist in Zabbix without hcops' tags for this region -> hostid"""


def _tag_pairs(items: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    return tags(*((t["tag"], t.get("value", "")) for t in items))


HOST_QUERY: dict[str, Any] = {
    "output": ["hostid", "host", "name", "status", "description", "tls_connect", "tls_accept"],
    "selectInterfaces": ["interfaceid", "type", "main", "ip", "port"],
    "selectGroups": ["name"],
    "selectParentTemplates": ["host"],
    "selectTags": ["tag", "value"],
    "selectMacros": ["hostmacroid", "macro", "value"],
}
"""What hcops reads of a host: everything it compares, in one request for all hosts."""


def host_from_row(row: dict[str, Any]) -> Obj:
    """A `host.get` row (with HOST_QUERY's selects) in the form the diff compares."""
    agent = [i for i in row["interfaces"] if i["type"] == "1"]
    main = next((i for i in agent if i["main"] == "1"), agent[0] if agent else None)
    return Obj("host", row["host"], {
        "name": row["name"],
        "status": row["status"],
        "description": row["description"],
        "groups": tuple(sorted(g["name"] for g in row["groups"])),
        "templates": tuple(sorted(t["host"] for t in row["parentTemplates"])),
        "tags": _tag_pairs(row["tags"]),
        "macros": tuple(sorted((m["macro"], m.get("value", "")) for m in row["macros"])),
        "interface.ip": main["ip"] if main else "",
        "interface.port": main["port"] if main else "",
        "tls_connect": row["tls_connect"],
        "tls_accept": row["tls_accept"],
    }, id=row["hostid"], extra={
        "interfaceid": main["interfaceid"] if main else None,
        "template_names": {t["host"]: t["templateid"] for t in row["parentTemplates"]},
    })


def _hosts(client: ZabbixClient, region: str, state: State) -> dict[str, str]:
    rows = client.call("host.get", {**HOST_QUERY, "tags": managed_tags(region), "evaltype": 0})
    ids: dict[str, str] = {}
    for row in rows:
        ids[row["hostid"]] = row["host"]
        state.add(host_from_row(row))
    return ids


def _httptests(client: ZabbixClient, region: str, state: State, host_names: dict[str, str]) -> None:
    rows = client.call("httptest.get", {
        "output": ["httptestid", "hostid", "name", "delay", "retries", "verify_peer"],
        "tags": managed_tags(region), "evaltype": 0,
        "selectSteps": ["httpstepid", "url", "status_codes", "follow_redirects"],
        "selectTags": ["tag", "value"],
    })
    for row in rows:
        host = host_names.get(row["hostid"], f"hostid:{row['hostid']}")
        step = row["steps"][0] if row["steps"] else {}
        state.add(Obj("httptest", f"{host}/{row['name']}", {
            "host": host,
            "name": row["name"],
            "url": step.get("url", ""),
            "status_codes": step.get("status_codes", ""),
            "delay": row["delay"],
            "retries": row["retries"],
            "verify_peer": row["verify_peer"],
            "follow_redirects": step.get("follow_redirects", ""),
            "tags": _tag_pairs(row["tags"]),
        }, id=row["httptestid"], extra={"stepids": [s["httpstepid"] for s in row["steps"]]}))


def _services(client: ZabbixClient, region: str, state: State) -> None:
    rows = client.call("service.get", {
        "output": ["serviceid", "name", "algorithm", "sortorder"],
        "tags": managed_tags(region), "evaltype": 0,
        "selectTags": ["tag", "value"],
        "selectProblemTags": ["tag", "operator", "value"],
        "selectParents": ["serviceid"],
    })
    keys: dict[str, str] = {}
    for row in rows:
        key = next((t["value"] for t in row["tags"] if t["tag"] == KEY_TAG), f"serviceid:{row['serviceid']}")
        keys[row["serviceid"]] = key
    for row in rows:
        parents = sorted(keys.get(p["serviceid"], f"serviceid:{p['serviceid']}") for p in row["parents"])
        state.add(Obj("service", keys[row["serviceid"]], {
            "name": row["name"],
            "algorithm": row["algorithm"],
            "sortorder": row["sortorder"],
            "tags": _tag_pairs(row["tags"]),
            "problem_tags": tuple(sorted((p["tag"], p["operator"], p["value"]) for p in row["problem_tags"])),
            "parent": ",".join(parents),
        }, id=row["serviceid"]))


def _slas(client: ZabbixClient, region: str, state: State) -> None:
    rows = client.call("sla.get", {
        "output": ["slaid", "name", "slo", "period", "timezone", "status", "description"],
        "search": {"name": sla_prefix(region)}, "startSearch": True,
        "selectServiceTags": ["tag", "operator", "value"],
    })
    for row in rows:
        if not row["name"].startswith(sla_prefix(region)):
            continue
        state.add(Obj("sla", row["name"], {
            "name": row["name"],
            "slo": f"{float(row['slo']):.4f}",
            "period": row["period"],
            "timezone": row["timezone"],
            "status": row["status"],
            "service_tags": tuple(sorted((t["tag"], t["operator"], t["value"]) for t in row["service_tags"])),
            "description": row["description"],
        }, id=row["slaid"]))


def actual_state(client: ZabbixClient, region: str, desired: State,
                 templates: list[str]) -> tuple[State, Lookups]:
    """Read what hcops owns in Zabbix for `region`, plus the ids it refers to."""
    state = State()
    lookups = Lookups()
    groups = client.call("hostgroup.get", {"output": ["groupid", "name"],
                                           "search": {"name": f"{GROUP_ROOT}/"}, "startSearch": True})
    for row in groups:
        if owns_group(region, row["name"]):
            state.add(Obj("hostgroup", row["name"], {}, id=row["groupid"]))
    if templates:
        rows = client.call("template.get", {"output": ["templateid", "host"], "filter": {"host": templates}})
        lookups.templates = {r["host"]: r["templateid"] for r in rows}
        missing = sorted(set(templates) - set(lookups.templates))
        if missing:
            raise HcopsError(f"Zabbix lacks the template(s) {', '.join(repr(m) for m in missing)}",
                             "import them (they ship with Zabbix 6.0: Data collection > Templates > Import)")
    host_names = _hosts(client, region, state)
    unknown = sorted(set(desired.objects["host"]) - set(state.objects["host"]))
    if unknown:
        rows = client.call("host.get", {"output": ["hostid", "host"], "filter": {"host": unknown}})
        lookups.foreign_hosts = {r["host"]: r["hostid"] for r in rows}
    _httptests(client, region, state, host_names)
    _services(client, region, state)
    _slas(client, region, state)
    burnrate.read_actual(client, region, state)
    return state, lookups
