"""Alerts that reach people: on-call from the model becomes media types, a role, user groups,
users and an escalating action in a real Zabbix; bad on-call input is refused clearly; the
receiver records pages; values received for a host are counted for the link-cut drill."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from inventories.loader import load_region
from monitoring.client import ZabbixClient, resolve_connection
from monitoring.readback import lost_between, values_received
from monitoring.receiver import make_server, read_alerts
from tests.monitoring.helpers import as_json, changes


@pytest.mark.zabbix
def test_oncall_model_becomes_users_groups_media_and_an_escalating_action(zabbix, hcops, lab_copy):
    assert hcops("monitor", "apply", "--region", "lab", "--yes").code == 0
    hook = zabbix.call("mediatype.get", {"filter": {"name": "hcops/lab/webhook"}, "output": "extend",
                                         "selectMessageTemplates": ["recovery", "subject"]})[0]
    assert hook["type"] == "4" and "HttpRequest" in hook["script"]
    assert {"name": "url", "value": "http://127.0.0.1:8025/alerts"} in hook["parameters"]
    assert {m["recovery"] for m in hook["message_templates"]} == {"0", "1", "2"}
    users = {u["username"]: u for u in zabbix.call("user.get", {
        "output": ["username", "roleid"], "search": {"username": "hcops-lab-"}, "startSearch": True,
        "selectMedias": ["sendto", "severity", "mediatypeid"], "selectUsrgrps": ["name", "gui_access"]})}
    assert set(users) == {"hcops-lab-duty-engineer", "hcops-lab-dba", "hcops-lab-sync"}  # + the sync's own user
    duty = users["hcops-lab-duty-engineer"]
    # average + high + disaster = 8 + 16 + 32; the phone goes to the gateway
    assert [(m["sendto"], m["severity"], m["mediatypeid"]) for m in duty["medias"]] == [
        ("+86 797 000 0001", "56", hook["mediatypeid"])]
    assert [(g["name"], g["gui_access"]) for g in duty["usrgrps"]] == [("hcops/lab/oncall/first-line", "3")]
    rights = zabbix.call("usergroup.get", {"filter": {"name": "hcops/lab/oncall/first-line"},
                                           "selectRights": ["id", "permission"], "output": ["name"]})[0]["rights"]
    region_group = zabbix.call("hostgroup.get", {"filter": {"name": "hcops/lab"}, "output": ["groupid"]})[0]
    assert rights == [{"id": region_group["groupid"], "permission": "2"}]  # read: enough to be paged
    action = zabbix.call("action.get", {"filter": {"name": "hcops/lab/page"}, "selectOperations": "extend",
                                        "selectFilter": "extend", "selectRecoveryOperations": "extend",
                                        "output": "extend"})[0]
    steps = sorted((int(o["esc_step_from"]), [g["usrgrpid"] for g in o["opmessage_grp"]], bool(o["opconditions"]))
                   for o in action["operations"])
    groups = {g["name"]: g["usrgrpid"] for g in zabbix.call("usergroup.get", {"output": ["name"]})}
    assert steps == [(1, [groups["hcops/lab/oncall/first-line"]], False),
                     (16, [groups["hcops/lab/oncall/database"]], True)]  # after 15 min, only if unacknowledged
    assert {(c["conditiontype"], c["value"]) for c in action["filter"]["conditions"]} >= {
        ("0", region_group["groupid"]), ("4", "3")}
    assert [o["operationtype"] for o in action["recovery_operations"]] == ["11"]
    assert hcops("monitor", "plan", "--region", "lab").code == 0  # alerting objects round-trip

    # A person leaves the database group's rota: the user goes, the rest stays.
    fewer = lab_copy({"oncall.yml": ("    database: {members: [dba], description: called when first line has not "
                                     "acknowledged}\n", ""),
                      })
    oncall = Path(fewer) / "oncall.yml"
    oncall.write_text(oncall.read_text().replace("    - {after_minutes: 15, notify: [database]}\n", ""))
    plan = as_json(hcops("-o", "json", "monitor", "plan", "--region", fewer).stdout)
    assert set(changes(plan, "delete")) == {"user:hcops-lab-dba", "usergroup:hcops/lab/oncall/database"}
    assert set(changes(plan, "update")) == {"action:hcops/lab/page"}


def test_bad_oncall_input_is_refused_with_where_and_how(hcops, lab_copy):
    region = lab_copy({"oncall.yml": ("members: [dba]", "members: [dab]")})
    bad = hcops("inventory", "validate", region)
    assert bad.code == 1 and "Traceback" not in bad.stderr
    assert "unknown person 'dab'" in bad.stderr and "oncall.yml" in bad.stderr
    late = lab_copy({"oncall.yml": ("- {after_minutes: 0, notify: [first-line]}",
                                    "- {after_minutes: 5, notify: [first-line]}")})
    first = hcops("inventory", "validate", late)
    assert first.code == 1 and "must page at once" in first.stderr
    unreachable = lab_copy({"oncall.yml": ('dba: {name: Lab DBA, phone: "+86 797 000 0002"}', "dba: {name: Lab DBA}")})
    nobody = hcops("inventory", "validate", unreachable)
    assert nobody.code == 1 and "needs an `email` or a `phone`" in nobody.stderr


def test_receiver_records_pages_and_refuses_garbage(tmp_path):
    out = tmp_path / "alerts.jsonl"
    server = make_server("127.0.0.1:0", out)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    try:
        page = {"to": "+86 797 000 0001", "subject": "Problem: nginx down", "event_id": "7", "event_value": "1"}
        req = urllib.request.Request(url, data=json.dumps(page).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:  # loopback only
            assert resp.status == 200
        bad = urllib.request.Request(url, data=b"not json")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=5)  # loopback only
        assert refused.value.code == 400
    finally:
        server.shutdown()
        server.server_close()
    alerts = read_alerts(out.read_text())
    assert alerts[0]["subject"] == "Problem: nginx down" and alerts[0]["path"] == "/alerts"
    assert alerts[1]["invalid"] == "not json"


@pytest.mark.zabbix
def test_values_received_counts_history_per_item_and_finds_gaps(zabbix, hcops):
    assert hcops("monitor", "apply", "--region", "lab", "--yes").code == 0
    item = zabbix.call("item.get", {"host": "db1", "filter": {"key_": "agent.ping"}, "output": ["itemid"]})[0]
    now = int(time.time()) // 60 * 60
    # One value a minute for 30 minutes, with minutes 10-19 missing (a line cut nothing buffered).
    rows = ",".join(f"({item['itemid']},{now - 1800 + m * 60},1,0)" for m in range(30) if not 10 <= m < 20)
    zabbix.sql(f"INSERT INTO history_uint (itemid, clock, value, ns) VALUES {rows}")
    client = ZabbixClient.connect(resolve_connection(load_region("lab")))
    got = values_received(client, "db1", now - 1800, now, keys=["agent.ping"])
    assert got.per_item() == {"agent.ping": 20} and got.total == 20
    gaps = got.items["agent.ping"].gaps(now - 1800, now - 60, longest_allowed=120)
    assert gaps == [(now - 1800 + 9 * 60, now - 1800 + 20 * 60)]
    # The buffered minutes arrive later: the same window now holds all 30, nothing was lost.
    late = ",".join(f"({item['itemid']},{now - 1800 + m * 60},1,0)" for m in range(10, 20))
    zabbix.sql(f"INSERT INTO history_uint (itemid, clock, value, ns) VALUES {late}")
    after = values_received(client, "db1", now - 1800, now, keys=["agent.ping"])
    assert after.total == 30 and lost_between(got, after) == {} and lost_between(after, got) == {"agent.ping": 10}
    assert not after.items["agent.ping"].gaps(now - 1800, now - 60, longest_allowed=120)


@pytest.mark.zabbix
def test_sync_runs_as_its_own_least_privilege_user_with_an_expiring_rotated_token(zabbix, hcops, monkeypatch):
    from infra.state import SecretStore

    assert hcops("monitor", "apply", "--region", "lab", "--yes").code == 0  # with Admin's token
    user = zabbix.call("user.get", {"filter": {"username": "hcops-lab-sync"}, "output": ["userid"],
                                    "selectRole": ["type"], "selectUsrgrps": ["gui_access"]})[0]
    assert user["role"]["type"] == "3" and [g["gui_access"] for g in user["usrgrps"]] == ["3"]
    tokens = zabbix.call("token.get", {"userids": [user["userid"]], "output": ["tokenid", "expires_at"]})
    assert len(tokens) == 1 and 29 * 86400 < int(tokens[0]["expires_at"]) - time.time() <= 30 * 86400
    store = SecretStore("lab")
    sync_token = store.get("zabbix-sync-token", "token")
    assert oct((store.dir / "zabbix-sync-token").stat().st_mode & 0o777) == "0o600"
    # Without HCOPS_ZABBIX_TOKEN the sync uses its own user, and plans nothing new.
    monkeypatch.delenv("HCOPS_ZABBIX_TOKEN")
    own = hcops("monitor", "plan", "--region", "lab")
    assert own.code == 0, own.stderr
    # What the sync does not need, its token cannot do.
    saved, zabbix.token = zabbix.token, sync_token
    try:
        with pytest.raises(RuntimeError, match="No permissions to call"):
            zabbix.call("settings.update", {"default_theme": "dark-theme"})
        with pytest.raises(RuntimeError, match="No permissions to call"):
            zabbix.call("script.get", {"output": ["scriptid"]})
    finally:
        zabbix.token = saved
    kept = hcops("monitor", "apply", "--region", "lab", "--yes")  # nothing to do; the token still valid
    assert kept.code == 0 and "token" not in kept.stderr and store.get("zabbix-sync-token", "token") == sync_token
    # Close to expiry, the next apply renews it and deletes the old one.
    zabbix.sql(f"UPDATE token SET expires_at=UNIX_TIMESTAMP()+3*86400 WHERE tokenid={tokens[0]['tokenid']}")
    renewed = hcops("monitor", "apply", "--region", "lab", "--yes")
    assert renewed.code == 0 and "token renewed" in renewed.stderr
    after = zabbix.call("token.get", {"userids": [user["userid"]], "output": ["tokenid"]})
    assert [t["tokenid"] for t in after] != [tokens[0]["tokenid"]] and len(after) == 1
    assert store.get("zabbix-sync-token", "token") != sync_token
    assert hcops("monitor", "plan", "--region", "lab").code == 0  # the new token works


@pytest.mark.zabbix
def test_a_stale_sync_token_falls_back_to_the_deploy_token_and_is_reissued(zabbix, hcops):
    """A lab rebuilt from scratch has a new Zabbix that knows no token the old one issued, while the
    region's secret store keeps the old sync token: apply must not lock itself out."""
    from infra.state import SecretStore

    assert hcops("monitor", "apply", "--region", "lab", "--yes").code == 0
    store = SecretStore("lab")
    store.set("zabbix-sync-token", "0" * 64)  # what a token from an earlier Zabbix looks like here
    again = hcops("monitor", "apply", "--region", "lab", "--yes")
    assert again.code == 0, again.stderr
    assert store.get("zabbix-sync-token", "token") != "0" * 64
    assert hcops("monitor", "plan", "--region", "lab").code == 0  # and the new one works


def test_paged_people_get_passwords_zabbix_accepts():
    """Zabbix refuses a password containing the user's name, surname or username (a CI run
    failed on one that held "Lab"): none is handed out, whatever the draw."""
    from monitoring.apply import unused_password

    for _ in range(2000):
        pw = unused_password("hcops-lab-dba", "Lab", "DBA").lower()
        assert "lab" not in pw and "dba" not in pw and "hcops" not in pw
    assert unused_password("Li", "Wei")  # short Chinese names still leave room
