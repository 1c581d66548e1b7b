"""Chaos Toolkit probes: the steady state every drill checks before it starts and after it ends."""

from __future__ import annotations

import time
from typing import Any

from dr.drills.context import region_of
from dr.drills.load import canary_urls, get_json, vip_url
from dr.failover.topology import current_primary, observe

Config = dict[str, Any] | None


def single_writable_primary(configuration: Config = None) -> bool:
    """Exactly one database server accepts writes, and every other one replicates from it."""
    region = region_of(configuration)
    _n, _s, states = observe(region)
    primary = current_primary(states)
    if primary is None or sum(1 for s in states.values() if s.writable) != 1:
        return False
    return all(s.reachable and s.is_replica and s.replica.get("Slave_IO_Running") == "Yes"
               and s.replica.get("Slave_SQL_Running") == "Yes" for h, s in states.items() if h != primary)


def canaries_writing(within_s: float = 15, configuration: Config = None) -> bool:
    """Every canary had a write acknowledged within the last few seconds (waits up to `within_s`)."""
    region = region_of(configuration)
    deadline = time.monotonic() + float(within_s)
    while True:
        try:
            statuses = [get_json(url + "/") for url in canary_urls(region).values()]
            if statuses and all(s.get("healthy") for s in statuses):
                return True
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(1)


def vip_serves(configuration: Config = None) -> bool:
    region = region_of(configuration)
    url = vip_url(region)
    if url is None:
        return True  # no VIP in this region: nothing to check
    try:
        get_json(url)
        return True
    except (OSError, ValueError):
        return False
