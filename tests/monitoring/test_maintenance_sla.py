"""Maintenance windows and SLA read-back against a real Zabbix 6.0."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.fixtures.zabbix import ZabbixTestServer
from tests.monitoring.helpers import as_json

pytestmark = pytest.mark.zabbix


@pytest.fixture
def applied(zabbix: ZabbixTestServer, hcops) -> ZabbixTestServer:
    result = hcops("monitor", "apply", "--region", "lab", "--yes")
    assert result.code == 0, result.stderr
    return zabbix


def _windows(zabbix: ZabbixTestServer) -> dict[str, list[str]]:
    rows = zabbix.call("maintenance.get", {"output": ["name"], "selectHosts": ["host"]})
    return {r["name"]: sorted(h["host"] for h in r["hosts"]) for r in rows}


def test_maintenance_start_and_stop(applied, hcops):
    zabbix = applied
    db1 = zabbix.call("host.get", {"filter": {"host": "db1"}, "output": ["hostid"]})[0]["hostid"]
    now = int(time.time())
    zabbix.call("maintenance.create", {"name": "hand-made window", "active_since": now, "active_till": now + 3600,
                                       "hosts": [{"hostid": db1}],
                                       "timeperiods": [{"timeperiod_type": 0, "start_date": now, "period": 3600}]})
    started = hcops("-o", "json", "monitor", "maintenance", "start", "--region", "lab", "--hosts", "db1,db2",
                    "--reason", "failover drill", "--minutes", "30")
    assert started.code == 0, started.stderr
    window = as_json(started.stdout)
    assert window["hosts"] == ["db1", "db2"] and window["reason"] == "failover drill"
    row = zabbix.call("maintenance.get", {"maintenanceids": window["id"], "output": "extend",
                                          "selectTimeperiods": ["period"]})[0]
    assert int(row["active_till"]) - int(row["active_since"]) == 30 * 60
    assert row["timeperiods"][0]["period"] == str(30 * 60) and "failover drill" in row["description"]
    assert _windows(zabbix)[window["name"]] == ["db1", "db2"]

    listed = as_json(hcops("-o", "json", "monitor", "maintenance", "list", "--region", "lab").stdout)
    assert [w["name"] for w in listed] == [window["name"]]  # the hand-made window is not hcops'

    assert hcops("monitor", "maintenance", "stop", "--region", "lab", "--hosts", "db1").code == 0
    assert _windows(zabbix)[window["name"]] == ["db2"]
    assert hcops("monitor", "maintenance", "stop", "--region", "lab", "--hosts", "db2").code == 0
    assert window["name"] not in _windows(zabbix)
    assert _windows(zabbix)["hand-made window"] == ["db1"]  # never touched


def test_maintenance_refuses_unknown_hosts_and_bad_values(applied, hcops):
    unknown = hcops("monitor", "maintenance", "start", "--region", "lab", "--hosts", "db1,db9", "--reason", "x")
    assert unknown.code == 1
    assert "unknown host(s) db9" in unknown.stderr and "db1" in unknown.stderr  # the hint lists model hosts
    assert not _windows(applied)
    too_long = hcops("monitor", "maintenance", "start", "--region", "lab", "--hosts", "db1", "--reason", "x",
                     "--minutes", "99999")
    assert too_long.code == 64 and "--minutes" in too_long.stderr  # a usage error, before any API call
    stop_unknown = hcops("monitor", "maintenance", "stop", "--region", "lab", "--hosts", "nosuch")
    assert stop_unknown.code == 1 and "unknown host(s) nosuch" in stop_unknown.stderr


def test_sla_created_per_slo_and_read_back_with_error_budget(applied, hcops):
    zabbix = applied
    slas = {s["name"]: s for s in zabbix.call("sla.get", {"output": ["name", "slo", "period"],
                                                          "selectServiceTags": ["tag", "value"]})}
    assert float(slas["hcops/lab/platform"]["slo"]) == 99.95 and slas["hcops/lab/platform"]["period"] == "2"
    assert slas["hcops/lab/records-db"]["period"] == "4"  # the yearly SLO
    assert slas["hcops/lab/platform"]["service_tags"] == [{"tag": "hcops-sla", "value": "lab/platform"}]

    clean = as_json(hcops("-o", "json", "monitor", "sla", "--region", "lab", "--period", "month").stdout)
    platform = next(r for r in clean if r["slo"] == "platform")
    assert platform["downtime_min"] == 0 and platform["uptime_min"] > 0 and platform["sli"] == 100.0
    # 99.95% of a 30.4-day month: 21.89 minutes (the "21.9 min/month" of the platform documents)
    assert platform["budget_min"] == pytest.approx(21.9, abs=0.015) == platform["budget_left_min"]

    # Give the platform service a real outage in Zabbix's own history: 10 minutes (or what fits
    # since the month began) of "high" status, then OK again. Zabbix computes the downtime.
    root = zabbix.call("service.get", {"filter": {"name": "lab/platform"}, "output": ["serviceid"]})[0]["serviceid"]
    now = int(time.time())
    month_start = int(datetime(*datetime.now(UTC).timetuple()[:2], 1, tzinfo=UTC).timestamp())
    begin = max(now - 1800, month_start + 1)
    end = min(begin + 600, now - 1)
    zabbix.sql(f"UPDATE services SET created_at={month_start} WHERE serviceid={root};"
               f"INSERT INTO service_alarms (servicealarmid, serviceid, clock, value) VALUES "
               f"(900001, {root}, {begin}, 4), (900002, {root}, {end}, -1);")
    report = as_json(hcops("-o", "json", "monitor", "sla", "--region", "lab").stdout)
    platform = next(r for r in report if r["slo"] == "platform")
    outage = round((end - begin) / 60, 2)
    assert platform["downtime_min"] == pytest.approx(outage, abs=0.02)
    assert platform["budget_left_min"] == pytest.approx(platform["budget_min"] - outage, abs=0.02)
    assert platform["sli"] < 100.0

    yearly = as_json(hcops("-o", "json", "monitor", "sla", "--region", "lab", "--period", "year").stdout)
    assert {r["slo"]: r["budget_min"] for r in yearly} == {"platform": 262.8, "records-db": 262.8}
    table = hcops("monitor", "sla", "--region", "lab")
    assert table.code == 0 and "platform" in table.stdout and "21.9" in table.stdout and "ok" in table.stdout
    assert f"{outage:.1f} of 21.9 min budget used" in table.stdout  # the reason beside the state


def test_sla_before_apply_and_bad_period(zabbix, hcops):
    missing = hcops("monitor", "sla", "--region", "lab")
    assert missing.code == 1 and "no SLA for SLO" in missing.stderr and "monitor apply" in missing.stderr
    bad = hcops("monitor", "sla", "--region", "lab", "--period", "week")
    assert bad.code == 64 and "'week' is not one of 'month', 'quarter', 'year'" in bad.stderr


def test_quarter_period_and_maintenance_input_checks(applied, hcops, zabbix):
    quarter = as_json(hcops("-o", "json", "monitor", "sla", "--region", "lab", "--period", "quarter").stdout)
    assert {r["slo"]: r["period"] for r in quarter} == {"platform": "quarter", "records-db": "year"}
    short = hcops("monitor", "maintenance", "start", "--region", "lab", "--hosts", "db1", "--reason", "x",
                  "--minutes", "2")
    assert short.code == 64 and "Traceback" not in short.stderr  # Zabbix needs at least 5 minutes
    twice = hcops("monitor", "maintenance", "start", "--region", "lab", "--hosts", "db1,db1", "--reason", "x")
    assert twice.code == 1 and "more than once" in twice.stderr
    # An hcops window that has ended is removed when the next one starts.
    past = int(time.time()) - 7200
    host = zabbix.call("host.get", {"filter": {"host": "db2"}, "output": ["hostid"]})[0]["hostid"]
    zabbix.call("maintenance.create", {"name": "hcops/lab/maint-old", "active_since": past,
                                       "active_till": past + 600, "hosts": [{"hostid": host}],
                                       "timeperiods": [{"timeperiod_type": 0, "start_date": past, "period": 600}]})
    assert hcops("monitor", "maintenance", "start", "--region", "lab", "--hosts", "db1", "--reason", "x").code == 0
    names = {m["name"] for m in zabbix.call("maintenance.get", {"output": ["name"]})}
    assert "hcops/lab/maint-old" not in names and len(names) == 1
