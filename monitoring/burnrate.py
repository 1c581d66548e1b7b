"""Burn-rate items and triggers for every SLO, generated from the model as Sloth generates
Prometheus rules from an SLO spec, and synced by `hcops monitor apply` with everything else.

On the prober host (the model's `services.<canary>.prober`):
- one agent item per SLO reads the prober's last result (`<state>/last/<slo>.json`); a result
  older than three probe intervals counts as a failure (a dead prober is not a healthy service);
- one calculated item per SLO and window holds the burn rate, `(1 - avg(probe, window)) / (1 - target)`;
- one trigger per SLO and alert rule of the SRE workbook fires when both its windows burn at
  least at its factor (page: 1h & 5m at 14.4x, 6h & 30m at 6x; ticket: 3d & 6h at 1x).

Kept in this module so that `desired`, `actual` and `apply` each gain one call.
"""

from __future__ import annotations

from typing import Any

from dr.availability.burn import WINDOWS, _span
from inventories.model import Region
from inventories.probes import prober
from monitoring.client import ZabbixClient
from monitoring.objects import KEY_TAG, MANAGED_TAG, REGION_TAG, Obj, State, managed_tags, tags

STATE_DIR = "/var/lib/hcops-prober"  # playbooks/roles/canary: canary_prober_state_dir
ITEM_AGENT, ITEM_CALCULATED = "0", "15"
VALUE_FLOAT, VALUE_UNSIGNED = "0", "3"
PREPROC_JS = "21"
PRIORITY = {"page": "4", "ticket": "2"}  # high, warning
SLO_TAG = "hcops-slo"
CHECK_JS = ("var o = JSON.parse(value);\n"
            "if (Date.now() / 1000 - o.t > 900) { return 2; }\n"
            "return o.failing ? 1 : 0;")


def probe_key(slo: str) -> str:
    return f'vfs.file.contents["{STATE_DIR}/last/{slo}.json"]'


def check_key() -> str:
    return f'vfs.file.contents["{STATE_DIR}/check.json"]'


def burn_key(slo: str, seconds: int) -> str:
    return f"hcops.burn[{slo},{_span(seconds)}]"


def _js(stale_s: float) -> str:
    return ("var o = JSON.parse(value);\n"
            f"if (Date.now() / 1000 - o.t > {stale_s:g}) {{ return 0; }}\n"
            "return o.ok ? 1 : 0;")


def desired(region: Region) -> list[Obj]:
    found = prober(region)
    if found is None or found.host not in region.hosts:
        return []
    host = found.host
    out: list[Obj] = []
    # The playbooks' SLO check (hcops-slo-check.timer) writes check.json: 0 ok, 1 failing, 2 stale.
    region_tags = (MANAGED_TAG, (REGION_TAG, region.name), ("scope", "slo"))
    out.append(Obj("item", f"{host}/{check_key()}", {
        "host": host, "name": "hcops SLO check (0 ok, 1 budget exhausted or page burn, 2 check stale)",
        "key_": check_key(), "type": ITEM_AGENT, "value_type": VALUE_UNSIGNED, "delay": "1m", "params": "",
        "units": "", "preprocessing": ((PREPROC_JS, CHECK_JS),),
        "tags": tags(*region_tags, (KEY_TAG, f"{host}/{check_key()}")),
    }))
    out.append(Obj("trigger", f"{host}/slo-check", {
        "description": f"hcops {region.name}: SLO check failing (budget exhausted or page-level burn) or stale",
        "expression": f"last(/{host}/{check_key()})>=1", "priority": PRIORITY["page"],
        "tags": tags(*region_tags, (KEY_TAG, f"{host}/slo-check")),
    }))
    for slo_name, slo in region.slos.items():
        base = (MANAGED_TAG, (REGION_TAG, region.name), (SLO_TAG, slo_name), ("scope", "slo"))
        raw = probe_key(slo_name)
        out.append(Obj("item", f"{host}/{raw}", {
            "host": host, "name": f"hcops SLO {slo_name}: probe of {slo.service} (1 up, 0 down)", "key_": raw,
            "type": ITEM_AGENT, "value_type": VALUE_UNSIGNED, "delay": f"{found.interval_s:g}s", "params": "",
            "units": "", "preprocessing": ((PREPROC_JS, _js(3 * found.interval_s)),),
            "tags": tags(*base, (KEY_TAG, f"{host}/{raw}")),
        }))
        budget = (100.0 - slo.target) / 100.0
        seconds = sorted({s for w in WINDOWS for s in (w.long_s, w.short_s)})
        for span in seconds:
            key = burn_key(slo_name, span)
            out.append(Obj("item", f"{host}/{key}", {
                "host": host, "name": f"hcops SLO {slo_name}: burn rate over {_span(span)}", "key_": key,
                "type": ITEM_CALCULATED, "value_type": VALUE_FLOAT, "delay": "30s",
                "params": f"(1-avg(//{raw},{_span(span)}))/{budget:g}", "units": "x", "preprocessing": (),
                "tags": tags(*base, (KEY_TAG, f"{host}/{key}")),
            }))
        for win in WINDOWS:
            key = f"{host}/{slo_name}/{win.severity} {_span(win.long_s)}+{_span(win.short_s)}"
            expression = (f"last(/{host}/{burn_key(slo_name, win.long_s)})>={win.factor:g} and "
                          f"last(/{host}/{burn_key(slo_name, win.short_s)})>={win.factor:g}")
            out.append(Obj("trigger", key, {
                "description": (f"hcops {region.name}/{slo_name}: error budget burning at {win.factor:g}x or more "
                                f"({_span(win.long_s)} and {_span(win.short_s)}), {win.severity}"),
                "expression": expression, "priority": PRIORITY[win.severity],
                "tags": tags(*base, (KEY_TAG, key), ("severity", win.severity)),
            }))
    return out


def _key(row: dict[str, Any], fallback: str) -> str:
    return next((t["value"] for t in row.get("tags", []) if t["tag"] == KEY_TAG), fallback)


def read_actual(client: ZabbixClient, region: str, state: State) -> None:
    """Items and triggers hcops owns in this region (by tag), into `state`."""
    host_names = {o.id: k for k, o in state.objects["host"].items() if o.id}
    rows = client.call("item.get", {
        "output": ["itemid", "hostid", "name", "key_", "type", "value_type", "delay", "params", "units"],
        "tags": managed_tags(region), "evaltype": 0, "selectTags": ["tag", "value"],
        "selectPreprocessing": ["type", "params"],
    })
    for row in rows:
        host = host_names.get(row["hostid"], f"hostid:{row['hostid']}")
        state.add(Obj("item", _key(row, f"{host}/{row['key_']}"), {
            "host": host, "name": row["name"], "key_": row["key_"], "type": row["type"],
            "value_type": row["value_type"], "delay": row["delay"], "params": row["params"], "units": row["units"],
            "preprocessing": tuple((p["type"], p["params"]) for p in row.get("preprocessing", [])),
            "tags": tags(*((t["tag"], t.get("value", "")) for t in row["tags"])),
        }, id=row["itemid"]))
    rows = client.call("trigger.get", {
        "output": ["triggerid", "description", "expression", "priority"], "expandExpression": True,
        "tags": managed_tags(region), "evaltype": 0, "selectTags": ["tag", "value"],
    })
    for row in rows:
        state.add(Obj("trigger", _key(row, f"triggerid:{row['triggerid']}"), {
            "description": row["description"], "expression": row["expression"], "priority": row["priority"],
            "tags": tags(*((t["tag"], t.get("value", "")) for t in row["tags"])),
        }, id=row["triggerid"]))


def _tag_list(pairs: Any) -> list[dict[str, str]]:
    return [{"tag": t, "value": v} for t, v in pairs]


def _preprocessing(steps: Any) -> list[dict[str, str]]:
    return [{"type": t, "params": p, "error_handler": "0", "error_handler_params": ""} for t, p in steps]


def item_create(client: ZabbixClient, host_ids: dict[str, str], fields: dict[str, Any]) -> dict[str, Any]:
    hostid = host_ids[fields["host"]]
    out: dict[str, Any] = {"hostid": hostid, "name": fields["name"], "key_": fields["key_"], "type": fields["type"],
                           "value_type": fields["value_type"], "delay": fields["delay"], "units": fields["units"],
                           "tags": _tag_list(fields["tags"]), "preprocessing": _preprocessing(fields["preprocessing"])}
    if fields["type"] == ITEM_CALCULATED:
        out["params"] = fields["params"]
    else:
        ifaces = client.call("hostinterface.get", {"output": ["interfaceid"], "hostids": [hostid],
                                                   "filter": {"type": 1, "main": 1}})
        if ifaces:
            out["interfaceid"] = ifaces[0]["interfaceid"]
    return out


def item_update(itemid: str, fields: dict[str, Any], changed: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"itemid": itemid}
    for name in changed - {"host", "key_"}:
        if name == "tags":
            out["tags"] = _tag_list(fields["tags"])
        elif name == "preprocessing":
            out["preprocessing"] = _preprocessing(fields["preprocessing"])
        else:
            out[name] = fields[name]
    return out


def trigger_create(fields: dict[str, Any]) -> dict[str, Any]:
    return {"description": fields["description"], "expression": fields["expression"],
            "priority": fields["priority"], "tags": _tag_list(fields["tags"])}


def trigger_update(triggerid: str, fields: dict[str, Any], changed: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"triggerid": triggerid}
    for name in changed:
        out[name] = _tag_list(fields["tags"]) if name == "tags" else fields[name]
    return out
