"""Read monitoring data back: how many values Zabbix received for a host over a time window.

The failover drills' link-cut experiment asks "was monitoring data lost while the line was
down?": count the values each item of a host stored per minute before, during and after the
cut, and compare with what the item's interval promises. A proxy that buffered the cut fills
the window once the line is back (values keep their collection time); a lost stretch stays
empty. One `item.get` and one `history.get` per value type, whatever the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from inventories.errors import HcopsError
from monitoring.client import ZabbixClient

VALUE_TYPES = ("0", "1", "2", "3", "4")  # float, char, log, unsigned, text: each its own history table


@dataclass
class ItemValues:
    key: str
    delay: str
    clocks: list[int] = field(default_factory=list)

    def gaps(self, since: int, until: int, longest_allowed: int) -> list[tuple[int, int]]:
        """Stretches (start, end) inside the window longer than `longest_allowed` s with no value."""
        edges = [since, *sorted(c for c in self.clocks if since <= c <= until), until]
        return [(a, b) for a, b in pairwise(edges) if b - a > longest_allowed]


@dataclass
class ValueCount:
    """What Zabbix holds for one host in [since, until]; `items` by item key."""

    host: str
    since: int
    until: int
    items: dict[str, ItemValues] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(len(i.clocks) for i in self.items.values())

    def per_item(self) -> dict[str, int]:
        return {key: len(item.clocks) for key, item in sorted(self.items.items())}

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "since": self.since, "until": self.until, "total": self.total,
                "per_item": self.per_item()}


def values_received(client: ZabbixClient, host: str, since: int, until: int,
                    keys: list[str] | None = None) -> ValueCount:
    """Values stored for `host`'s items (all, or those `keys`) with a clock in [since, until].

    Call it again after the line is back to see buffered values arrive; compare two calls with
    `lost_between` or look for holes with `ItemValues.gaps`.
    """
    if until < since:
        raise HcopsError(f"window ends ({until}) before it starts ({since})", "pass since <= until (Unix seconds)")
    params: dict[str, Any] = {"output": ["itemid", "key_", "value_type", "delay"], "host": host,
                              "filter": {"status": 0}}
    if keys:
        params["filter"]["key_"] = keys
    items = client.call("item.get", params)
    if not items and not client.call("host.get", {"output": ["hostid"], "filter": {"host": host}}):
        raise HcopsError(f"host {host!r} is not in Zabbix", "use a host name the sync created (model host names)")
    out = ValueCount(host, since, until, {i["key_"]: ItemValues(i["key_"], i["delay"]) for i in items})
    by_id = {i["itemid"]: i["key_"] for i in items}
    for value_type in VALUE_TYPES:
        ids = [i["itemid"] for i in items if i["value_type"] == value_type]
        if not ids:
            continue
        rows = client.call("history.get", {"output": ["itemid", "clock"], "history": int(value_type), "itemids": ids,
                                           "time_from": since, "time_till": until, "sortfield": "clock"})
        for row in rows:
            out.items[by_id[row["itemid"]]].clocks.append(int(row["clock"]))
    return out


def lost_between(before: ValueCount, after: ValueCount) -> dict[str, int]:
    """Items that hold fewer values in the later reading of the same window (history lost)."""
    return {key: len(item.clocks) - len(after.items.get(key, ItemValues(key, "")).clocks)
            for key, item in before.items.items()
            if len(after.items.get(key, ItemValues(key, "")).clocks) < len(item.clocks)}
