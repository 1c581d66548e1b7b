"""Failover and the drills end to end on the lab: real MariaDB, real power-offs, real cut line.

One module, in the order a person would try them: a failover by hand and back, then every drill
through the CLI with its journal, measurements and report; each leaves the lab as it found it.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dr.drills.store import list_runs
from dr.failover.topology import current_primary, observe
from tests.fixtures.deploy import Deploys
from tests.fixtures.lab import Lab

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def cli() -> Iterator[Any]:
    mp = pytest.MonkeyPatch()
    from tests.conftest import make_runner

    yield make_runner(mp)
    mp.undo()


@pytest.fixture(scope="module")
def ready(lab: Lab, deployed: Deploys, cli: Any) -> Lab:
    """Zabbix knows the hosts (drills open maintenance windows for them)."""
    res = cli("monitor", "apply", "--region", lab.region_arg, "--yes")
    assert res.code == 0, res.stderr
    lab.wait_not_busy()
    return lab


def _drill(cli: Any, lab: Lab, name: str) -> dict[str, Any]:
    res = cli("-o", "json", "drill", "run", name, "--region", lab.region_arg, "--yes")
    data = json.loads(res.stdout) if res.stdout.strip().startswith("{") else {}
    assert data, f"drill {name} printed no JSON (exit {res.code}): {res.stderr[-3000:]}"
    checks = data.get("verdict", {}).get("checks", [])
    assert res.code == 0, f"drill {name} failed: {checks} {data.get('refused')} {res.stderr[-2000:]}"
    _name, svc, states = observe(lab.region)
    assert current_primary(states) == svc.primary, f"{name} left {current_primary(states)} as primary"
    return data


def test_failover_by_hand_switchover_and_back(ready: Lab, cli: Any) -> None:
    region = ready.region_arg
    plan = cli("-o", "json", "failover", "db", "--region", region)
    assert plan.code == 2, plan.stderr
    p = json.loads(plan.stdout)
    assert (p["kind"], p["old_primary"], p["candidate"]) == ("switchover", "db1", "db2")
    there = cli("-o", "json", "failover", "db", "--region", region, "--yes")
    assert there.code == 0, there.stderr
    assert json.loads(there.stdout)["new_primary"] == "db2"
    st = json.loads(cli("-o", "json", "failover", "status", "--region", region).stdout)["servers"]
    assert st["db2"]["writable"] and not st["db1"]["writable"]
    assert st["db1"]["replica"]["Slave_SQL_Running"] == "Yes"
    bad = cli("failover", "db", "--region", region, "--to", "zbx1", "--yes")
    assert bad.code == 1 and "not a server of appdb" in bad.stderr
    back = cli("-o", "json", "failover", "db", "--region", region, "--to", "db1", "--yes")
    assert back.code == 0, back.stderr
    assert ready.run("db1", "test ! -e /etc/mysql/mariadb.conf.d/99-hcops-fence.cnf", check=False).returncode == 0
    assert ready.run("db2", "test -e /etc/mysql/mariadb.conf.d/99-hcops-fence.cnf", check=False).returncode == 0


def test_a_backup_while_the_primary_switches_over_is_good_or_plainly_failed(ready: Lab, cli: Any) -> None:
    """The backup issue's "a backup while the primary fails over": a full backup reads the replica
    while that replica is promoted. Whatever the backup's end, it is never falsely good: a good
    one restores with the canary's rows, a failed one says why, and the next run completes."""
    import sys
    import threading

    from dr.backup import engine, verify
    from dr.drills.backup_actions import offsite_policy

    region = ready.region
    policy = offsite_policy(region)
    hcops_bin = str(Path(sys.executable).parent / "hcops")
    switch: dict[str, Any] = {}

    def progress(label: str, _n: int, _total: int | None) -> None:
        if "thread" not in switch and label.endswith("(read)"):
            switch["thread"] = threading.Thread(target=lambda: switch.update(res=subprocess.run(
                [hcops_bin, "-o", "json", "failover", "db", "--region", ready.region_arg, "--yes"],
                capture_output=True, text=True, timeout=240, check=False)), daemon=True)
            switch["thread"].start()

    from inventories.errors import HcopsError

    t0 = time.time()
    try:
        out, refused = engine.run_policy(region, policy, "full", engine.Overrides(), progress=progress), ""
    except HcopsError as exc:  # refused outright (no healthy host to read): plainly failed too
        out, refused = None, exc.message
    assert "thread" in switch, "the backup never started reading"
    switch["thread"].join(250)
    res = switch["res"]
    try:
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["new_primary"] == "db2"
        ctx = engine.context(region, policy, engine.Overrides(), offsite=False)
        try:
            if out is None:
                assert refused
                newer = [e for e in ctx.catalog.entries(policy) if e.started.timestamp() >= t0 - 1]
                assert all(e.state != "good" for e in newer), [(e.id, e.state) for e in newer]
                during = {"state": "refused", "error": refused}
            else:
                r = out.results[-1]
                state = ctx.catalog.get(r.backup_id).state
                if r.state == "good":
                    checked = verify.verify(ctx.key, ctx.local, ctx.catalog, r.backup_id,
                                            canary_sql=engine.CANARY_SQL)
                    assert checked.ok and state == "good", checked.problems
                else:
                    assert r.error and state != "good", (r.state, state, r.error)
                during = {"state": r.state, "error": r.error, "host": out.host}
        finally:
            ctx.catalog.close()
        again = engine.run_policy(region, policy, "full", engine.Overrides())
        assert again.results[-1].state == "good", again.results[-1].error  # the next run completes
        print(json.dumps({"during_switchover": during, "next": again.results[-1].backup_id}))
    finally:
        back = cli("-o", "json", "failover", "db", "--region", ready.region_arg, "--to", "db1", "--yes")
        assert back.code == 0, back.stderr


def test_rejoin_reseeds_a_former_primary_whose_history_diverged(ready: Lab, cli: Any) -> None:
    """A former primary holding a transaction the new primary never had (what a primary lost
    mid-write can keep) cannot simply replicate: rejoin sees the GTIDs diverge and re-seeds it
    from the primary; afterwards it replicates, the stray row is gone, and the switch back works."""
    region = ready.region_arg
    there = cli("-o", "json", "failover", "db", "--region", region, "--yes")
    assert there.code == 0, there.stderr
    assert json.loads(there.stdout)["new_primary"] == "db2"
    try:
        # root writes despite read_only: a transaction only db1's binlog has (no app could write it)
        ready.run("db1", "mariadb -e 'STOP SLAVE; CREATE TABLE IF NOT EXISTS canary.stray (i INT PRIMARY KEY) "
                         "ENGINE=InnoDB; REPLACE INTO canary.stray VALUES (1)'")
        res = cli("-o", "json", "failover", "rejoin", "db1", "--region", region)
        assert res.code == 0, res.stderr
        r = json.loads(res.stdout)
        # found by the GTIDs (db1's ahead of the primary) or, once the primary's canary writes have
        # passed db1's sequence number, by the primary refusing it (error 1236): both re-seed
        assert r["reseeded"] and ("never had" in r["reason"] or "1236" in r["reason"]), r
        st = json.loads(cli("-o", "json", "failover", "status", "--region", region).stdout)["servers"]
        assert st["db1"]["replica"]["Slave_SQL_Running"] == "Yes" and not st["db1"]["writable"]
        stray = ready.run("db1", "mariadb -NBe \"SELECT COUNT(*) FROM information_schema.tables "
                                 "WHERE table_schema='canary' AND table_name='stray'\"").stdout.strip()
        assert stray == "0"  # the copy is the primary's, not db1's own
        print(json.dumps({"rejoin": {k: r[k] for k in ("reseeded", "reason")}, "steps": r["steps"]}))
    finally:
        def caught_up() -> bool:  # a fresh copy starts behind; the switch back refuses lag over max_lag_s
            st = json.loads(cli("-o", "json", "failover", "status", "--region", region).stdout)["servers"]
            return st["db1"].get("replica", {}).get("Seconds_Behind_Master") == "0"

        deadline = time.monotonic() + 90
        while not caught_up() and time.monotonic() < deadline:
            time.sleep(2)
        back = cli("-o", "json", "failover", "db", "--region", region, "--to", "db1", "--yes")
        assert back.code == 0, back.stderr


def test_db_switchover_is_lossless(ready: Lab, cli: Any) -> None:
    h = _drill(cli, ready, "db-switchover")
    assert h["rpo_lost_writes"] == 0 and h["max_writable"] == 1
    assert h["acked_writes"] > 5
    assert h["maintenance"]["open"].startswith("opened ") and h["maintenance"]["close"].startswith("closed ")


def test_db_primary_loss_promotes_with_rpo_zero(ready: Lab, cli: Any) -> None:
    h = _drill(cli, ready, "db-primary-loss")
    assert h["rpo_lost_writes"] == 0
    assert h["rto_s"] is not None and 0 < h["rto_s"] <= h["targets"]["rto_target_s"]
    promoted = [d for d in h["manager"] if d["action"] == "failover"]
    assert len(promoted) == 1 and "promoted db2" in promoted[0]["reason"]
    assert any(d["action"] == "suspect" for d in h["manager"])  # it waited for more than one failed check
    assert promoted[0]["observers_down"], "the manager acted on its own view alone"
    assert h["max_writable"] == 1


def test_app_node_loss_keeps_serving(ready: Lab, cli: Any) -> None:
    h = _drill(cli, ready, "app-node-loss")
    assert h["failed_requests"] <= h["targets"]["max_failed_requests"]
    assert h["requests"] > 20


def test_lb_node_loss_moves_the_vip(ready: Lab, cli: Any) -> None:
    h = _drill(cli, ready, "lb-node-loss")
    assert any("VIP on" in m["what"] for m in h["marks"])
    assert h["requests"] > 10


def test_link_cut_loses_nothing_and_promotes_nothing(ready: Lab, cli: Any) -> None:
    h = _drill(cli, ready, "link-cut")
    assert h["rpo_lost_writes"] == 0 and h["max_writable"] == 1
    assert not [d for d in h["manager"] if d["action"] == "failover"]
    assert any(d["action"] == "hold" for d in h["manager"]), h["manager"]  # observers saw it, the witness did not
    assert h["local_writer"]["commits"] > 5
    assert h["outages"], "cloud-side writes across a cut line must fail, and the report must show it"
    fm = h["far_monitoring"]  # the local data center's proxy kept its values through the cut
    assert fm["before_cut"] > 0 and fm["during"] == 0 and fm["after"] > 0, fm


def test_object_store_outage_during_a_backup_loses_no_copy(ready: Lab, cli: Any) -> None:
    h = _drill(cli, ready, "object-store-outage")
    ob = h["offsite_backup"]
    assert ob["stopped_during_backup"] and ob["outage_s"] >= 9, ob  # a real outage, bounded (10 s planned)
    assert ob["state"] == "good" and ob["verified_offsite"], ob
    assert "canary rows" in ob["verify_detail"]
    marks = [m["what"] for m in h["marks"]]
    assert marks.index("object store stopped") < marks.index("object store started again"), marks
    from infra.lab import control
    assert control.object_store_running(ready.region)


def test_drill_report_renders_offline_in_chromium(ready: Lab) -> None:
    runs = list_runs(ready.region)
    assert {r.drill for r in runs} >= {"db-switchover", "db-primary-loss", "app-node-loss", "lb-node-loss",
                                       "link-cut"}
    run = next(r for r in reversed(runs) if r.drill == "db-primary-loss")
    assert json.loads(run.journal.read_text())["hcops"]["run_id"] == run.run_id
    png = Path(tempfile.mkdtemp()) / "report.png"
    profile = tempfile.mkdtemp()
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                    f"--screenshot={png}", "--window-size=1280,1600", f"file://{run.report_html}"],
                   check=True, capture_output=True, timeout=120)
    assert png.stat().st_size > 20_000  # a page with a chart, not a blank one
