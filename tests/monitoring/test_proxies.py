"""Remote sites' Zabbix proxies against a real Zabbix 6.0: created with the role's PSK, the site's
hosts assigned to them, a person's proxy left alone, and a site made local again moved back to
the server before its proxy goes (Zabbix refuses to delete a proxy that still has hosts)."""

from __future__ import annotations

import pytest

from infra.state import SecretStore
from tests.fixtures.zabbix import ZabbixTestServer
from tests.monitoring.helpers import as_json, changes

pytestmark = pytest.mark.zabbix
PROXY = "hcops-lab-local-dc"
LOCAL_DC = {"collector1", "db1", "backup1"}
CLOUD = {"app1", "app2", "db2", "zbx1"}
MODEL_LINE = "    monitoring_proxy: {host: collector1, offline_buffer_h: 24, config_frequency_s: 60}\n"


def _proxies(zabbix: ZabbixTestServer) -> dict[str, dict]:  # type: ignore[type-arg]
    rows = zabbix.call("proxy.get", {"output": ["proxyid", "host", "status", "tls_connect", "tls_accept",
                                                "proxy_address", "description"]})
    return {r["host"]: r for r in rows}


def _assigned(zabbix: ZabbixTestServer) -> dict[str, str]:
    rows = zabbix.call("host.get", {"output": ["host", "proxy_hostid"], "filter": {"host": sorted(LOCAL_DC | CLOUD)}})
    return {r["host"]: r["proxy_hostid"] for r in rows}


def test_a_remote_site_reports_through_its_proxy(zabbix, hcops, lab_copy):  # type: ignore[no-untyped-def]
    first = hcops("-o", "json", "monitor", "plan", "--region", "lab")
    assert first.code == 2, first.stderr
    created = changes(as_json(first.stdout), "create")
    assert created[f"proxy:{PROXY}"]["fields"]["proxy_address"]["to"] == "10.231.1.10"
    assert created["host:db1"]["fields"]["proxy"]["to"] == PROXY
    assert created["host:db2"]["fields"]["proxy"]["to"] == ""
    assert hcops("monitor", "apply", "--region", "lab", "--yes").code == 0

    proxy = _proxies(zabbix)[PROXY]
    # active (5), PSK accepted from the proxy (2), and only from the proxy host's address
    assert (proxy["status"], proxy["tls_connect"], proxy["tls_accept"], proxy["proxy_address"]) == (
        "5", "1", "2", "10.231.1.10")
    identity, key = zabbix.sql(f"SELECT tls_psk_identity, tls_psk FROM hosts WHERE host='{PROXY}'").split()
    assert (identity, key) == ("hcops-proxy-local-dc", SecretStore("lab").get("zabbix-psk-proxy-local-dc", "psk"))
    assigned = _assigned(zabbix)
    assert {h for h, pid in assigned.items() if pid == proxy["proxyid"]} == LOCAL_DC
    assert {h for h, pid in assigned.items() if pid == "0"} == CLOUD
    again = hcops("-o", "json", "monitor", "plan", "--region", "lab")
    assert again.code == 0 and as_json(again.stdout)["changes"] == [], again.stdout

    # A person's proxy under the same name prefix is not hcops' (the ledger lists ids, not names).
    theirs = zabbix.call("proxy.create", {"host": "hcops-lab-their-site", "status": 5})["proxyids"][0]
    assert hcops("monitor", "plan", "--region", "lab").code == 0

    # The site no longer remote: its hosts go back to the server first, then the proxy goes.
    local = lab_copy({"sites.yml": (MODEL_LINE, "")})
    plan = hcops("-o", "json", "monitor", "plan", "--region", local)
    assert plan.code == 2, plan.stderr
    steps = [(c["action"], f"{c['kind']}:{c['key']}") for c in as_json(plan.stdout)["changes"]]
    assert ("delete", f"proxy:{PROXY}") in steps
    moved = [s for s in steps if s[0] == "update" and s[1].split(":")[1] in LOCAL_DC]
    assert len(moved) == len(LOCAL_DC) and all(steps.index(m) < steps.index(("delete", f"proxy:{PROXY}"))
                                               for m in moved)
    applied = hcops("monitor", "apply", "--region", local, "--yes")
    assert applied.code == 0, applied.stderr
    assert set(_assigned(zabbix).values()) == {"0"}
    left = _proxies(zabbix)
    assert PROXY not in left and left["hcops-lab-their-site"]["proxyid"] == theirs


VPC = "      vpc: {cidr: 10.231.2.0/24, purpose: app, vlan: 201}\n"


@pytest.mark.parametrize(("old", "new", "said"), [
    (MODEL_LINE, MODEL_LINE.replace("collector1", "app1"), "host 'app1' is not a host of site 'local-dc'"),
    (VPC, VPC + "    monitoring_proxy: {host: app1}\n", "site 'cloud' holds the Zabbix server"),
])
def test_a_proxy_the_model_cannot_use_is_refused(hcops, lab_copy, old, new, said):  # type: ignore[no-untyped-def]
    region = lab_copy({"sites.yml": (old, new)})
    result = hcops("monitor", "plan", "--region", region)
    assert result.code == 1 and "Traceback" not in result.stderr
    assert said in result.stderr
    assert "sites.yml" in result.stderr  # where: the file (and line) of the bad value
