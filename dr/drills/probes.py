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


def _within(within_s: float, check: Any) -> bool:
    """True once `check()` holds, trying each second for up to `within_s`: a system just back from
    a rollback (a switch-back, a restarted node) gets a few seconds to reconnect, never longer."""
    deadline = time.monotonic() + float(within_s)
    while True:
        try:
            if check():
                return True
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(1)


def canaries_writing(within_s: float = 15, configuration: Config = None) -> bool:
    """Every canary had a write acknowledged within the last few seconds (waits up to `within_s`)."""
    region = region_of(configuration)

    def healthy() -> bool:
        statuses = [get_json(url + "/") for url in canary_urls(region).values()]
        return bool(statuses) and all(s.get("healthy") for s in statuses)
    return _within(within_s, healthy)


def vip_serves(within_s: float = 15, configuration: Config = None) -> bool:
    """The VIP answers its health page (waits up to `within_s`: after a switch-back the app
    reconnects to the primary it was given back)."""
    region = region_of(configuration)
    url = vip_url(region)
    if url is None:
        return True  # no VIP in this region: nothing to check

    def serves() -> bool:
        get_json(url)
        return True
    return _within(within_s, serves)
