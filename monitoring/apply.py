"""Carry out a plan against the API: batched, in plan order, stopping at the first error.

Changes of one kind and action go out together (`host.create` takes a list), in chunks, so a
10,000-host first sync is a few dozen requests rather than 10,000. Within an update only the
fields that differ are sent; a field that Zabbix replaces as a whole (groups, templates, tags,
macros, interfaces, steps, parents) is sent whole. Templates a host no longer needs are
cleared (`templates_clear`), so their items go with them.

PSKs are write-only: sent when a host is created, when its encryption settings change, and
with `rotate_psk`. A rotated key is saved as *pending* (`zabbix-psk-<host>-pending`) before it
is sent and promoted once Zabbix accepted it; if the answer is lost, the next run sends the same
pending key again instead of a new one, so neither side is left with a key the other lacks.

Ownership: every id a create returns goes into the ledger (`monitoring.ledger`) before the next
batch, every deleted id leaves it. A create whose answer was lost (`WriteOutcomeUnknown`: a 5xx,
a dropped connection, a timeout) is never re-sent blindly: the objects are looked up by their
keys, the ones that exist are recorded as created, and only the rest are sent again.

People's parts of shared objects are sent back as they were: a host's other groups, templates
(never cleared), tags and macros (by id), its other interfaces (hcops updates only its agent
interface, by id), a service's other parents.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.state import SecretStore
from inventories.errors import HcopsError
from monitoring.actual import Lookups
from monitoring.alerting import COND_ACK, OP_EQUAL
from monitoring.client import WriteOutcomeUnknown, ZabbixClient
from monitoring.diff import PRUNE_SHARE, Change, Plan
from monitoring.ledger import Ledger
from monitoring.objects import KEY_TAG, PSK_IDENTITY, PSK_SECRET, State, managed_tags

log = logging.getLogger("hcops.monitoring")
CHUNK = 500
"""Objects per request for light kinds."""
HOST_CHUNK = 100
"""Hosts per create/update: a host.create costs the frontend about 0.7 MB of PHP memory per
host with its templates (500 hosts peaked near 370 MB); 100 fit the 128 MB the zabbix_server
role gives PHP by default with room to spare. HCOPS_ZABBIX_BATCH overrides both."""
STEP_NAME = "GET /"
ID_FIELDS = {"hostgroup": "groupids", "proxy": "proxyids", "host": "hostids", "httptest": "httptestids",
             "item": "itemids", "trigger": "triggerids", "service": "serviceids", "sla": "slaids",
             "mediatype": "mediatypeids", "role": "roleids", "usergroup": "usrgrpids", "user": "userids",
             "action": "actionids"}


@dataclass
class Ids:
    """Zabbix ids by hcops key, filled from the actual state and as objects are created."""

    groups: dict[str, str] = field(default_factory=dict)
    proxies: dict[str, str] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)
    items: dict[str, str] = field(default_factory=dict)
    mediatypes: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    usergroups: dict[str, str] = field(default_factory=dict)


@dataclass
class ApplyResult:
    applied: int = 0
    psk_sent: list[str] = field(default_factory=list)
    token: Any = None
    """monitoring.apiuser.TokenState of the sync user's token after the apply"""


def _tags(pairs: Any) -> list[dict[str, str]]:
    return [{"tag": t, "value": v} for t, v in pairs]


def _opt_tags(triples: Any) -> list[dict[str, str]]:
    return [{"tag": t, "operator": op, "value": v} for t, op, v in triples]


def _changed(f: dict[str, Any], changed: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The plain fields among `names` that an update must send (only those that differ)."""
    return {name: f[name] for name in names if name in changed}


def _ids(actual: State, kind: str) -> dict[str, str]:
    return {k: o.id for k, o in actual.objects[kind].items() if o.id}  # type: ignore[index]


def unused_password(*names: str) -> str:
    """A random password Zabbix's policy accepts: it refuses one that contains the user's name,
    surname or username (case-insensitively), which a random one does now and then (a CI run
    met "Lab" in one); redrawn until no name, nor any word of one, is in it."""
    words = {w.lower() for n in names if n for w in [n, *n.replace("-", " ").replace("_", " ").split()]
             if len(w) >= 2}
    for _ in range(10_000):
        candidate = secrets.token_urlsafe(24) + "aA1!"
        if not any(w in candidate.lower() for w in words):
            return candidate
    raise HcopsError(f"no random password avoids the names {sorted(words)}", "shorten the person's name in oncall.yml")


class Applier:
    def __init__(self, client: ZabbixClient, region: str, actual: State, lookups: Lookups, *,
                 ledger: Ledger | None = None) -> None:
        self.client = client
        self.region = region
        self.store = SecretStore(region)
        self.ledger = ledger or Ledger(region)
        self.ids = Ids(templates=dict(lookups.templates))
        self.ids.groups = {**lookups.shared_groups, **_ids(actual, "hostgroup")}
        self.ids.proxies = _ids(actual, "proxy")
        self.ids.hosts = _ids(actual, "host")
        self.ids.services = _ids(actual, "service")
        self.ids.items = _ids(actual, "item")
        self.ids.mediatypes = _ids(actual, "mediatype")
        self.ids.roles = _ids(actual, "role")
        self.ids.usergroups = _ids(actual, "usergroup")
        self.result = ApplyResult()
        self._new_psks: dict[str, str] = {}
        self._interfaces: list[dict[str, Any]] = []
        for kind, zid, key in lookups.adopted:
            self.ledger.add(kind, zid, key)
        if lookups.adopted:
            self.ledger.save()

    # ---- PSK ------------------------------------------------------------------------------
    def _psk(self, host: str, rotate: bool) -> dict[str, str]:
        if rotate:
            pending = PSK_SECRET.format(host=host) + "-pending"
            # A key sent before whose answer was lost is sent again, not replaced.
            key = self.store.get(pending, "psk") if self.store.exists(pending) else secrets.token_hex(32)
            self.store.set(pending, key)  # saved before it is sent
            self._new_psks[host] = key
        else:
            key = self.store.get(PSK_SECRET.format(host=host), "psk")
        self.result.psk_sent.append(host)
        return {"tls_psk_identity": PSK_IDENTITY.format(host=host), "tls_psk": key}

    def _commit_psks(self) -> None:
        for host, key in self._new_psks.items():
            self.store.set(PSK_SECRET.format(host=host), key)
            self.store.delete(PSK_SECRET.format(host=host) + "-pending")
        self._new_psks.clear()

    def _proxy_psk(self, ch: Change) -> dict[str, str]:
        """An active proxy's key: the same secret the zabbix_proxy role writes on the proxy host
        (created by whichever of deploy and apply runs first)."""
        assert ch.desired is not None
        extra = ch.desired.extra
        return {"tls_psk_identity": extra["psk_identity"], "tls_psk": self.store.get(extra["psk_secret"], "psk")}

    # ---- payloads -------------------------------------------------------------------------
    def _interface(self, f: dict[str, Any], interfaceid: str | None) -> dict[str, Any]:
        iface = {"type": 1, "main": 1, "useip": 1, "ip": f["interface.ip"], "dns": "", "port": f["interface.port"]}
        return {"interfaceid": interfaceid, **iface} if interfaceid else iface

    def _host_create(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None
        f = ch.desired.fields
        return {
            "host": ch.key, "name": f["name"], "status": f["status"], "description": f["description"],
            "groups": [{"groupid": self.ids.groups[g]} for g in f["groups"]],
            "templates": [{"templateid": self.ids.templates[t]} for t in f["templates"]],
            "tags": _tags(f["tags"]),
            "macros": [{"macro": m, "value": v} for m, v in f["macros"]],
            "interfaces": [self._interface(f, None)],
            "tls_connect": f["tls_connect"], "tls_accept": f["tls_accept"],
            "proxy_hostid": self._proxy_id(f["proxy"]),
            **self._psk(ch.key, rotate=False),
        }

    def _proxy_id(self, name: str) -> str:
        return self.ids.proxies[name] if name else "0"

    def _proxy_create(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None
        f = ch.desired.fields
        return {"host": f["name"], "status": f["status"], "description": f["description"],
                "tls_connect": f["tls_connect"], "tls_accept": f["tls_accept"], "proxy_address": f["proxy_address"],
                **self._proxy_psk(ch)}

    def _proxy_update(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None and ch.actual is not None
        f, changed = ch.desired.fields, ch.fields
        out: dict[str, Any] = {"proxyid": ch.actual.id,
                               **_changed(f, changed, ("status", "description", "proxy_address"))}
        if {"tls_connect", "tls_accept"} & changed.keys():
            out.update(tls_connect=f["tls_connect"], tls_accept=f["tls_accept"], **self._proxy_psk(ch))
        return out

    def _host_update(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None and ch.actual is not None
        f, changed = ch.desired.fields, ch.fields
        out: dict[str, Any] = {"hostid": ch.actual.id, **_changed(f, changed, ("name", "status", "description"))}
        if "proxy" in changed:
            out["proxy_hostid"] = self._proxy_id(f["proxy"])
        human: dict[str, Any] = ch.actual.extra.get("human", {})
        if "groups" in changed:
            out["groups"] = [{"groupid": self.ids.groups[g]} for g in f["groups"]] + [
                {"groupid": gid} for gid in human.get("groups", [])]
        if "templates" in changed:
            out["templates"] = [{"templateid": self.ids.templates[t]} for t in f["templates"]] + [
                {"templateid": tid} for tid in human.get("templates", [])]
            linked: dict[str, str] = ch.actual.extra.get("template_names", {})
            # Only templates hcops linked are cleared; a person's stay linked with their data.
            cleared = [{"templateid": linked[name]} for name in ch.actual.fields["templates"]
                       if name not in f["templates"] and name in linked]
            if cleared:
                out["templates_clear"] = cleared
        if "tags" in changed:
            out["tags"] = _tags(f["tags"]) + _tags(human.get("tags", []))
        if "macros" in changed:
            macro_ids: dict[str, str] = ch.actual.extra.get("macro_ids", {})
            out["macros"] = [{"hostmacroid": macro_ids[m], "value": v} if m in macro_ids else {"macro": m, "value": v}
                             for m, v in f["macros"]] + [{"hostmacroid": mid} for mid in human.get("macros", [])]
        if "interface.ip" in changed or "interface.port" in changed:
            interfaceid = ch.actual.extra.get("interfaceid")
            if interfaceid:  # its own interface only: a person's SNMP or IPMI interface stays
                self._interfaces.append({"interfaceid": interfaceid, "ip": f["interface.ip"],
                                         "port": f["interface.port"]})
            else:
                out["interfaces"] = [self._interface(f, None)]
        if {"tls_connect", "tls_accept", "psk"} & changed.keys():
            out["tls_connect"], out["tls_accept"] = f["tls_connect"], f["tls_accept"]
            out.update(self._psk(ch.key, rotate=ch.rotate_psk))
        return out

    def _step(self, f: dict[str, Any], stepid: str | None) -> dict[str, Any]:
        step = {"name": STEP_NAME, "no": 1, "url": f["url"], "status_codes": f["status_codes"],
                "follow_redirects": f["follow_redirects"], "timeout": "15s"}
        return {"httpstepid": stepid, **step} if stepid else step

    def _httptest_create(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None
        f = ch.desired.fields
        return {"name": f["name"], "hostid": self.ids.hosts[f["host"]], "delay": f["delay"],
                "retries": f["retries"], "verify_peer": f["verify_peer"], "verify_host": f["verify_host"],
                "tags": _tags(f["tags"]), "steps": [self._step(f, None)]}

    def _httptest_update(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None and ch.actual is not None
        f, changed = ch.desired.fields, ch.fields
        out: dict[str, Any] = {"httptestid": ch.actual.id,
                               **_changed(f, changed, ("delay", "retries", "verify_peer", "verify_host"))}
        if "tags" in changed:
            out["tags"] = _tags(f["tags"])
        if {"url", "status_codes", "follow_redirects"} & changed.keys():
            stepids = ch.actual.extra.get("stepids") or [None]
            out["steps"] = [self._step(f, stepids[0])]
        return out

    def _parents(self, parent: str) -> list[dict[str, str]]:
        return [{"serviceid": self.ids.services[parent]}] if parent else []

    def _service_create(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None
        f = ch.desired.fields
        return {"name": f["name"], "algorithm": f["algorithm"], "sortorder": f["sortorder"],
                "tags": _tags(f["tags"]), "problem_tags": _opt_tags(f["problem_tags"]),
                "parents": self._parents(f["parent"])}

    def _service_update(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None and ch.actual is not None
        f, changed = ch.desired.fields, ch.fields
        out: dict[str, Any] = {"serviceid": ch.actual.id, **_changed(f, changed, ("name", "algorithm", "sortorder"))}
        if "tags" in changed:
            out["tags"] = _tags(f["tags"])
        if "problem_tags" in changed:
            out["problem_tags"] = _opt_tags(f["problem_tags"])
        if "parent" in changed:
            human = ch.actual.extra.get("human", {}).get("parents", [])
            out["parents"] = self._parents(f["parent"]) + [{"serviceid": sid} for sid in human]
        return out

    def _sla_create(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None
        f = ch.desired.fields
        year_start = datetime(datetime.now(UTC).year, 1, 1, tzinfo=UTC)
        return {"name": f["name"], "slo": f["slo"], "period": f["period"], "timezone": f["timezone"],
                "status": f["status"], "description": f["description"],
                "service_tags": _opt_tags(f["service_tags"]), "effective_date": int(year_start.timestamp())}

    def _sla_update(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None and ch.actual is not None
        f = ch.desired.fields
        out: dict[str, Any] = {"slaid": ch.actual.id}
        for name in ch.fields:
            out[name] = _opt_tags(f[name]) if name == "service_tags" else f[name]
        return out

    # ---- items and triggers -----------------------------------------------------------------
    def _item_payload(self, f: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"name": f["name"], "type": f["type"], "value_type": f["value_type"],
                               "delay": f["delay"], "units": f["units"], "history": f["history"],
                               "trends": f["trends"], "tags": _tags(f["tags"]),
                               "preprocessing": [{"type": t, "params": p, "error_handler": "0",
                                                  "error_handler_params": ""} for t, p in f["preprocessing"]]}
        if f["master"]:
            out["master_itemid"] = self.ids.items[f"{f['host']}/{f['master']}"]
        if f["type"] == "15":  # calculated: the formula
            out["params"] = f["params"]
        return out

    def _item_create(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None
        f = ch.desired.fields
        iface = {} if f["type"] in ("2", "15", "18") else {"interfaceid": self._agent_interface(f["host"])}
        return {"hostid": self.ids.hosts[f["host"]], "key_": f["key"], **iface, **self._item_payload(f)}

    def _agent_interface(self, host: str) -> str:
        if not hasattr(self, "_iface_cache"):
            rows = self.client.call("hostinterface.get", {"output": ["interfaceid", "hostid"],
                                                          "hostids": list(self.ids.hosts.values()),
                                                          "filter": {"type": 1, "main": 1}})
            self._iface_cache = {r["hostid"]: r["interfaceid"] for r in rows}
        return str(self._iface_cache[self.ids.hosts[host]])

    def _item_update(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None and ch.actual is not None
        return {"itemid": ch.actual.id, **self._item_payload(ch.desired.fields)}

    def _trigger_create(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None
        f = ch.desired.fields
        return {"description": f["name"], "expression": f["expression"], "priority": f["priority"],
                "comments": f["comments"], "manual_close": f["manual_close"], "tags": _tags(f["tags"])}

    def _trigger_update(self, ch: Change) -> dict[str, Any]:
        assert ch.actual is not None
        return {"triggerid": ch.actual.id, **self._trigger_create(ch)}

    # ---- alerting ---------------------------------------------------------------------------
    def _mediatype_create(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None
        f = ch.desired.fields
        out: dict[str, Any] = {k: f[k] for k in ("name", "type", "status", "description")}
        if f["type"] == "4":
            out.update(script=f["script"], timeout=f["timeout"],
                       parameters=[{"name": n, "value": v} for n, v in f["parameters"]])
        else:
            out.update(smtp_server=f["smtp_server"], smtp_port=f["smtp_port"], smtp_email=f["smtp_email"],
                       smtp_helo=f["smtp_helo"])
        out["message_templates"] = [{"eventsource": e, "recovery": r, "subject": sub, "message": msg}
                                    for e, r, sub, msg in f["message_templates"]]
        return out

    def _mediatype_update(self, ch: Change) -> dict[str, Any]:
        assert ch.actual is not None
        out = self._mediatype_create(ch)
        out.pop("type")
        return {"mediatypeid": ch.actual.id, **out}

    def _role_create(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None
        f = ch.desired.fields
        rules: dict[str, Any] = {"ui.default_access": f["ui.default_access"], "api.access": f["api.access"],
                                 "api.mode": f["api.mode"], "actions.default_access": f["actions.default_access"]}
        if f["api"]:
            rules["api"] = list(f["api"])
        return {"name": f["name"], "type": f["type"], "rules": rules}

    def _role_update(self, ch: Change) -> dict[str, Any]:
        assert ch.actual is not None
        out = self._role_create(ch)
        return {"roleid": ch.actual.id, **out}

    def _usergroup_create(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None
        f = ch.desired.fields
        return {"name": f["name"], "gui_access": f["gui_access"], "users_status": f["users_status"],
                "rights": [{"id": self.ids.groups[g], "permission": p} for g, p in f["rights"]]}

    def _usergroup_update(self, ch: Change) -> dict[str, Any]:
        assert ch.actual is not None
        out = {"usrgrpid": ch.actual.id, **self._usergroup_create(ch)}
        out["rights"] += [{"id": r["id"], "permission": r["permission"]}
                          for r in ch.actual.extra.get("human", {}).get("rights", [])]
        return out

    def _user_payload(self, f: dict[str, Any]) -> dict[str, Any]:
        return {"name": f["name"], "surname": f["surname"], "roleid": self.ids.roles[f["role"]],
                "usrgrps": [{"usrgrpid": self.ids.usergroups[g]} for g in f["groups"]],
                "medias": [{"mediatypeid": self.ids.mediatypes[m], "sendto": to, "severity": sev, "active": act,
                            "period": "1-7,00:00-24:00"} for m, to, sev, act in f["medias"]]}

    def _user_create(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None
        # Paged people never log in to the frontend (their groups have it disabled); the password
        # exists because Zabbix requires one, and is kept nowhere.
        f = ch.desired.fields
        return {"username": f["username"], "passwd": unused_password(f["username"], f["name"], f["surname"]),
                **self._user_payload(f)}

    def _user_update(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None and ch.actual is not None
        return {"userid": ch.actual.id, **self._user_payload(ch.desired.fields)}

    def _action_payload(self, f: dict[str, Any]) -> dict[str, Any]:
        conditions: list[dict[str, Any]] = []
        for t, operator, v in f["conditions"]:
            condition: dict[str, Any] = {"conditiontype": t, "operator": operator}
            if v:  # "problem is suppressed" takes no value
                condition["value"] = self.ids.groups[v] if t == "0" else v
            conditions.append(condition)
        operations = []
        for step_from, step_to, groups, unacked in f["steps"]:
            op: dict[str, Any] = {"operationtype": 0, "esc_step_from": step_from, "esc_step_to": step_to,
                                  "opmessage": {"default_msg": 1, "mediatypeid": 0},
                                  "opmessage_grp": [{"usrgrpid": self.ids.usergroups[g]} for g in groups]}
            if unacked:  # a later step pages only while nobody has acknowledged
                op["opconditions"] = [{"conditiontype": COND_ACK, "operator": OP_EQUAL, "value": "0"}]
            operations.append(op)
        return {"status": f["status"], "esc_period": f["esc_period"],
                "filter": {"evaltype": 1, "conditions": conditions}, "operations": operations,
                "recovery_operations": [{"operationtype": t, "opmessage": {"default_msg": 1}} for t in f["recovery"]]}

    def _action_create(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None
        return {"name": ch.desired.fields["name"], "eventsource": 0, **self._action_payload(ch.desired.fields)}

    def _action_update(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None and ch.actual is not None
        return {"actionid": ch.actual.id, **self._action_payload(ch.desired.fields)}

    # ---- running --------------------------------------------------------------------------
    def _builder(self, action: str, kind: str) -> Callable[[Change], dict[str, Any]]:
        return getattr(self, f"_{kind}_{action}")  # type: ignore[no-any-return]

    def _remember(self, kind: str, change: Change, new_id: str) -> None:
        target = {"hostgroup": self.ids.groups, "proxy": self.ids.proxies, "host": self.ids.hosts,
                  "service": self.ids.services, "item": self.ids.items, "mediatype": self.ids.mediatypes,
                  "role": self.ids.roles, "usergroup": self.ids.usergroups}.get(kind)
        if target is not None:
            target[change.key] = str(new_id)
        self.ledger.add(kind, str(new_id), change.key)

    def _find(self, kind: str, batch: list[Change]) -> dict[str, str]:
        """After a lost answer: which of these objects Zabbix now holds, by key -> id."""
        keys = [c.key for c in batch]
        if kind == "hostgroup":
            rows = self.client.call("hostgroup.get", {"output": ["groupid", "name"], "filter": {"name": keys}})
            return {r["name"]: r["groupid"] for r in rows}
        if kind == "proxy":
            rows = self.client.call("proxy.get", {"output": ["proxyid", "host"], "filter": {"host": keys}})
            return {r["host"]: r["proxyid"] for r in rows}
        if kind == "host":
            rows = self.client.call("host.get", {"output": ["hostid", "host"], "filter": {"host": keys},
                                                 "tags": managed_tags(self.region), "evaltype": 0})
            return {r["host"]: r["hostid"] for r in rows}
        if kind == "service":
            rows = self.client.call("service.get", {"output": ["serviceid"], "selectTags": ["tag", "value"],
                                                    "tags": managed_tags(self.region), "evaltype": 0})
            found: dict[str, str] = {}
            for r in sorted(rows, key=lambda row: int(row["serviceid"])):
                key = next((t["value"] for t in r["tags"] if t["tag"] == KEY_TAG), None)
                if key in keys and not self.ledger.owns("service", r["serviceid"]):
                    found.setdefault(key, r["serviceid"])
            return found
        if kind in ("sla", "mediatype", "role", "usergroup", "action"):
            name_field = "name"
            rows = self.client.call(f"{kind}.get", {"output": [ID_FIELDS[kind][:-1], name_field],
                                                    "filter": {name_field: keys}})
            return {r[name_field]: r[ID_FIELDS[kind][:-1]] for r in rows}
        if kind == "user":
            rows = self.client.call("user.get", {"output": ["userid", "username"], "filter": {"username": keys}})
            return {r["username"]: r["userid"] for r in rows}
        if kind in ("httptest", "item", "trigger"):
            field_name = {"httptest": "name", "item": "key_", "trigger": "description"}[kind]
            rows = self.client.call(f"{kind}.get", {"output": [ID_FIELDS[kind][:-1], field_name],
                                                    "selectHosts": ["host"],
                                                    "tags": managed_tags(self.region), "evaltype": 0})
            return {f"{r['hosts'][0]['host']}/{r[field_name]}": r[ID_FIELDS[kind][:-1]] for r in rows if r["hosts"]}
        return {}

    def _create(self, kind: str, batch: list[Change]) -> None:
        build = (lambda c: {"name": c.key}) if kind == "hostgroup" else self._builder("create", kind)
        try:
            answer = self.client.call(f"{kind}.create", [build(c) for c in batch])
        except WriteOutcomeUnknown as exc:
            # Re-read, never re-send blindly: a create that ran is recorded, the rest go again.
            found = self._find(kind, batch)
            for change in batch:
                if change.key in found:
                    self._remember(kind, change, found[change.key])
            self.ledger.save()
            rest = [c for c in batch if c.key not in found]
            log.warning("%s; %d of %d %s creates had been applied (recorded), sending the other %d",
                        exc.message, len(batch) - len(rest), len(batch), kind, len(rest))
            if rest:
                answer = self.client.call(f"{kind}.create", [build(c) for c in rest])
                for change, new_id in zip(rest, answer[ID_FIELDS[kind]], strict=True):
                    self._remember(kind, change, new_id)
            return
        for change, new_id in zip(batch, answer[ID_FIELDS[kind]], strict=True):
            self._remember(kind, change, new_id)

    def run(self, plan: Plan, allow_prune: bool = False) -> ApplyResult:
        total = len(plan.changes)
        if plan.mass_prune and not allow_prune:
            raise HcopsError(
                f"the plan deletes {plan.prunes} of the {plan.owned} objects hcops owns in Zabbix for region "
                f"{plan.region} (more than {int(100 * PRUNE_SHARE)}%): an empty or partial model, most likely",
                "check the region's files; if the deletes are meant, rerun apply with --allow-prune")
        try:
            for action, kind, batch in _batches(plan.changes):
                if action == "delete":
                    ids = [c.actual.id for c in batch if c.actual and c.actual.id]
                    if kind in ("item", "trigger", "httptest"):
                        # Zabbix deletes these with their host or template item: only what is left.
                        id_name = ID_FIELDS[kind][:-1]
                        rows = self.client.call(f"{kind}.get", {"output": [id_name], ID_FIELDS[kind]: ids})
                        left = {r[id_name] for r in rows}
                        gone, ids = [i for i in ids if i not in left], [i for i in ids if i in left]
                        for zid in gone:
                            self.ledger.remove(kind, zid)
                    if ids:
                        self.client.call(f"{kind}.delete", ids)
                    for zid in ids:
                        self.ledger.remove(kind, zid)
                elif action == "create":
                    self._create(kind, batch)
                elif kind != "hostgroup":  # groups have nothing to update: a name is the key
                    build = self._builder(action, kind)
                    self.client.call(f"{kind}.update", [build(c) for c in batch])
                    if self._interfaces:
                        self.client.call("hostinterface.update", self._interfaces)
                        self._interfaces = []
                self.ledger.save()
                self._commit_psks()
                self.result.applied += len(batch)
                log.info("%s %d %s%s (%d/%d)", action, len(batch), kind, "s" if len(batch) != 1 else "",
                         self.result.applied, total)
        except HcopsError as exc:
            self.ledger.save()
            self._new_psks.clear()  # pending keys stay saved: the next run sends them again
            raise type(exc)(f"{exc.message} (stopped after {self.result.applied} of {total} changes)",
                            exc.hint) from None
        return self.result


def _depth(change: Change) -> int:
    """Batches never mix levels: a service's parent, a dependent item's master go first."""
    if change.kind == "service":
        return change.key.count("/")
    if change.kind == "item" and change.desired is not None:
        return 1 if change.desired.fields["master"] else 0
    return 0


def chunk_size(kind: str) -> int:
    raw = os.environ.get("HCOPS_ZABBIX_BATCH")
    if raw:
        try:
            return max(int(raw), 1)
        except ValueError:
            raise HcopsError(f"HCOPS_ZABBIX_BATCH={raw!r} is not a number",
                             "set it to the objects per request, or unset it") from None
    return HOST_CHUNK if kind == "host" else CHUNK


def _batches(changes: list[Change]) -> Iterator[tuple[str, str, list[Change]]]:
    """Consecutive changes with the same action, kind (and service depth), in chunks."""
    batch: list[Change] = []
    for change in changes:
        if batch and ((change.action, change.kind, _depth(change)) != (batch[0].action, batch[0].kind, _depth(batch[0]))
                      or len(batch) >= chunk_size(change.kind)):
            yield batch[0].action, batch[0].kind, batch
            batch = []
        batch.append(change)
    if batch:
        yield batch[0].action, batch[0].kind, batch


def apply_plan(client: ZabbixClient, plan: Plan, actual: State, lookups: Lookups, *,
               ledger: Ledger | None = None, allow_prune: bool = False) -> ApplyResult:
    return Applier(client, plan.region, actual, lookups, ledger=ledger).run(plan, allow_prune=allow_prune)
