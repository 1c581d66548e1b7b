"""`plan verify` and `plan board` on the lab's county site (local-dc plays county ruijin): every
check passes on the deployed lab; one broken on purpose (agent stopped, a port opened) fails
with a clear reason; the board shows both, and the repair."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from infra.plans.checklist import checklist, county_hosts
from monitoring.client import ZabbixClient, resolve_connection
from tests.fixtures.deploy import Deploys, playbooks_busy, wait_for
from tests.fixtures.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

OPEN_PORT = 18999


def backup_module_available() -> bool:
    try:
        importlib.import_module("dr.backup.status")
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def runner():  # type: ignore[no-untyped-def]
    from tests.conftest import make_runner

    mp = pytest.MonkeyPatch()
    yield make_runner(mp)
    mp.undo()


@pytest.fixture(scope="module")
def county(lab: Lab, deployed: Deploys, runner) -> str:  # type: ignore[no-untyped-def]
    """The lab's county, registered in the lab's Zabbix with its agents available (bounded wait)."""
    (name,) = lab.region.counties
    res = runner("monitor", "apply", "--region", lab.region_arg, "--yes")
    assert res.code == 0, res.stderr
    client = ZabbixClient.connect(resolve_connection(lab.region))
    hosts = county_hosts(lab.region, name)

    def available() -> bool:
        got = client.call("host.get", {"output": ["host"], "filter": {"host": hosts},
                                       "selectInterfaces": ["available"]})
        return len(got) == len(hosts) and all(h["interfaces"][0]["available"] == "1" for h in got)

    assert wait_for(available, timeout=150, interval=5)
    return name


def verify(runner, lab: Lab, county: str, out: Path, *only: str):  # type: ignore[no-untyped-def]
    args = ["-o", "json", "plan", "verify", "--region", lab.region_arg, "--county", county, "--out", str(out)]
    for item in only:
        args += ["--only", item]
    res = runner(*args)
    return res, json.loads(res.stdout)


def board(runner, lab: Lab, county: str, html: Path) -> dict:  # type: ignore[no-untyped-def,type-arg]
    res = runner("-o", "json", "plan", "board", "--region", lab.region_arg, "--html", str(html))
    assert res.code == 0, res.stderr
    return next(r for r in json.loads(res.stdout)["rows"] if r["county"] == county)  # type: ignore[no-any-return]


def test_verify_passes_then_fails_when_broken_and_the_board_follows(lab: Lab, county: str, runner,
                                                                    tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    items = [i.id for i in checklist(lab.region, county)]
    hosts = county_hosts(lab.region, county)
    assert set(hosts) == {"collector1", "db1", "backup1"}
    assert {"TUN-frontline", "BAK-appdb-nightly", "PORT-db1", "ZBX-collector1", "BASE-backup1"} <= set(items)

    # 1. the deployed lab: every item passes, except what the backup engine must vouch for
    res, report = verify(runner, lab, county, tmp_path)
    got = {i["id"]: i for i in report["items"]}
    assert list(got) == items
    host_items = [i for i in items if not i.startswith("BAK-")]
    assert [i for i in host_items if not got[i]["passed"]] == [], {i: got[i]["reason"] for i in host_items}
    db1 = lab.address("db1")
    assert got["PORT-db1"]["evidence"]["declared"] == [f"{db1}:10050", f"{db1}:3306"]
    assert got["TUN-frontline"]["evidence"]["through_tunnel"]
    assert all(v.startswith("blocked") for v in got["TUN-frontline"]["evidence"]["in_clear"].values())
    baks = {i: got[i] for i in items if i.startswith("BAK-")}  # the database's and the PACS's policies
    assert set(baks) == {"BAK-appdb-nightly", "BAK-pacs-nightly"}
    if not backup_module_available():
        assert not any(b["passed"] for b in baks.values())
        assert all("backup module not available" in b["reason"] for b in baks.values())
        assert res.code == 1 and "BAK-appdb-nightly failed" in res.stderr
    else:
        assert res.code == (0 if all(b["passed"] for b in baks.values()) else 1), {
            i: b["reason"] for i, b in baks.items()}
    html = (tmp_path / f"{lab.region.name}-{county}-acceptance.html").read_text()
    for item in items:
        assert f'id="{item}"' in html  # evidence per item ID
    saved = json.loads((tmp_path / f"{lab.region.name}-{county}-acceptance.json").read_text())
    assert saved["summary"]["items"] == len(items)
    row = board(runner, lab, county, tmp_path / "board.html")
    assert row["missing"] == [] and row["passed"] == len(host_items) + sum(b["passed"] for b in baks.values())

    # 2. break two things on purpose: the collector's agent stops, db1 opens an undeclared port
    with playbooks_busy():
        lab.run("collector1", "systemctl stop zabbix-agent2")
        lab.run("db1", f"systemd-run --unit=hcops-plan-open-port python3 -m http.server {OPEN_PORT}")
        try:
            assert wait_for(lambda: f":{OPEN_PORT} " in lab.run("db1", "ss -Hltn").stdout, timeout=15)
            res, report = verify(runner, lab, county, tmp_path, "AGENT-collector1", "PORT-db1", "TIME-db1")
            assert res.code == 1
            assert "AGENT-collector1 failed: zabbix-agent2 is not running" in res.stderr
            assert f"PORT-db1 failed: undeclared listener(s): tcp 0.0.0.0:{OPEN_PORT}" in res.stderr
            assert "python3" in res.stderr  # the process holding the port is named
            assert [i["id"] for i in report["items"] if i["passed"]] == ["TIME-db1"]
            row = board(runner, lab, county, tmp_path / "board.html")
            assert row["status"] == "failing" and not row["ready"]
            assert {"AGENT-collector1", "PORT-db1"} <= set(row["failed"])
            assert row["results"]["PORT-db1"]["state"] == "fail"
            assert row["results"]["BASE-db1"]["state"] == "pass"  # earlier results kept, with their dates
            assert row["results"]["PORT-db1"]["checked_at"] >= row["results"]["BASE-db1"]["checked_at"]
            page = (tmp_path / "board.html").read_text()
            assert "AGENT-collector1</span>: zabbix-agent2 is not running" in page
        finally:
            lab.run("db1", "systemctl stop hcops-plan-open-port", check=False)
            lab.run("collector1", "systemctl start zabbix-agent2")

    # 3. repaired: the two items pass again and the board says so
    res, report = verify(runner, lab, county, tmp_path, "AGENT-collector1", "PORT-db1")
    assert res.code == 0, res.stderr
    row = board(runner, lab, county, tmp_path / "board.html")
    assert row["results"]["AGENT-collector1"]["state"] == "pass" and row["results"]["PORT-db1"]["state"] == "pass"
    assert row["ready"] == (row["failed"] == []) and set(row["failed"]) <= {"BAK-appdb-nightly", "BAK-pacs-nightly"}
