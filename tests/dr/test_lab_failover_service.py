"""On the lab: the failover manager deployed by the playbooks as a systemd service on the
operations host promotes the replica when the primary's host is powered off; it is the only
manager of its region (a second one is refused), and a drill pauses it and starts it again.

The lab's model keeps the service off (its drills run their own manager); this test turns it on
with `-e hcops_failover_watch_service=true`, and off again whatever happens.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from dr.drills import actions
from dr.drills.context import reset
from dr.failover import service
from dr.failover.topology import current_primary, mysql_service, observe
from tests.fixtures.deploy import Deploys, wait_for
from tests.fixtures.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]
ON = "hcops_failover_watch_service=true"
OFF = "hcops_failover_watch_service=false"


def _journal(unit: str, since: float) -> list[dict[str, Any]]:
    out = subprocess.run(["journalctl", "-u", unit, "-o", "cat", "--no-pager", "--since", f"@{int(since)}"],
                         capture_output=True, text=True, check=False).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_the_deployed_manager_promotes_on_primary_loss(lab: Lab, deployed: Deploys, hcops) -> None:  # type: ignore[no-untyped-def]
    region = lab.region
    unit = service.unit(region.name)
    conf = {"hcops_region": lab.region_arg}
    _name, svc = mysql_service(region)
    started = time.time()
    on = hcops("deploy", "--region", lab.region_arg, "--tags", "failover_manager", "-e", ON)
    assert on.code == 0, on.stderr[-2000:]
    try:
        assert service.active(region.name), f"{unit} is not running after deploy"
        # a second manager of the region is refused while the service holds the lock
        assert wait_for(lambda: any(d["action"] == "ok" for d in _journal(unit, started)), timeout=60)
        second = hcops("failover", "watch", "--region", lab.region_arg, "--seconds", "2")
        assert second.code == 1 and "another failover manager is running" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr

        # a drill's manager takes over for its run, and gives the service back after
        reset(region)
        actions.start_failover_manager(conf)
        assert not service.active(region.name)
        resumed = time.time()
        actions.stop_failover_manager(conf)
        assert wait_for(lambda: service.active(region.name), timeout=30)

        # the real thing: the primary's host goes dark; the service (not the test) promotes
        reset(region)
        assert wait_for(lambda: any(d["action"] == "ok" and d["at"] > _iso(resumed)
                                    for d in _journal(unit, resumed)), timeout=60), "the service is not watching"
        off_at = time.time()
        actions.power_off_primary(conf)
        new = actions.wait_for_new_primary(60, conf)
        promoted_after = round(time.time() - off_at, 1)
        assert new != svc.primary
        decisions = _journal(unit, off_at)
        failover = [d for d in decisions if d["action"] == "failover"]
        assert len(failover) == 1 and new in failover[0]["reason"], decisions[-5:]
        _n, _s, states = observe(region)
        assert sum(1 for s in states.values() if s.reachable and s.writable) == 1
        print(json.dumps({"unit": unit, "promoted": new, "promoted_after_s": promoted_after,
                          "decisions": [d["action"] for d in decisions if d["action"] != "ok"]}))
    finally:
        off = hcops("deploy", "--region", lab.region_arg, "--tags", "failover_manager", "-e", OFF)
        # the lab as it was: the old primary back as a replica, then the model's primary again
        actions.rejoin_old_primary(conf)
        actions.switch_back(conf)
    assert off.code == 0 and not service.active(region.name), off.stderr[-2000:]
    _n, _s, states = observe(region)
    assert current_primary(states) == svc.primary


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
