"""Failover decisions without servers: GTID order, candidate choice, refusals, anti-flap, observers."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dr.failover import gtid, journal
from dr.failover.manager import observer_says_down
from dr.failover.plan import build_plan
from dr.failover.service import ManagerLock
from dr.failover.topology import DbState, _parse_batch
from inventories.errors import HcopsError
from inventories.loader import load_region
from inventories.model import Region
from inventories.schema import MySQL


@pytest.fixture
def region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Region:
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "state"))
    return load_region("lab")


def _svc(region: Region) -> MySQL:
    svc = region.services["appdb"]
    assert isinstance(svc, MySQL)
    return svc


def primary(pos: str = "0-1-100", semi: bool = True) -> DbState:
    return DbState("db1", "10.231.1.11", True, read_only=False, server_id=1, binlog_pos=pos, current_pos=pos,
                   semi_sync_primary=semi)


def replica(pos: str = "0-1-100", lag: str = "0", io: str | None = None, sql_running: str = "Yes") -> DbState:
    return DbState("db2", "10.231.2.12", True, read_only=True, server_id=2, binlog_pos=pos, current_pos=pos,
                   slave_pos=pos, replica={"Master_Host": "10.231.1.11", "Seconds_Behind_Master": lag,
                                           "Gtid_IO_Pos": io or pos, "Slave_IO_Running": "Yes",
                                           "Slave_SQL_Running": sql_running})


def test_gtid_order_and_divergence() -> None:
    assert gtid.covers("0-1-10,1-2-5", "0-1-9")
    assert not gtid.covers("0-1-9", "0-1-10,1-2-5")
    assert gtid.behind("0-1-7", "0-1-10,1-2-5") == 8
    assert gtid.diverged("0-1-11", "0-2-10")  # the old primary wrote past what the new one got
    assert gtid.diverged("0-1-10", "0-2-10")  # same seq, another server
    assert not gtid.diverged("0-1-9", "0-2-12")
    assert gtid.parse("") == {} and gtid.parse("NULL") == {}
    with pytest.raises(ValueError, match="not a MariaDB GTID"):
        gtid.parse("0-1")


def test_switchover_plan_when_primary_answers(region: Region) -> None:
    plan = build_plan(region, "appdb", _svc(region), {"db1": primary(), "db2": replica("0-1-99")})
    assert plan.kind == "switchover" and plan.runnable
    assert (plan.old_primary, plan.candidate) == ("db1", "db2")
    assert [s.action for s in plan.steps] == ["block-writes", "catch-up", "promote", "repoint", "verify"]
    assert any("lacks 1 transaction" in w for w in plan.warnings)


def test_failover_plan_when_primary_is_gone(region: Region) -> None:
    down = DbState("db1", "10.231.1.11", False, error="host is powered off")
    plan = build_plan(region, "appdb", _svc(region), {"db1": down, "db2": replica()})
    assert plan.kind == "failover" and plan.runnable
    assert [s.action for s in plan.steps] == ["fence", "catch-up", "promote", "verify"]
    assert plan.steps[0].detail == "already powered off"


def test_lag_beyond_threshold_refused_unless_forced(region: Region) -> None:
    down = DbState("db1", "10.231.1.11", False, error="host is powered off")
    states = {"db1": down, "db2": replica(lag="60")}
    plan = build_plan(region, "appdb", _svc(region), states)
    assert not plan.runnable and "60 s behind" in plan.refusals[0] and "max_lag_s 5" in plan.refusals[0]
    forced = build_plan(region, "appdb", _svc(region), states, force=True)
    assert forced.runnable and any("forced" in w for w in forced.warnings)


def test_anti_flap_window(region: Region) -> None:
    down = DbState("db1", "10.231.1.11", False, error="host is powered off")
    states = {"db1": down, "db2": replica()}
    now = datetime.now(UTC)
    journal.append(region.name, {"service": "appdb", "kind": "failover", "ok": True,
                                 "ended": (now - timedelta(seconds=10)).isoformat()})
    plan = build_plan(region, "appdb", _svc(region), states, now=now)
    assert not plan.runnable and "anti-flap window of 30 s" in plan.refusals[0]
    later = build_plan(region, "appdb", _svc(region), states, now=now + timedelta(seconds=40))
    assert later.runnable


def test_split_brain_and_bad_target_refused(region: Region) -> None:
    two = {"db1": primary(), "db2": DbState("db2", "10.231.2.12", True, read_only=False, current_pos="0-2-5")}
    plan = build_plan(region, "appdb", _svc(region), two, to="db2")
    assert any("split brain" in r for r in plan.refusals)
    bad = build_plan(region, "appdb", _svc(region), {"db1": primary(), "db2": replica()}, to="app1")
    assert bad.kind == "none" and "not a server of appdb" in bad.refusals[0]
    stopped = build_plan(region, "appdb", _svc(region),
                         {"db1": DbState("db1", "x", False, error="gone"), "db2": replica(lag="", sql_running="No")})
    assert not stopped.runnable and "SQL thread is stopped" in stopped.refusals[0]


def test_batch_output_parsing() -> None:
    out = ("read_only\tbinlog_pos\n0\t0-1-5\nSlave_IO_State\tMaster_Host\tGtid_IO_Pos\n"
           "Waiting\t10.231.1.11\t0-1-5\n")
    sets = _parse_batch(out)
    assert sets[0] == [{"read_only": "0", "binlog_pos": "0-1-5"}]
    assert sets[1][0]["Master_Host"] == "10.231.1.11"


def test_observer_votes() -> None:
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    old = (datetime.now(UTC) - timedelta(seconds=30)).isoformat(timespec="milliseconds")
    err = f"{now} no writable database: 10.231.1.11: (2003, 'timed out')"
    assert observer_says_down({"last_error": err, "last_ack_age_s": 4.0}, "10.231.1.11")
    two_s = (datetime.now(UTC) - timedelta(seconds=2)).isoformat(timespec="milliseconds")
    err2 = f"{two_s} no writable database: 10.231.1.11: (2003, 'timed out')"
    assert not observer_says_down({"last_error": err2, "last_ack_age_s": 0.1}, "10.231.1.11")  # acked since
    assert not observer_says_down({"last_error": f"{old} no writable database", "last_ack_age_s": 40}, "10.231.1.11")
    assert not observer_says_down({"last_error": None}, "10.231.1.11")


def test_journal_survives_a_torn_line(region: Region) -> None:
    p = journal.append(region.name, {"service": "appdb", "kind": "failover", "ok": True,
                                     "ended": datetime.now(UTC).isoformat()})
    with p.open("a") as fh:
        fh.write('{"torn": ')
    assert len(journal.records(region.name)) == 1
    assert json.loads(p.read_text().splitlines()[0])["kind"] == "failover"


def test_one_manager_per_region_the_second_is_refused_with_the_owner(region: Region) -> None:
    first, second = ManagerLock(region.name), ManagerLock(region.name)
    first.acquire()
    try:
        with pytest.raises(HcopsError) as refused:
            second.acquire()
        assert f"(pid {os.getpid()})" in refused.value.message
        assert "systemctl stop hcops-failover-manager-lab.service" in (refused.value.hint or "")
        assert ManagerLock("other-region").path != first.path  # per region
    finally:
        first.release()
    second.acquire()  # free again once the first is gone
    second.release()


def test_the_lab_keeps_the_watch_service_off_and_regions_default_to_it(region: Region) -> None:
    assert _svc(region).failover.watch_service is False  # the lab's drills and tests run their own
    city = load_region("example-city")
    assert all(s.failover.watch_service and s.failover.auto for s in city.services.values() if isinstance(s, MySQL))
