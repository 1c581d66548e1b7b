"""What Zabbix holds for a region, read in a fixed number of bulk requests.

One `get` per kind, whatever the region's size (hosts come with their interfaces, groups,
templates, tags and macros in the same request), so an unchanged 10,000-host region re-plans
in a handful of calls; a kind neither the model nor the ledger has is not read at all.

Ownership is the ledger's (`monitoring.ledger`): candidates are read by hcops' marks (tags
`managed-by: hcops` + `region`, or names under `hcops/<region>/`), and only the ids the ledger
lists count as "actual", to be changed or pruned. A marked object the ledger does not list (a
UI clone of a managed host, a group a person named `hcops/<region>/...`) is invisible to the
diff; if the model needs its key, it is adopted only with `--adopt`, else the plan refuses.

On hosts and services hcops shares the object with people: the fields hcops compares are its
own part only (its groups, templates, tag names, macros, the agent interface, its parents); what
a person added is kept in `Obj.extra["human"]` and sent back untouched on every update.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from inventories.errors import HcopsError
from monitoring.client import ZabbixClient
from monitoring.desired import MANAGED_MACROS, MANAGED_TEMPLATES
from monitoring.ledger import Ledger
from monitoring.objects import (
    GROUP_ROOT,
    HOST_TAG_NAMES,
    KEY_TAG,
    Kind,
    Obj,
    State,
    managed_tags,
    owns_group,
    proxy_prefix,
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
    foreign: dict[str, dict[str, str]] = field(default_factory=dict)
    """kind -> {desired key: id} of objects hcops needs but does not own (refused unless adopted)"""
    shared_groups: dict[str, str] = field(default_factory=dict)
    """groups the model names that people made first: used, never changed or deleted"""
    adopted: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, id, key) taken into the ledger by --adopt (written when apply runs)"""
    disabled_kept: list[str] = field(default_factory=list)
    """hosts an operator disabled, left disabled (no --enable-disabled)"""
    owned_total: int = 0
    """objects the ledger lists that still exist (the base of the prune guard)"""
    usergroups: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    mediatypes: dict[str, str] = field(default_factory=dict)
    proxies: dict[str, str] = field(default_factory=dict)
    """proxyid -> name of every proxy read (a host's `proxy` field names its proxy)"""


def _tag_pairs(items: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    return tags(*((t["tag"], t.get("value", "")) for t in items))


HOST_QUERY: dict[str, Any] = {
    "output": ["hostid", "host", "name", "status", "description", "tls_connect", "tls_accept", "proxy_hostid"],
    "selectInterfaces": ["interfaceid", "type", "main", "ip", "port"],
    "selectGroups": ["groupid", "name"],
    "selectParentTemplates": ["templateid", "host"],
    "selectTags": ["tag", "value"],
    "selectMacros": ["hostmacroid", "macro", "value", "type"],
}
"""What hcops reads of a host: everything it compares, in one request for all hosts."""


def host_from_row(row: dict[str, Any], hcops_groups: set[str] | None = None,
                  hcops_templates: set[str] | frozenset[str] | None = None,
                  proxy_names: dict[str, str] | None = None) -> Obj:
    """A `host.get` row in the form the diff compares: hcops' part in fields, people's in extra."""
    agent = [i for i in row["interfaces"] if i["type"] == "1"]
    main = next((i for i in agent if i["main"] == "1"), agent[0] if agent else None)
    groups = hcops_groups if hcops_groups is not None else {g["name"] for g in row["groups"]}
    templates = hcops_templates if hcops_templates is not None else MANAGED_TEMPLATES
    human = {
        "groups": [g["groupid"] for g in row["groups"] if g["name"] not in groups],
        "templates": [t["templateid"] for t in row["parentTemplates"] if t["host"] not in templates],
        "tags": [(t["tag"], t.get("value", "")) for t in row["tags"] if t["tag"] not in HOST_TAG_NAMES],
        "macros": [m["hostmacroid"] for m in row["macros"] if m["macro"] not in MANAGED_MACROS],
    }
    return Obj("host", row["host"], {
        "name": row["name"],
        "status": row["status"],
        "description": row["description"],
        "groups": tuple(sorted(g["name"] for g in row["groups"] if g["name"] in groups)),
        "templates": tuple(sorted(t["host"] for t in row["parentTemplates"] if t["host"] in templates)),
        "tags": tags(*((t["tag"], t.get("value", "")) for t in row["tags"] if t["tag"] in HOST_TAG_NAMES)),
        "macros": tuple(sorted((m["macro"], m.get("value", "")) for m in row["macros"]
                               if m["macro"] in MANAGED_MACROS)),
        "interface.ip": main["ip"] if main else "",
        "interface.port": main["port"] if main else "",
        "tls_connect": row["tls_connect"],
        "tls_accept": row["tls_accept"],
        "proxy": "" if row.get("proxy_hostid", "0") == "0" else
                 (proxy_names or {}).get(row["proxy_hostid"], f"proxyid:{row['proxy_hostid']}"),
    }, id=row["hostid"], extra={
        "interfaceid": main["interfaceid"] if main else None,
        "template_names": {t["host"]: t["templateid"] for t in row["parentTemplates"]},
        "macro_ids": {m["macro"]: m["hostmacroid"] for m in row["macros"]},
        "human": human,
    })


_MACRO = re.compile(r"\{\$[A-Z0-9_.]+(?::[^}]*)?\}")


def _same_expression(desired: str, expanded: str) -> bool:
    """Zabbix answers expressions with user macros resolved (`expandExpression`); the model's
    form keeps `{$MACRO}`s. Equal when the model's form matches with each macro as any value."""
    parts = _MACRO.split(desired)
    pattern = "[^\"]*".join(re.escape(p) for p in parts)
    return re.fullmatch(pattern, expanded) is not None


class Reader:
    """Reads one region's candidates kind by kind and sorts them by the ledger."""

    def __init__(self, client: ZabbixClient, region: str, desired: State, ledger: Ledger, *,
                 adopt: bool, enable_disabled: bool) -> None:
        self.client = client
        self.region = region
        self.desired = desired
        self.ledger = ledger
        self.adopt = adopt
        self.enable_disabled = enable_disabled
        self.state = State()
        self.lookups = Lookups()
        self.host_names: dict[str, str] = {}

    def wanted(self, kind: Kind) -> bool:
        return bool(self.desired.objects[kind]) or self.ledger.has_kind(kind)

    def sort(self, kind: Kind, objs: Iterable[Obj], *, marked: bool = True) -> None:
        """Ledger ids are owned; duplicates of an owned key are kept aside to be deleted."""
        want = self.desired.objects[kind]
        for obj in sorted(objs, key=lambda o: int(o.id or 0)):
            owned = self.ledger.owns(kind, obj.id)
            if not owned and marked and self.adopt and obj.key in want and obj.id:
                if obj.key in self.state.objects[kind]:
                    self.state.duplicates.append(obj)  # a second marked copy: only one is adopted
                    self.lookups.adopted.append((kind, obj.id, obj.key))
                    continue
                self.lookups.adopted.append((kind, obj.id, obj.key))
                owned = True
            if not owned:
                if obj.key in want and obj.id:
                    self.lookups.foreign.setdefault(kind, {})[obj.key] = obj.id
                continue
            self.lookups.owned_total += 1
            if obj.key in self.state.objects[kind]:
                self.state.duplicates.append(obj)
            else:
                self.state.add(obj)

    # ---- kinds ----------------------------------------------------------------------------
    def hostgroups(self) -> None:
        rows = self.client.call("hostgroup.get", {"output": ["groupid", "name"],
                                                  "search": {"name": f"{GROUP_ROOT}/"}, "startSearch": True})
        objs = [Obj("hostgroup", r["name"], {}, id=r["groupid"]) for r in rows if owns_group(self.region, r["name"])]
        self.sort("hostgroup", objs)
        # A group the model names that a person made first is shared: used, never owned.
        self.lookups.shared_groups = self.lookups.foreign.pop("hostgroup", {})

    def proxies(self) -> None:
        rows = self.client.call("proxy.get", {
            "output": ["proxyid", "host", "status", "description", "tls_connect", "tls_accept", "proxy_address"],
            "search": {"host": proxy_prefix(self.region)}, "startSearch": True})
        self.lookups.proxies = {r["proxyid"]: r["host"] for r in rows}
        self.sort("proxy", [Obj("proxy", r["host"], {
            "name": r["host"], "status": r["status"], "description": r["description"],
            "tls_connect": r["tls_connect"], "tls_accept": r["tls_accept"], "proxy_address": r["proxy_address"],
        }, id=r["proxyid"]) for r in rows])

    def hosts(self) -> None:
        rows = self.client.call("host.get", {**HOST_QUERY, "tags": managed_tags(self.region), "evaltype": 0})
        hcops_groups = self.ledger.names("hostgroup") | set(self.desired.objects["hostgroup"])
        hcops_templates = MANAGED_TEMPLATES | {t for o in self.desired.objects["host"].values()
                                               for t in o.fields["templates"]}
        objs = []
        for row in rows:
            self.host_names[row["hostid"]] = row["host"]
            obj = host_from_row(row, hcops_groups, hcops_templates, self.lookups.proxies)
            want = self.desired.objects["host"].get(row["host"])
            if (row["status"] == "1" and want is not None and want.fields["status"] == "0"
                    and not self.enable_disabled):
                obj.fields["status"] = "0"  # an operator's disable stands: no change planned
                obj.extra["kept_disabled"] = True
                self.lookups.disabled_kept.append(row["host"])
            objs.append(obj)
        self.sort("host", objs)
        owned = set(self.state.objects["host"])
        self.lookups.disabled_kept = [h for h in self.lookups.disabled_kept if h in owned]
        unknown = sorted(set(self.desired.objects["host"]) - owned - set(self.lookups.foreign.get("host", {})))
        if unknown:
            found = self.client.call("host.get", {"output": ["hostid", "host"], "filter": {"host": unknown}})
            self.lookups.foreign_hosts = {r["host"]: r["hostid"] for r in found}
        self.lookups.foreign_hosts.update(self.lookups.foreign.pop("host", {}))

    def httptests(self) -> None:
        rows = self.client.call("httptest.get", {
            "output": ["httptestid", "hostid", "name", "delay", "retries", "verify_peer", "verify_host"],
            "tags": managed_tags(self.region), "evaltype": 0,
            "selectSteps": ["httpstepid", "url", "status_codes", "follow_redirects"],
            "selectTags": ["tag", "value"],
        })
        objs = []
        for row in rows:
            host = self.host_names.get(row["hostid"], f"hostid:{row['hostid']}")
            step = row["steps"][0] if row["steps"] else {}
            objs.append(Obj("httptest", f"{host}/{row['name']}", {
                "host": host, "name": row["name"], "url": step.get("url", ""),
                "status_codes": step.get("status_codes", ""), "delay": row["delay"], "retries": row["retries"],
                "verify_peer": row["verify_peer"], "verify_host": row["verify_host"],
                "follow_redirects": step.get("follow_redirects", ""), "tags": _tag_pairs(row["tags"]),
            }, id=row["httptestid"], extra={"stepids": [s["httpstepid"] for s in row["steps"]]}))
        self.sort("httptest", objs)

    def items(self) -> None:
        rows = self.client.call("item.get", {
            "output": ["itemid", "hostid", "key_", "name", "type", "value_type", "delay", "units",
                       "master_itemid", "history", "trends", "params"],
            "tags": managed_tags(self.region), "evaltype": 0, "inherited": False,
            "selectTags": ["tag", "value"], "selectPreprocessing": ["type", "params"],
        })
        keys = {r["itemid"]: r["key_"] for r in rows}
        objs = []
        for row in rows:
            host = self.host_names.get(row["hostid"], f"hostid:{row['hostid']}")
            master = keys.get(row["master_itemid"], "") if row["master_itemid"] != "0" else ""
            objs.append(Obj("item", f"{host}/{row['key_']}", {
                "host": host, "key": row["key_"], "name": row["name"], "type": row["type"],
                "value_type": row["value_type"], "delay": row["delay"], "units": row["units"],
                "master": master, "history": row["history"], "trends": row["trends"],
                "preprocessing": tuple((p["type"], p["params"]) for p in row["preprocessing"]),
                "params": row.get("params", ""),
                "tags": _tag_pairs(row["tags"]),
            }, id=row["itemid"]))
        self.sort("item", objs)

    def triggers(self) -> None:
        rows = self.client.call("trigger.get", {
            "output": ["triggerid", "description", "expression", "priority", "comments", "manual_close"],
            "expandExpression": True, "tags": managed_tags(self.region), "evaltype": 0, "inherited": False,
            "selectTags": ["tag", "value"], "selectHosts": ["host"],
        })
        objs = []
        for row in rows:
            host = row["hosts"][0]["host"] if row["hosts"] else f"triggerid:{row['triggerid']}"
            key = f"{host}/{row['description']}"
            want = self.desired.objects["trigger"].get(key)
            expression = row["expression"]
            if want is not None and _same_expression(want.fields["expression"], expression):
                expression = want.fields["expression"]
            objs.append(Obj("trigger", key, {
                "host": host, "name": row["description"], "expression": expression,
                "priority": row["priority"], "comments": row["comments"], "manual_close": row["manual_close"],
                "tags": _tag_pairs(row["tags"]),
            }, id=row["triggerid"]))
        self.sort("trigger", objs)

    def services(self) -> None:
        rows = self.client.call("service.get", {
            "output": ["serviceid", "name", "algorithm", "sortorder"],
            "tags": managed_tags(self.region), "evaltype": 0,
            "selectTags": ["tag", "value"],
            "selectProblemTags": ["tag", "operator", "value"],
            "selectParents": ["serviceid"],
        })
        keys: dict[str, str] = {}
        for row in rows:
            if self.ledger.owns("service", row["serviceid"]) or self.adopt:
                key = next((t["value"] for t in row["tags"] if t["tag"] == KEY_TAG), None)
                if key:
                    keys[row["serviceid"]] = key
        objs = []
        for row in rows:
            if row["serviceid"] not in keys:
                continue
            ours = [keys[p["serviceid"]] for p in row["parents"] if p["serviceid"] in keys]
            human = [p["serviceid"] for p in row["parents"] if p["serviceid"] not in keys]
            objs.append(Obj("service", keys[row["serviceid"]], {
                "name": row["name"], "algorithm": row["algorithm"], "sortorder": row["sortorder"],
                "tags": _tag_pairs(row["tags"]),
                "problem_tags": tuple(sorted((p["tag"], p["operator"], p["value"]) for p in row["problem_tags"])),
                "parent": ",".join(sorted(ours)),
            }, id=row["serviceid"], extra={"human": {"parents": human}}))
        self.sort("service", objs)

    def slas(self) -> None:
        rows = self.client.call("sla.get", {
            "output": ["slaid", "name", "slo", "period", "timezone", "status", "description"],
            "search": {"name": sla_prefix(self.region)}, "startSearch": True,
            "selectServiceTags": ["tag", "operator", "value"],
        })
        self.sort("sla", [Obj("sla", row["name"], {
            "name": row["name"], "slo": f"{float(row['slo']):.4f}", "period": row["period"],
            "timezone": row["timezone"], "status": row["status"],
            "service_tags": tuple(sorted((t["tag"], t["operator"], t["value"]) for t in row["service_tags"])),
            "description": row["description"],
        }, id=row["slaid"]) for row in rows if row["name"].startswith(sla_prefix(self.region))])

    def mediatypes(self) -> None:
        rows = self.client.call("mediatype.get", {
            "output": ["mediatypeid", "name", "type", "status", "script", "smtp_server", "smtp_port",
                       "smtp_email", "smtp_helo", "parameters", "description", "timeout"],
            "search": {"name": sla_prefix(self.region)}, "startSearch": True,
            "selectMessageTemplates": ["eventsource", "recovery", "subject", "message"],
        })
        objs = []
        for row in rows:
            objs.append(Obj("mediatype", row["name"], {
                "name": row["name"], "type": row["type"], "status": row["status"], "script": row["script"],
                "smtp_server": row["smtp_server"], "smtp_port": row["smtp_port"], "smtp_email": row["smtp_email"],
                "smtp_helo": row["smtp_helo"], "timeout": row["timeout"], "description": row["description"],
                "parameters": tuple(sorted((p["name"], p["value"]) for p in row.get("parameters") or [])),
                "message_templates": tuple(sorted((m["eventsource"], m["recovery"], m["subject"], m["message"])
                                                  for m in row["message_templates"])),
            }, id=row["mediatypeid"]))
            self.lookups.mediatypes[row["name"]] = row["mediatypeid"]
        self.sort("mediatype", objs)

    def roles(self) -> None:
        rows = self.client.call("role.get", {"output": ["roleid", "name", "type"], "selectRules": "extend",
                                             "search": {"name": sla_prefix(self.region)}, "startSearch": True})
        objs = []
        for row in rows:
            rules = row.get("rules") or {}
            self.lookups.roles[row["name"]] = row["roleid"]
            objs.append(Obj("role", row["name"], {
                "name": row["name"], "type": row["type"],
                "ui.default_access": str(rules.get("ui.default_access", "")),
                "api.access": str(rules.get("api.access", "")), "api.mode": str(rules.get("api.mode", "")),
                "api": tuple(sorted(rules.get("api") or [])),
                "actions.default_access": str(rules.get("actions.default_access", "")),
            }, id=row["roleid"]))
        self.sort("role", objs)

    def usergroups(self) -> None:
        rows = self.client.call("usergroup.get", {"output": ["usrgrpid", "name", "gui_access", "users_status"],
                                                  "selectRights": ["id", "permission"],
                                                  "search": {"name": sla_prefix(self.region)}, "startSearch": True})
        group_names = {o.id: k for k, o in self.state.objects["hostgroup"].items()}
        group_names.update({v: k for k, v in self.lookups.shared_groups.items()})
        objs = []
        for row in rows:
            self.lookups.usergroups[row["name"]] = row["usrgrpid"]
            # Rights on groups hcops does not know are people's (Zabbix also copies a parent's
            # rights onto a subgroup someone creates under it): kept, not compared.
            objs.append(Obj("usergroup", row["name"], {
                "name": row["name"], "gui_access": row["gui_access"], "users_status": row["users_status"],
                "rights": tuple(sorted((group_names[r["id"]], r["permission"])
                                       for r in row["rights"] if r["id"] in group_names)),
            }, id=row["usrgrpid"],
                extra={"human": {"rights": [r for r in row["rights"] if r["id"] not in group_names]}}))
        self.sort("usergroup", objs)

    def users(self) -> None:
        prefix = f"hcops-{self.region}-"
        rows = self.client.call("user.get", {
            "output": ["userid", "username", "name", "surname", "roleid"],
            "search": {"username": prefix}, "startSearch": True,
            "selectMedias": ["mediatypeid", "sendto", "severity", "active"], "selectUsrgrps": ["name"],
        })
        role_names = {v: k for k, v in self.lookups.roles.items()}
        media_names = {v: k for k, v in self.lookups.mediatypes.items()}
        objs = []
        for row in rows:
            medias = []
            for m in row["medias"]:
                sendto = m["sendto"] if isinstance(m["sendto"], str) else ",".join(m["sendto"])
                medias.append((media_names.get(m["mediatypeid"], f"mediatypeid:{m['mediatypeid']}"), sendto,
                               str(m["severity"]), str(m["active"])))
            objs.append(Obj("user", row["username"], {
                "username": row["username"], "name": row["name"], "surname": row["surname"],
                "role": role_names.get(row["roleid"], f"roleid:{row['roleid']}"),
                "groups": tuple(sorted(g["name"] for g in row["usrgrps"])),
                "medias": tuple(sorted(medias)),
            }, id=row["userid"]))
        self.sort("user", objs)

    def actions(self) -> None:
        rows = self.client.call("action.get", {
            "output": ["actionid", "name", "eventsource", "status", "esc_period"],
            "search": {"name": sla_prefix(self.region)}, "startSearch": True,
            "selectFilter": "extend", "selectOperations": "extend", "selectRecoveryOperations": "extend",
        })
        group_names = {o.id: k for k, o in self.state.objects["hostgroup"].items()}
        usrgrp_names = {v: k for k, v in self.lookups.usergroups.items()}
        objs = []
        for row in rows:
            conditions = tuple(sorted(
                (c["conditiontype"], c["operator"],
                 group_names.get(c["value"], c["value"]) if c["conditiontype"] == "0" else c["value"])
                for c in row["filter"]["conditions"]))
            steps = tuple(sorted(
                (int(op["esc_step_from"]), int(op["esc_step_to"]),
                 tuple(sorted(usrgrp_names.get(g["usrgrpid"], g["usrgrpid"]) for g in op.get("opmessage_grp", []))),
                 bool(op.get("opconditions")))
                for op in row["operations"]))
            objs.append(Obj("action", row["name"], {
                "name": row["name"], "status": row["status"], "esc_period": row["esc_period"],
                "conditions": conditions, "steps": steps,
                "recovery": tuple(sorted(op["operationtype"] for op in row["recovery_operations"])),
            }, id=row["actionid"]))
        self.sort("action", objs)


def actual_state(client: ZabbixClient, region: str, desired: State, templates: list[str], *,
                 ledger: Ledger | None = None, adopt: bool = False,
                 enable_disabled: bool = False) -> tuple[State, Lookups]:
    """Read what hcops owns in Zabbix for `region`, plus the ids it refers to."""
    reader = Reader(client, region, desired, ledger or Ledger(region), adopt=adopt,
                    enable_disabled=enable_disabled)
    reader.hostgroups()
    if templates:
        rows = client.call("template.get", {"output": ["templateid", "host"], "filter": {"host": templates}})
        reader.lookups.templates = {r["host"]: r["templateid"] for r in rows}
        missing = sorted(set(templates) - set(reader.lookups.templates))
        if missing:
            raise HcopsError(f"Zabbix lacks the template(s) {', '.join(repr(m) for m in missing)}",
                             "import them (they ship with Zabbix 6.0: Data collection > Templates > Import)")
    if reader.wanted("proxy"):
        reader.proxies()
    reader.hosts()
    reader.httptests()
    for kind, read in (("item", reader.items), ("trigger", reader.triggers)):
        if reader.wanted(kind):  # type: ignore[arg-type]
            read()
    reader.services()
    reader.slas()
    for kind, read in (("mediatype", reader.mediatypes), ("role", reader.roles),
                       ("usergroup", reader.usergroups), ("user", reader.users), ("action", reader.actions)):
        if reader.wanted(kind):  # type: ignore[arg-type]
            read()
    return reader.state, reader.lookups
