"""Chaos Toolkit actions of the link-cut drill for monitoring: is the far side's monitoring data
kept through a cut line?

A remote site reports through its Zabbix proxy (`sites.<site>.monitoring_proxy`), which keeps what
it collects while the line is down. `far_monitoring_held`, run just before the line is restored,
counts the values collected on the far side since the cut that the server holds (none: the cut is
real); `far_monitoring_arrived`, run after, waits (bounded) until values with clocks in that same
window reach the server: the proxy's buffer arrived. Calculated items are left out: the server
computes them itself, line or no line.
"""

from __future__ import annotations

import time
from typing import Any

from dr.drills.context import dedicated_line, region_of, run_context
from inventories.errors import HcopsError
from inventories.model import Region

Config = dict[str, Any] | None
ARRIVAL_MAX_S = 300
"""Longest an arrival wait may be set to in an experiment file."""
BEFORE_S = 180
"""The values of the minutes before the cut show that data was flowing through the proxy."""
CALCULATED = "15"


def _far_hosts(region: Region) -> tuple[str, list[str]]:
    """The proxy behind the dedicated line and the hosts reporting through it."""
    line = region.links[dedicated_line(region)]
    for site in line.between:
        proxy = region.zabbix_proxies.get(site)
        if proxy is not None:
            return proxy.name, sorted(region.sites[site].hosts)
    raise HcopsError(f"no site of {dedicated_line(region)} has a Zabbix proxy: its monitoring data is not buffered",
                     "add monitoring_proxy to the remote site in sites.yml, deploy, and run monitor apply")


def _client(region: Region) -> Any:
    from monitoring.client import ZabbixClient, resolve_connection  # noqa: PLC0415 (only this drill needs it)

    return ZabbixClient.connect(resolve_connection(region, timeout=15, retries=1))


def _count(client: Any, keys: dict[str, list[str]], since: float, until: float) -> dict[str, int]:
    from monitoring.readback import values_received  # noqa: PLC0415

    return {h: values_received(client, h, int(since), int(until), keys=k).total if k else 0 for h, k in keys.items()}


def _cut_at(region: Region) -> float:
    what = f"{dedicated_line(region)} cut"
    found = [m["t"] for m in run_context(region).marks if m["what"] == what]
    if not found:
        raise HcopsError("the line was not cut in this run: nothing to measure", "run this after the cut-line action")
    return float(found[-1])


def far_monitoring_held(configuration: Config = None) -> dict[str, Any]:
    """Before the line is restored: the far side's values since the cut that the server holds."""
    region = region_of(configuration)
    proxy, hosts = _far_hosts(region)
    client = _client(region)
    keys = {h: sorted(i["key_"] for i in client.call("item.get", {"output": ["key_", "type"], "host": h,
                                                                   "filter": {"status": 0}})
                      if i["type"] != CALCULATED) for h in hosts}
    cut = _cut_at(region)
    now = time.time()
    # +2 s: the router's legs are down by the time the mark is written; a value sent just before
    # the mark may carry a clock a moment after it.
    window = (cut + 2, now)
    result = {"proxy": proxy, "hosts": hosts, "window": [round(window[0], 1), round(window[1], 1)],
              "before_cut": sum(_count(client, keys, cut - BEFORE_S, cut).values()),
              "during": sum(_count(client, keys, *window).values()), "after": None, "arrived_after_s": None}
    run_context(region).targets["far_monitoring"] = {**result, "_keys": keys}
    return result


def far_monitoring_arrived(timeout_s: float = 150, configuration: Config = None) -> dict[str, Any]:
    """After the line is back: wait until values with clocks inside the cut reach the server."""
    if not 0 < float(timeout_s) <= ARRIVAL_MAX_S:
        raise HcopsError(f"far_monitoring_arrived timeout_s={timeout_s} is out of range",
                         f"use 1 to {ARRIVAL_MAX_S} s in the experiment file")
    region = region_of(configuration)
    held = run_context(region).targets.get("far_monitoring")
    if not held:
        raise HcopsError("far_monitoring_held did not run before the line was restored",
                         "put the far-monitoring-held action before restore-line in the experiment")
    client = _client(region)
    started = time.time()
    since, until = held["window"]
    after = 0
    while True:
        after = sum(_count(client, held["_keys"], since, until).values())
        if after > held["during"] or time.time() - started >= float(timeout_s):
            break
        time.sleep(5)
    held.update(after=after, arrived_after_s=round(time.time() - started, 1) if after > held["during"] else None)
    return {k: v for k, v in held.items() if not k.startswith("_")}
