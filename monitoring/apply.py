"""Carry out a plan against the API: batched, in plan order, stopping at the first error.

Changes of one kind and action go out together (`host.create` takes a list), in chunks, so a
10,000-host first sync is a few dozen requests rather than 10,000. Within an update only the
fields that differ are sent; a field that Zabbix replaces as a whole (groups, templates, tags,
macros, interfaces, steps, parents) is sent whole. Templates a host no longer needs are
cleared (`templates_clear`), so their items go with them.

PSKs are write-only: sent when a host is created, when its encryption settings change, and
with `rotate_psk` (a new key is generated, sent, and stored only once Zabbix accepted it, so
the secret store never holds a key Zabbix does not).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.state import SecretStore
from inventories.errors import HcopsError
from monitoring import burnrate
from monitoring.actual import Lookups
from monitoring.client import ZabbixClient
from monitoring.diff import Change, Plan
from monitoring.objects import PSK_IDENTITY, PSK_SECRET, State

log = logging.getLogger("hcops.monitoring")
CHUNK = 500
STEP_NAME = "GET /"


@dataclass
class Ids:
    """Zabbix ids by hcops key, filled from the actual state and as objects are created."""

    groups: dict[str, str] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)


@dataclass
class ApplyResult:
    applied: int = 0
    psk_sent: list[str] = field(default_factory=list)


def _tags(pairs: Any) -> list[dict[str, str]]:
    return [{"tag": t, "value": v} for t, v in pairs]


def _opt_tags(triples: Any) -> list[dict[str, str]]:
    return [{"tag": t, "operator": op, "value": v} for t, op, v in triples]


class Applier:
    def __init__(self, client: ZabbixClient, region: str, actual: State, lookups: Lookups) -> None:
        self.client = client
        self.region = region
        self.store = SecretStore(region)
        self.ids = Ids(templates=dict(lookups.templates))
        self.ids.groups = {k: o.id for k, o in actual.objects["hostgroup"].items() if o.id}
        self.ids.hosts = {k: o.id for k, o in actual.objects["host"].items() if o.id}
        self.ids.services = {k: o.id for k, o in actual.objects["service"].items() if o.id}
        self.result = ApplyResult()
        self._new_psks: dict[str, str] = {}

    # ---- PSK ------------------------------------------------------------------------------
    def _psk(self, host: str, rotate: bool) -> dict[str, str]:
        if rotate:
            key = secrets.token_hex(32)
            self._new_psks[host] = key
        else:
            key = self.store.get(PSK_SECRET.format(host=host), "psk")
        self.result.psk_sent.append(host)
        return {"tls_psk_identity": PSK_IDENTITY.format(host=host), "tls_psk": key}

    def _commit_psks(self) -> None:
        for host, key in self._new_psks.items():
            self.store.set(PSK_SECRET.format(host=host), key)
        self._new_psks.clear()

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
            **self._psk(ch.key, rotate=False),
        }

    def _host_update(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None and ch.actual is not None
        f, changed = ch.desired.fields, ch.fields
        out: dict[str, Any] = {"hostid": ch.actual.id}
        for name in ("name", "status", "description"):
            if name in changed:
                out[name] = f[name]
        if "groups" in changed:
            out["groups"] = [{"groupid": self.ids.groups[g]} for g in f["groups"]]
        if "templates" in changed:
            out["templates"] = [{"templateid": self.ids.templates[t]} for t in f["templates"]]
            linked: dict[str, str] = ch.actual.extra.get("template_names", {})
            cleared = [{"templateid": tid} for name, tid in linked.items() if name not in f["templates"]]
            if cleared:
                out["templates_clear"] = cleared
        if "tags" in changed:
            out["tags"] = _tags(f["tags"])
        if "macros" in changed:
            out["macros"] = [{"macro": m, "value": v} for m, v in f["macros"]]
        if "interface.ip" in changed or "interface.port" in changed:
            out["interfaces"] = [self._interface(f, ch.actual.extra.get("interfaceid"))]
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
                "retries": f["retries"], "verify_peer": f["verify_peer"], "tags": _tags(f["tags"]),
                "steps": [self._step(f, None)]}

    def _httptest_update(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None and ch.actual is not None
        f, changed = ch.desired.fields, ch.fields
        out: dict[str, Any] = {"httptestid": ch.actual.id}
        for name in ("delay", "retries", "verify_peer"):
            if name in changed:
                out[name] = f[name]
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
        out: dict[str, Any] = {"serviceid": ch.actual.id}
        for name in ("name", "algorithm", "sortorder"):
            if name in changed:
                out[name] = f[name]
        if "tags" in changed:
            out["tags"] = _tags(f["tags"])
        if "problem_tags" in changed:
            out["problem_tags"] = _opt_tags(f["problem_tags"])
        if "parent" in changed:
            out["parents"] = self._parents(f["parent"])
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

    # ---- burn-rate items and triggers (monitoring/burnrate.py) ------------------------------
    def _item_create(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None
        return burnrate.item_create(self.client, self.ids.hosts, ch.desired.fields)

    def _item_update(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None and ch.actual is not None and ch.actual.id
        return burnrate.item_update(ch.actual.id, ch.desired.fields, set(ch.fields))

    def _trigger_create(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None
        return burnrate.trigger_create(ch.desired.fields)

    def _trigger_update(self, ch: Change) -> dict[str, Any]:
        assert ch.desired is not None and ch.actual is not None and ch.actual.id
        return burnrate.trigger_update(ch.actual.id, ch.desired.fields, set(ch.fields))

    # ---- running --------------------------------------------------------------------------
    def _builder(self, action: str, kind: str) -> Callable[[Change], dict[str, Any]]:
        return getattr(self, f"_{kind}_{action}")  # type: ignore[no-any-return]

    def _remember(self, kind: str, batch: list[Change], answer: dict[str, Any]) -> None:
        id_field = {"hostgroup": "groupids", "host": "hostids", "service": "serviceids"}.get(kind)
        if id_field is None:
            return
        target = {"hostgroup": self.ids.groups, "host": self.ids.hosts, "service": self.ids.services}[kind]
        for change, new_id in zip(batch, answer[id_field], strict=True):
            target[change.key] = str(new_id)

    def run(self, plan: Plan) -> ApplyResult:
        total = len(plan.changes)
        try:
            for action, kind, batch in _batches(plan.changes):
                if action == "delete":
                    self.client.call(f"{kind}.delete", [c.actual.id for c in batch if c.actual])
                elif kind == "hostgroup":  # groups have nothing to update: a name is the key
                    answer = self.client.call("hostgroup.create", [{"name": c.key} for c in batch])
                    self._remember(kind, batch, answer)
                else:
                    build = self._builder(action, kind)
                    answer = self.client.call(f"{kind}.{action}", [build(c) for c in batch])
                    if action == "create":
                        self._remember(kind, batch, answer)
                self._commit_psks()
                self.result.applied += len(batch)
                log.info("%s %d %s%s (%d/%d)", action, len(batch), kind, "s" if len(batch) != 1 else "",
                         self.result.applied, total)
        except HcopsError as exc:
            self._new_psks.clear()
            raise HcopsError(f"{exc.message} (stopped after {self.result.applied} of {total} changes)",
                             exc.hint) from None
        return self.result


def _depth(change: Change) -> int:
    return change.key.count("/") if change.kind == "service" else 0


def _batches(changes: list[Change]) -> Iterator[tuple[str, str, list[Change]]]:
    """Consecutive changes with the same action, kind (and service depth), in chunks."""
    batch: list[Change] = []
    for change in changes:
        if batch and ((change.action, change.kind, _depth(change)) != (batch[0].action, batch[0].kind, _depth(batch[0]))
                      or len(batch) >= CHUNK):
            yield batch[0].action, batch[0].kind, batch
            batch = []
        batch.append(change)
    if batch:
        yield batch[0].action, batch[0].kind, batch


def apply_plan(client: ZabbixClient, plan: Plan, actual: State, lookups: Lookups) -> ApplyResult:
    return Applier(client, plan.region, actual, lookups).run(plan)
