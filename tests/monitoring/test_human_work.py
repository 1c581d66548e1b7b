"""A shared Zabbix: hcops changes only what it created and keeps what people added (issue 16).

Each case was reproduced against the real test Zabbix before the fix: a UI clone of a managed
host was deleted, prefix-named groups and SLAs were pruned, a person's template was unlinked
and cleared, people's groups, tags, macros and SNMP interface were dropped, a person's parent
service was unlinked, an operator's disable was undone, and an empty model pruned everything.
"""

from __future__ import annotations

import json

import pytest

from inventories.errors import HcopsError
from monitoring.apply import apply_plan
from monitoring.client import ZabbixClient, resolve_connection
from monitoring.diff import make_plan
from monitoring.ledger import Ledger
from monitoring.objects import State
from monitoring.sync import plan_region
from tests.fixtures.zabbix import ZabbixTestServer
from tests.monitoring.helpers import as_json, changes

pytestmark = pytest.mark.zabbix


def _hostid(zabbix: ZabbixTestServer, name: str) -> str:
    return str(zabbix.call("host.get", {"filter": {"host": name}, "output": ["hostid"]})[0]["hostid"])


def test_people_work_in_the_same_zabbix_survives_a_sync(zabbix, hcops, lab_copy):
    assert hcops("monitor", "apply", "--region", "lab", "--yes").code == 0
    db2 = _hostid(zabbix, "db2")
    # A UI clone of a managed host: same tags, same groups, another name.
    row = zabbix.call("host.get", {"hostids": db2, "output": ["host"], "selectTags": ["tag", "value"],
                                   "selectGroups": ["groupid"]})[0]
    zabbix.call("host.create", {"host": "db2-clone", "groups": row["groups"], "tags": row["tags"]})
    # A person's group and SLA named under the region's prefix.
    zabbix.call("hostgroup.create", {"name": "hcops/lab/pacs-team"})
    zabbix.call("sla.create", {"name": "hcops/lab/pacs-reading", "slo": "99.9", "period": 2, "timezone": "UTC",
                               "effective_date": 1767225600,
                               "service_tags": [{"tag": "pacs", "value": "x"}]})
    # On a managed host: a template, a group, a tag, a secret macro and an SNMP interface of a person.
    icmp = zabbix.call("template.get", {"filter": {"host": "ICMP Ping"}, "output": ["templateid"]})[0]["templateid"]
    current = zabbix.call("host.get", {"hostids": db2, "selectParentTemplates": ["templateid"],
                                       "selectGroups": ["groupid"], "selectTags": ["tag", "value"],
                                       "output": ["hostid"]})[0]
    zabbix.call("host.update", {"hostid": db2, "templates": current["parentTemplates"] + [{"templateid": icmp}],
                                "groups": current["groups"] + [{"groupid": "2"}],
                                "tags": current["tags"] + [{"tag": "owner", "value": "pacs-team"}]})
    zabbix.call("usermacro.create", {"hostid": db2, "macro": "{$PACS.SECRET}", "value": "s3cret", "type": 1})
    zabbix.call("hostinterface.create", {"hostid": db2, "type": 2, "main": 1, "useip": 1, "ip": "10.231.2.99",
                                         "dns": "", "port": "161",
                                         "details": {"version": 2, "community": "{$SNMP_COMMUNITY}"}})
    icmp_items = {i["itemid"] for i in zabbix.call("item.get", {"hostids": db2, "search": {"key_": "icmpping"},
                                                                "output": ["itemid"]})}
    assert len(icmp_items) == 3  # icmpping, icmppingloss, icmppingsec: the person's template's items
    # A person's parent service above an hcops service, and an operator's disable.
    platform = zabbix.call("service.get", {"filter": {"name": "lab/platform"}, "output": ["serviceid"]})[0]
    zabbix.call("service.create", {"name": "Hospital overview", "algorithm": 1, "sortorder": 0,
                                   "children": [{"serviceid": platform["serviceid"]}]})
    zabbix.call("host.update", {"hostid": _hostid(zabbix, "app2"), "status": 1})

    # The model changes db2's address and its templates (it stops being a database: role dropped).
    region = lab_copy({"sites.yml": ("addresses: {vpc: 10.231.2.12}", "addresses: {vpc: 10.231.2.22}")})
    result = hcops("-o", "json", "monitor", "plan", "--region", region)
    assert result.code == 2, result.stderr
    plan = as_json(result.stdout)
    assert set(changes(plan)) == {"host:db2"}, json.dumps(plan["changes"])  # no clone, group, SLA, service
    assert set(changes(plan)["host:db2"]["fields"]) == {"interface.ip"}
    assert any("app2 was disabled by an operator" in n for n in plan["notes"])
    assert hcops("monitor", "apply", "--region", region, "--yes").code == 0

    host = zabbix.call("host.get", {"hostids": db2, "output": ["status"], "selectInterfaces": ["type", "ip"],
                                    "selectGroups": ["groupid"], "selectParentTemplates": ["templateid"],
                                    "selectTags": ["tag", "value"], "selectMacros": ["macro", "type"]})[0]
    assert sorted((i["type"], i["ip"]) for i in host["interfaces"]) == [("1", "10.231.2.22"), ("2", "10.231.2.99")]
    assert icmp in {t["templateid"] for t in host["parentTemplates"]}
    assert icmp_items <= {i["itemid"] for i in zabbix.call("item.get", {"hostids": db2, "output": ["itemid"]})}
    assert "2" in {g["groupid"] for g in host["groups"]}
    assert {"tag": "owner", "value": "pacs-team"} in host["tags"]
    assert {"macro": "{$PACS.SECRET}", "type": "1"} in host["macros"]
    assert zabbix.sql("SELECT value FROM hostmacro WHERE macro='{$PACS.SECRET}'").strip() == "s3cret"
    assert zabbix.call("host.get", {"filter": {"host": "db2-clone"}, "output": ["hostid"]})
    assert zabbix.call("hostgroup.get", {"filter": {"name": "hcops/lab/pacs-team"}, "output": ["groupid"]})
    assert zabbix.call("sla.get", {"filter": {"name": "hcops/lab/pacs-reading"}, "output": ["slaid"]})
    parents = zabbix.call("service.get", {"serviceids": platform["serviceid"], "selectParents": ["name"]})[0]
    assert [p["name"] for p in parents["parents"]] == ["Hospital overview"]
    assert zabbix.call("host.get", {"filter": {"host": "app2"}, "output": ["status"]})[0]["status"] == "1"
    assert hcops("monitor", "plan", "--region", region).code == 0

    # Only when told: the operator's disable is undone.
    forced = as_json(hcops("-o", "json", "monitor", "plan", "--region", region, "--enable-disabled").stdout)
    assert changes(forced)["host:app2"]["fields"]["status"] == {"from": "1", "to": "0"}

    # Dropping a role unlinks and clears hcops' template only; the person's ICMP Ping stays linked.
    no_db = lab_copy({"sites.yml": ("      db2:\n        roles: [mysql]", "      db2:\n        roles: [app]"),
                      "services.yml": ("replicas: [db2]", "replicas: []")})
    dropped = hcops("monitor", "apply", "--region", no_db, "--yes")
    assert dropped.code == 0, dropped.stderr
    linked = zabbix.call("host.get", {"hostids": db2, "selectParentTemplates": ["host"], "output": ["hostid"]})[0]
    assert {t["host"] for t in linked["parentTemplates"]} == {"Linux by Zabbix agent", "ICMP Ping"}
    assert icmp_items <= {i["itemid"] for i in zabbix.call("item.get", {"hostids": db2, "output": ["itemid"]})}


def test_a_mass_prune_is_refused_and_a_lost_ledger_needs_adopt(zabbix, hcops, monkeypatch):
    from inventories.loader import load_region

    assert hcops("monitor", "apply", "--region", "lab", "--yes").code == 0
    region = load_region("lab")
    client = ZabbixClient.connect(resolve_connection(region))
    planned = plan_region(client, region)
    # An empty model (a file left out, a wrong directory): everything would go.
    empty = make_plan("lab", State(), planned.actual, planned.lookups)
    assert empty.mass_prune and empty.prunes == planned.lookups.owned_total
    with pytest.raises(HcopsError) as refused:
        apply_plan(client, empty, planned.actual, planned.lookups, ledger=planned.ledger)
    assert "--allow-prune" in refused.value.hint and "empty or partial model" in refused.value.message
    assert zabbix.call("host.get", {"filter": {"host": "db1"}, "output": ["hostid"]})  # nothing was deleted

    # The ledger is lost: hcops' marked objects are no longer its own, and it says how to adopt them.
    ledger = Ledger("lab")
    ledger.path.unlink()
    lost = hcops("monitor", "plan", "--region", "lab")
    assert lost.code == 1 and "--adopt" in lost.stderr and "Traceback" not in lost.stderr
    # A duplicate left by an old retried create: adopt takes one, plans the other as a delete.
    front = zabbix.call("service.get", {"filter": {"name": "lab/platform/front"}, "selectTags": ["tag", "value"],
                                        "selectParents": ["serviceid"], "selectProblemTags": ["tag", "value"],
                                        "output": ["name", "algorithm", "sortorder"]})[0]
    dup = zabbix.call("service.create", {"name": front["name"], "algorithm": front["algorithm"], "sortorder": 0,
                                         "tags": front["tags"], "parents": front["parents"]})["serviceids"][0]
    adopt = as_json(hcops("-o", "json", "monitor", "plan", "--region", "lab", "--adopt").stdout)
    assert set(changes(adopt)) == {f"service:lab/platform/front (duplicate id {dup})"}
    assert hcops("monitor", "apply", "--region", "lab", "--yes", "--adopt").code == 0
    assert not zabbix.call("service.get", {"serviceids": [dup], "output": ["serviceid"]})
    assert hcops("monitor", "plan", "--region", "lab").code == 0
    owned = json.loads(ledger.path.read_text())["owned"]
    assert oct(ledger.path.stat().st_mode & 0o777) == "0o600"
    assert sorted(owned["host"].values()) == sorted(region.hosts) and dup not in owned["service"]
