"""On the lab: the local data center reports through its Zabbix proxy, and a cut line loses no
monitoring data.

The line is cut for CUT_S seconds (bounded, restored in `finally`). While it is down the server
holds no value collected on the far side after the cut; once it is back, the proxy's buffer fills
the window: every once-a-minute item that reported before the cut has values inside it, and no
item has a hole longer than its interval plus slack.
"""

from __future__ import annotations

import json
import time

import pytest

from dr.drills.context import dedicated_line
from infra.lab import control
from monitoring.client import ZabbixClient, resolve_connection
from monitoring.readback import ValueCount, values_received
from tests.fixtures.deploy import Deploys, wait_for
from tests.fixtures.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]
CUT_S = 90
SLACK_S = 45
"""A value may come up to this late after its interval (poller queue on a busy 2-core machine);
a lost cut would leave a hole of CUT_S + the interval."""


def _minutely(count: ValueCount, since: int) -> list[str]:
    """Items polled once a minute that stored a value each minute of the 3 before `since` (not
    unsupported ones, nor those whose preprocessing discards unchanged values)."""
    return sorted(k for k, item in count.items.items()
                  if item.delay == "1m" and sum(since - 180 <= c < since for c in item.clocks) >= 3)


def test_the_local_dc_proxy_buffers_through_a_cut_line(lab: Lab, deployed: Deploys, hcops) -> None:  # type: ignore[no-untyped-def]
    assert hcops("monitor", "apply", "--region", lab.region_arg, "--yes").code == 0
    region = lab.region
    proxy = next(iter(region.zabbix_proxies.values()))
    far = sorted(region.sites[proxy.site].hosts)
    client = ZabbixClient.connect(resolve_connection(region, timeout=15, retries=1))
    rows = client.call("host.get", {"output": ["host", "proxy_hostid"], "filter": {"host": far}})
    proxyid = client.call("proxy.get", {"output": ["proxyid"], "filter": {"host": proxy.name}})[0]["proxyid"]
    assert {r["host"]: r["proxy_hostid"] for r in rows} == dict.fromkeys(far, proxyid)
    # the agents' own config names the proxy, not the server
    assert f"Server={proxy.address}" in lab.run(far[-1], "grep ^Server= /etc/zabbix/zabbix_agent2.conf").stdout

    # Data flows through the proxy for 3 minutes before the cut (it fetches its configuration
    # every config_frequency_s; the hosts may be new to it).
    def flowing() -> bool:
        now = int(time.time())
        return all(values_received(client, h, now - 185, now, keys=["agent.ping"]).total >= 3 for h in far)
    assert wait_for(flowing, timeout=proxy.spec.config_frequency_s + 360, interval=15), \
        f"no agent.ping from {far} through proxy {proxy.name}"

    # What the proxy collects; calculated items (the MySQL template has some) are the server's own.
    keys = {h: sorted(i["key_"] for i in client.call("item.get", {"output": ["key_", "type"], "host": h,
                                                                  "filter": {"status": 0}}) if i["type"] != "15")
            for h in far}
    line = dedicated_line(region)
    cut_at = int(time.time())
    control.cut_link(region, line)
    try:
        time.sleep(CUT_S)
        during = {h: values_received(client, h, cut_at + 5, int(time.time()), keys=keys[h]).total for h in far}
    finally:
        control.restore_link(region, line)
    restored_at = int(time.time())
    # The server saw nothing collected on the far side while the line was down: the cut was real.
    assert sum(during.values()) == 0, during

    window = (cut_at + 5, restored_at - 5)

    def arrived() -> dict[str, ValueCount]:
        return {h: values_received(client, h, cut_at - 180, restored_at + 60, keys=keys[h]) for h in far}

    def filled() -> bool:
        return all(any(window[0] <= c <= window[1] for c in got.items["agent.ping"].clocks)
                   for got in arrived().values())
    assert wait_for(filled, timeout=180, interval=10), "the proxy's buffered values never reached the server"
    time.sleep(20)  # the rest of the buffer: the proxy sends in batches, oldest first
    got = arrived()
    inside = {h: sum(1 for item in c.items.values() for t in item.clocks if window[0] <= t <= window[1])
              for h, c in got.items()}
    holes = {}
    for host, count in got.items():
        for key in _minutely(count, cut_at):
            gaps = count.items[key].gaps(cut_at - 60, restored_at, 60 + SLACK_S)
            if gaps:
                holes[f"{host}/{key}"] = gaps
    checked = sum(len(_minutely(c, cut_at)) for c in got.values())
    print(json.dumps({"proxy": proxy.name, "cut_s": restored_at - cut_at, "values_during_cut": sum(during.values()),
                      "values_inside_cut_after": inside, "minutely_items_checked": checked, "holes": len(holes)}))
    assert checked >= len(far) and all(inside.values()), inside
    assert not holes, holes
