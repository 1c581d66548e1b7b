"""On the lab: `monitor apply --rotate-psk` gives Zabbix and every agent (and the local data
center's proxy) new keys in one run, and spends no error budget: no "agent silent" outage opens,
and every host reports again with its new key."""

from __future__ import annotations

import json
import time

import pytest

from infra.state import SecretStore
from monitoring.client import ZabbixClient, resolve_connection
from monitoring.readback import values_received
from tests.fixtures.deploy import Deploys, wait_for
from tests.fixtures.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_a_psk_rotation_reaches_the_agents_in_the_same_run(lab: Lab, deployed: Deploys, hcops) -> None:  # type: ignore[no-untyped-def]
    assert hcops("monitor", "apply", "--region", lab.region_arg, "--yes").code == 0
    region = lab.region
    store = SecretStore(region.name)
    hosts = sorted(region.hosts)
    old = {h: store.get(f"zabbix-psk-{h}", "psk") for h in hosts}
    started = time.time()
    rotated = hcops("-o", "json", "monitor", "apply", "--region", lab.region_arg, "--yes", "--rotate-psk")
    assert rotated.code == 0, rotated.stderr[-3000:]
    out = json.loads(rotated.stdout)
    assert sorted(out["psk_sent"]) == hosts and set(hosts) <= set(out["keys_deployed_to"])
    done = time.time()
    for h in hosts:
        new = store.get(f"zabbix-psk-{h}", "psk")
        assert new != old[h]
        assert lab.run(h, "cat /etc/zabbix/hcops.psk").stdout.strip() == new  # the agent has it

    client = ZabbixClient.connect(resolve_connection(region, timeout=15, retries=1))

    def reporting() -> bool:
        now = int(time.time())
        return all(values_received(client, h, int(done), now, keys=["agent.ping"]).total > 0 for h in hosts)
    assert wait_for(reporting, timeout=240, interval=10), "some agents did not report with their new key"
    back = time.time()
    # No outage opened: "agent silent 3m" needs three minutes without a value.
    events = client.call("event.get", {"output": ["name", "value"], "time_from": int(started), "value": 1,
                                       "tags": [{"tag": "hcops-slo", "value": "outage", "operator": 1}]})
    silent = [e["name"] for e in events if "unreachable" in e["name"]]
    print(json.dumps({"hosts": len(hosts), "rotate_and_deploy_s": round(done - started, 1),
                      "all_reporting_after_s": round(back - started, 1), "outage_events": silent}))
    assert not silent, silent
