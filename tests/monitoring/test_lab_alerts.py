"""On the lab: a service stopped on purpose pages on-call, and its recovery follows.

The lab's on-call webhook (inventories/lab/oncall.yml) posts to 127.0.0.1:8025 on the Zabbix
host: the test runs monitoring/receiver.py there (bounded by systemd-run), stops nginx on the
app node that does not hold the VIP (the platform keeps serving), and reads what arrived.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from monitoring.receiver import read_alerts
from tests.fixtures.deploy import Deploys, wait_for
from tests.fixtures.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]
RECEIVER = Path(__file__).resolve().parents[2] / "monitoring" / "receiver.py"
OUT = "/var/lib/hcops-alerts/alerts.jsonl"
UNIT = "hcops-test-alert-receiver"


def _vip_holder(lab: Lab, hosts: list[str], vip: str) -> str | None:
    return next((h for h in hosts if f" {vip}/" in lab.run(h, "ip -4 -o addr show").stdout), None)


def test_a_stopped_service_pages_the_receiver_and_its_recovery_follows(lab: Lab, deployed: Deploys, hcops) -> None:  # type: ignore[no-untyped-def]
    applied = hcops("monitor", "apply", "--region", lab.region_arg, "--yes")
    assert applied.code == 0, applied.stderr
    zbx = next(s.server for s in lab.region.services.values() if s.kind == "zabbix")  # type: ignore[attr-defined]
    front = next(s for s in lab.region.services.values() if s.kind == "nginx")
    hosts = list(front.hosts)  # type: ignore[attr-defined]
    holder = _vip_holder(lab, hosts, str(front.vip))  # type: ignore[attr-defined]
    victim = next(h for h in reversed(hosts) if h != holder)

    lab.run(zbx, f"install -d -m 0700 /var/lib/hcops-alerts && rm -f {OUT} && cat > /var/lib/hcops-alerts/receiver.py",
            stdin=RECEIVER.read_text())
    lab.run(zbx, f"systemctl stop {UNIT} 2>/dev/null; systemctl reset-failed {UNIT} 2>/dev/null; "
                 f"systemd-run --unit {UNIT} -p RuntimeMaxSec=900 python3 /var/lib/hcops-alerts/receiver.py "
                 f"--listen 127.0.0.1:8025 --out {OUT}", check=False)

    def arrived() -> list[dict]:  # type: ignore[type-arg]
        # the victim's Nginx triggers only: on 2 cores the lab's hosts also page "Load average is
        # too high" now and then, and such a pair interleaved with Nginx's once failed this test
        text = lab.run(zbx, f"cat {OUT} 2>/dev/null || true").stdout
        return [a for a in read_alerts(text) if a.get("host") == victim and "nginx" in str(a.get("trigger")).lower()]

    def problem() -> dict | None:  # type: ignore[type-arg]
        return next((a for a in arrived() if a.get("event_value") == "1"), None)

    def recovery_of(p: dict) -> dict | None:  # type: ignore[type-arg]
        return next((a for a in arrived() if a.get("event_value") == "0" and a["event_id"] == p["event_id"]), None)

    started = time.time()
    try:
        assert wait_for(lambda: lab.run(zbx, "ss -Hltn 'sport = :8025'").stdout.strip() != "", timeout=20)
        lab.run(victim, "systemctl stop nginx")
        # the Nginx template polls once a minute; the action pages at once (step 1)
        assert wait_for(lambda: problem() is not None, timeout=240, interval=10), \
            f"no Nginx problem for {victim} reached the receiver"
    finally:
        lab.run(victim, "systemctl start nginx")
    try:
        paged = problem()
        assert paged is not None
        # the recovery message carries the problem's event id: the same event is cleared
        assert wait_for(lambda: recovery_of(paged) is not None, timeout=240, interval=10), \
            f"the recovery of {victim}'s event {paged['event_id']} never reached the receiver: {arrived()}"
        recovery = recovery_of(paged)
        assert recovery is not None
        duty = lab.region.spec.oncall.people["duty-engineer"]  # type: ignore[union-attr]
        assert paged["to"] == duty.phone, paged
        assert paged["severity"] in ("Average", "High", "Disaster"), paged
        assert _at(recovery) > _at(paged)
        print(json.dumps({"victim": victim, "trigger": paged["trigger"],
                          "problem_after_s": round(_at(paged) - started, 1),
                          "recovery_after_s": round(_at(recovery) - started, 1)}))
    finally:
        lab.run(zbx, f"systemctl stop {UNIT}", check=False)


def _at(alert: dict) -> float:  # type: ignore[type-arg]
    return datetime.fromisoformat(alert["received_at"]).timestamp()
