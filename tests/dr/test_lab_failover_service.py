"""On the lab: the automatic manager as a process of its own (`hcops failover watch`, what the
failover_manager role runs as a systemd service) promotes the replica when the primary's host is
powered off, and is the only manager of its region: a second one, or a drill's, is refused.

This controller runs in a container without systemd, so the role's unit cannot start here: the
deploy refuses it plainly (tested below) and the watch runs as a plain child process instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dr.drills import actions
from dr.drills.context import reset
from dr.failover.topology import current_primary, mysql_service, observe
from inventories.errors import HcopsError
from tests.fixtures.deploy import Deploys, wait_for
from tests.fixtures.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]
HCOPS = str(Path(sys.executable).parent / "hcops")


def test_the_service_is_refused_plainly_where_the_operations_host_has_no_systemd(lab: Lab, deployed: Deploys,
                                                                                 hcops) -> None:  # type: ignore[no-untyped-def]
    if Path("/run/systemd/system").exists():
        pytest.fail("this controller runs systemd: test the installed unit instead of the refusal")
    on = hcops("deploy", "--region", lab.region_arg, "--tags", "failover_manager",
               "-e", "hcops_failover_watch_service=true")
    assert on.code == 1 and "does not run systemd" in on.stderr + on.stdout
    assert not Path(f"/etc/systemd/system/hcops-failover-manager-{lab.region.name}.service").exists()


def test_a_watch_process_promotes_on_primary_loss_and_is_the_only_manager(lab: Lab, deployed: Deploys,
                                                                         hcops) -> None:  # type: ignore[no-untyped-def]
    region = lab.region
    conf = {"hcops_region": lab.region_arg}
    _name, svc = mysql_service(region)
    decisions: list[dict[str, Any]] = []
    proc = subprocess.Popen([HCOPS, "-o", "json", "failover", "watch", "--region", lab.region_arg,
                             "--seconds", "240"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("{"):
                decisions.append(json.loads(line))
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert wait_for(lambda: any(d["action"] == "ok" for d in decisions), timeout=60), "the watch never started"
        second = hcops("failover", "watch", "--region", lab.region_arg, "--seconds", "2")
        assert second.code == 1 and "another failover manager is running" in second.stderr, second.stderr
        assert f"(pid {proc.pid})" in second.stderr and "Traceback" not in second.stderr
        reset(region)
        with pytest.raises(HcopsError, match="another failover manager is running"):
            actions.start_failover_manager(conf)  # a drill does not run a second judge beside it

        off_at = time.time()
        actions.power_off_primary(conf)
        new = actions.wait_for_new_primary(60, conf)
        promoted_after = round(time.time() - off_at, 1)
        assert new != svc.primary
        assert wait_for(lambda: any(d["action"] == "failover" for d in decisions), timeout=10)
        failover = [d for d in decisions if d["action"] == "failover"]
        assert len(failover) == 1 and new in failover[0]["reason"], decisions[-5:]
        _n, _s, states = observe(region)
        assert sum(1 for s in states.values() if s.reachable and s.writable) == 1
        print(json.dumps({"promoted": new, "promoted_after_s": promoted_after,
                          "decisions": [d["action"] for d in decisions]}))
    finally:
        proc.terminate()
        proc.wait(30)
        # the lab as it was: the old primary back as a replica, then the model's primary again
        actions.rejoin_old_primary(conf)
        actions.switch_back(conf)
    _n, _s, states = observe(region)
    assert current_primary(states) == svc.primary
