"""`hcops monitor plan/apply` against a real Zabbix 6.0: create, idempotence, field diffs, prune, PSK."""

from __future__ import annotations

import pytest

from infra.state import SecretStore
from tests.fixtures.zabbix import ZabbixTestServer
from tests.monitoring.helpers import as_json, changes

pytestmark = pytest.mark.zabbix


def _host(zabbix: ZabbixTestServer, name: str) -> dict:
    rows = zabbix.call("host.get", {
        "filter": {"host": name}, "output": ["hostid", "host", "tls_connect", "tls_accept"],
        "selectInterfaces": ["interfaceid", "ip", "port", "type"], "selectGroups": ["name"],
        "selectParentTemplates": ["host"], "selectTags": ["tag", "value"], "selectMacros": ["macro", "value"],
    })
    assert len(rows) == 1, f"{name}: {rows}"
    return rows[0]


def _psk_in_db(zabbix: ZabbixTestServer, host: str) -> tuple[str, str]:
    identity, key = zabbix.sql(f"SELECT tls_psk_identity, tls_psk FROM hosts WHERE host='{host}'").split()
    return identity, key


def test_plan_apply_and_second_plan_is_empty(zabbix, hcops):
    first = hcops("-o", "json", "monitor", "plan", "--region", "lab")
    assert first.code == 2, first.stderr
    plan = as_json(first.stdout)
    created = changes(plan, "create")
    assert plan["summary"]["create"] == len(created) and plan["summary"]["update"] == 0
    # groups per region, site, county and role; every model host; web checks; service trees; SLAs
    for key in ("hostgroup:hcops/lab", "hostgroup:hcops/lab/site/cloud", "hostgroup:hcops/lab/county/ruijin",
                "hostgroup:hcops/lab/role/mysql", "host:db1", "host:zbx1", "httptest:app1/hcops front https:443",
                "service:lab/platform", "service:lab/platform/appdb/db2", "sla:hcops/lab/records-db"):
        assert key in created, key
    assert created["host:db2"]["fields"]["interface.ip"]["to"] == "10.231.2.12"

    applied = hcops("monitor", "apply", "--region", "lab", "--yes")
    assert applied.code == 0, applied.stderr
    assert f"Applied {len(created)} changes" in applied.stdout

    db1 = _host(zabbix, "db1")
    assert [(i["ip"], i["port"], i["type"]) for i in db1["interfaces"]] == [("10.231.1.11", "10050", "1")]
    assert {t["host"] for t in db1["parentTemplates"]} == {"Linux by Zabbix agent", "MySQL by Zabbix agent 2"}
    assert {"managed-by": "hcops"}.items() <= {t["tag"]: t["value"] for t in db1["tags"]}.items()
    assert {"hcops/lab", "hcops/lab/site/local-dc", "hcops/lab/county/ruijin", "hcops/lab/role/mysql"} <= {
        g["name"] for g in db1["groups"]}
    assert {"macro": "{$MYSQL.DSN}", "value": "hcops"} in db1["macros"]  # the agent-2 session
    app1 = _host(zabbix, "app1")
    assert "Nginx by HTTP" in {t["host"] for t in app1["parentTemplates"]}
    web = zabbix.call("httptest.get", {"hostids": app1["hostid"], "output": ["name"], "selectSteps": ["url"]})
    assert {w["name"]: w["steps"][0]["url"] for w in web} == {
        "hcops front http:80": "http://10.231.2.100:80/", "hcops front https:443": "https://10.231.2.100:443/"}
    # the service tree: platform -> tier -> host, the host leaf matched by the host's problem tag
    leaf = zabbix.call("service.get", {"filter": {"name": "lab/platform/appdb/db1"}, "selectParents": ["name"],
                                       "selectProblemTags": ["tag", "value"]})[0]
    assert [p["name"] for p in leaf["parents"]] == ["lab/platform/appdb"]
    # A host leaf counts only hcops' outage problems of its host (both tags must match: AND), not
    # the templates' `scope: availability` ones (time out of sync, refused connections...).
    assert leaf["problem_tags"] == [{"tag": "hcops-host", "value": "db1"}, {"tag": "hcops-slo", "value": "outage"}]
    outage = zabbix.call("trigger.get", {"hostids": db1["hostid"], "output": ["description", "expression"],
                                         "expandExpression": True, "tags": [{"tag": "hcops-slo", "value": "outage"}],
                                         "selectTags": ["tag", "value"]})
    assert {t["description"] for t in outage} == {"hcops: db1 unreachable (agent silent 3m)", "hcops: db1 MySQL down"}
    web_triggers = zabbix.call("trigger.get", {"hostids": app1["hostid"], "output": ["description", "expression"],
                                               "expandExpression": True, "search": {"description": "hcops front"}})
    by_name = {t["description"]: t["expression"] for t in web_triggers}
    assert by_name["hcops front https:443 failing"] == "last(/app1/web.test.fail[hcops front https:443])<>0"
    # ...and a failing VIP check counts against the platform through a leaf of its own: inside the
    # all-hosts front tier it would count only once both proxies had problems of their own
    vip = zabbix.call("service.get", {"filter": {"name": "lab/platform/front@vip"}, "selectParents": ["name"],
                                      "selectProblemTags": ["tag", "value"]})[0]
    assert [p["name"] for p in vip["parents"]] == ["lab/platform"]
    assert vip["problem_tags"] == [{"tag": "hcops-slo", "value": "outage"}, {"tag": "hcops-vip", "value": "front"}]
    vip_tags = zabbix.call("trigger.get", {"hostids": app1["hostid"], "search": {"description": "https:443 failing"},
                                           "selectTags": ["tag", "value"], "output": ["description"]})[0]["tags"]
    assert {"tag": "hcops-vip", "value": "front"} in vip_tags
    https = zabbix.call("httptest.get", {"hostids": app1["hostid"], "filter": {"name": "hcops front https:443"},
                                         "output": ["verify_peer", "verify_host"]})[0]
    assert https == {"httptestid": https["httptestid"], "verify_peer": "1", "verify_host": "1"}
    cert = zabbix.call("item.get", {"hostids": app1["hostid"], "search": {"key_": "hcops.cert.expires"},
                                    "output": ["key_", "master_itemid", "units"]})
    assert [c["key_"] for c in cert] == ["hcops.cert.expires[front,443]"] and cert[0]["master_itemid"] != "0"
    # backup freshness: the backup host's agent reads what `hcops backup` publishes; a trigger
    # fires after one missed daily run (2 days), or at once if nothing was ever verified (0)
    backup1 = _host(zabbix, "backup1")
    ages = zabbix.call("item.get", {"hostids": backup1["hostid"], "output": ["key_", "type", "units"],
                                    "search": {"key_": "hcops-backup"}})
    assert sorted((a["key_"], a["type"], a["units"]) for a in ages) == [
        (f"vfs.file.contents[/var/lib/hcops-backup/{p}.last-verified]", "0", "unixtime")
        for p in ("appdb-nightly", "pacs-nightly")]  # one per policy: the database and the PACS images
    stale = zabbix.call("trigger.get", {"hostids": backup1["hostid"], "output": ["expression", "priority"],
                                        "expandExpression": True, "search": {"description": "hcops backup"}})
    assert sorted(t["expression"] for t in stale) == [
        f"now()-last(/backup1/vfs.file.contents[/var/lib/hcops-backup/{p}.last-verified])>172800"
        for p in ("appdb-nightly", "pacs-nightly")]
    assert {t["priority"] for t in stale} == {"4"}

    again = hcops("-o", "json", "monitor", "plan", "--region", "lab")
    assert again.code == 0, again.stdout
    assert as_json(again.stdout)["changes"] == []
    calls = int(again.stderr.split("API calls")[0].split()[-1])
    assert calls <= 20
    second_apply = hcops("monitor", "apply", "--region", "lab", "--yes")
    assert second_apply.code == 0 and "no changes" in second_apply.stdout


def test_changed_model_fact_gives_field_level_update(zabbix, hcops, lab_copy):
    assert hcops("monitor", "apply", "--region", "lab", "--yes").code == 0
    before = _host(zabbix, "db2")
    region = lab_copy({
        "sites.yml": ("addresses: {vpc: 10.231.2.12}", "addresses: {vpc: 10.231.2.22}"),
        "services.yml": ("- {port: 80, protocol: http, pool: canary}", "- {port: 8443, protocol: https, pool: canary}"),
        "security.yml": ("ports: [443, 80]", "ports: [443, 8443]"),
    })
    result = hcops("-o", "json", "monitor", "plan", "--region", region)
    assert result.code == 2
    plan = as_json(result.stdout)
    updates = changes(plan, "update")
    assert set(updates["host:db2"]["fields"]) == {"interface.ip"}
    assert updates["host:db2"]["fields"]["interface.ip"] == {"from": "10.231.2.12", "to": "10.231.2.22"}
    # the port 80 check goes, a port 8443 check comes
    assert "httptest:app1/hcops front https:8443" in changes(plan, "create")
    assert "httptest:app1/hcops front http:80" in changes(plan, "delete")
    assert "host:db1" not in updates

    assert hcops("monitor", "apply", "--region", region, "--yes").code == 0
    after = _host(zabbix, "db2")
    assert after["interfaces"][0]["ip"] == "10.231.2.22"
    assert after["interfaces"][0]["interfaceid"] == before["interfaces"][0]["interfaceid"]  # updated, not replaced
    assert hcops("monitor", "plan", "--region", region).code == 0


def test_prune_removes_only_managed_objects(zabbix, hcops, lab_copy):
    # a region with one more host, applied; then the lab without it
    bigger = lab_copy({"sites.yml": ("""      zbx1:""", """      report1:
        roles: [reporting]
        size: {vcpu: 1, ram_gb: 1, disks_gb: [10]}
        addresses: {vpc: 10.231.2.14}
      zbx1:""")})
    assert hcops("monitor", "apply", "--region", bigger, "--yes").code == 0
    # a host someone clicked in by hand, even inside an hcops group, and a hand-made service
    group = zabbix.call("hostgroup.get", {"filter": {"name": "hcops/lab"}, "output": ["groupid"]})[0]["groupid"]
    zabbix.call("host.create", {"host": "legacy-pacs", "groups": [{"groupid": group}, {"groupid": "2"}],
                                "interfaces": [{"type": 1, "main": 1, "useip": 1, "ip": "10.231.1.50",
                                                "dns": "", "port": "10050"}]})
    zabbix.call("service.create", {"name": "hand-made", "algorithm": 1, "sortorder": 0})
    result = hcops("-o", "json", "monitor", "plan", "--region", "lab")
    assert result.code == 2, result.stderr
    plan = as_json(result.stdout)
    assert set(changes(plan, "delete")) == {"host:report1", "hostgroup:hcops/lab/role/reporting",
                                            "trigger:report1/hcops: report1 unreachable (agent silent 3m)"}
    assert plan["summary"] == {"create": 0, "update": 0, "delete": 3, "unchanged": plan["summary"]["unchanged"]}
    assert hcops("monitor", "apply", "--region", "lab", "--yes").code == 0
    hosts = {h["host"] for h in zabbix.call("host.get", {"output": ["host"]})}
    assert "report1" not in hosts
    assert {"legacy-pacs", "db1", "Zabbix server"} <= hosts
    assert zabbix.call("service.get", {"filter": {"name": "hand-made"}, "output": ["name"]})
    assert hcops("monitor", "plan", "--region", "lab").code == 0


def test_psk_sent_on_create_and_on_rotate_only(zabbix, hcops):
    result = hcops("-o", "json", "monitor", "apply", "--region", "lab", "--yes")
    assert result.code == 0
    assert sorted(as_json(result.stdout)["psk_sent"]) == sorted(
        ["collector1", "db1", "backup1", "app1", "app2", "db2", "zbx1"])
    store = SecretStore("lab")
    first_key = store.get("zabbix-psk-db1", "psk")
    assert _psk_in_db(zabbix, "db1") == ("hcops-db1", first_key)
    assert _host(zabbix, "db1")["tls_connect"] == "2"

    plan = as_json(hcops("-o", "json", "monitor", "plan", "--region", "lab", "--rotate-psk").stdout)
    assert set(changes(plan, "update", "host")) == {f"host:{h}" for h in
                                                    ("collector1", "db1", "backup1", "app1", "app2", "db2", "zbx1")}
    rotated = hcops("-o", "json", "monitor", "apply", "--region", "lab", "--yes", "--rotate-psk", "--no-agents")
    assert rotated.code == 0, rotated.stderr
    new_key = store.get("zabbix-psk-db1", "psk")
    assert new_key != first_key and len(new_key) == 64
    assert _psk_in_db(zabbix, "db1") == ("hcops-db1", new_key)
    # a plain apply afterwards sends nothing: the key is write-only and unchanged
    plain = hcops("-o", "json", "monitor", "apply", "--region", "lab", "--yes")
    assert plain.code == 0 and "psk_sent" not in plain.stdout
    assert _psk_in_db(zabbix, "db1")[1] == new_key


def test_apply_stops_at_first_api_error(zabbix, hcops):
    # Zabbix refuses a second host with the visible name "db2": the host batch fails.
    zabbix.call("host.create", {"host": "legacy-db", "name": "db2", "groups": [{"groupid": "2"}]})
    result = hcops("monitor", "apply", "--region", "lab", "--yes")
    assert result.code == 1
    assert "Zabbix API error in host.create" in result.stderr and "db2" in result.stderr
    # the 13 host groups (region, sites, county, roles: pacs included) and the local data
    # center's proxy went before the error
    assert "stopped after 14 of" in result.stderr and "Traceback" not in result.stderr
    # groups (before the error) exist; nothing after it was sent
    assert zabbix.call("hostgroup.get", {"filter": {"name": "hcops/lab"}, "output": ["groupid"]})
    assert not zabbix.call("service.get", {"output": ["serviceid"]})
    assert not zabbix.call("sla.get", {"output": ["slaid"]})


def test_unmanaged_host_with_a_model_name_is_refused(zabbix, hcops):
    zabbix.call("host.create", {"host": "db1", "groups": [{"groupid": "2"}]})
    result = hcops("monitor", "plan", "--region", "lab")
    assert result.code == 1
    assert "db1 exist in Zabbix but are not managed by hcops" in result.stderr
    assert "managed-by: hcops" in result.stderr


def test_apply_without_yes_is_refused_when_not_interactive(zabbix, hcops):
    result = hcops("monitor", "apply", "--region", "lab")
    assert result.code == 1 and "--yes" in result.stderr
    assert not zabbix.call("host.get", {"output": ["host"], "filter": {"host": "db1"}})
