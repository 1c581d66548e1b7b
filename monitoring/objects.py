"""The common shape of desired and actual Zabbix objects, so one diff serves every kind.

An object is a kind, a stable key (what hcops calls it: a host name, a group name, a service
path) and a flat dict of comparable fields holding plain strings, numbers and sorted tuples.
Both the model side (`desired`) and the API side (`actual`) normalise to exactly this form;
the diff then needs no per-kind knowledge, and a field that differs is a field to send.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["hostgroup", "proxy", "host", "httptest", "item", "trigger", "service", "sla",
               "mediatype", "role", "usergroup", "user", "action"]
KINDS: tuple[Kind, ...] = ("hostgroup", "proxy", "host", "httptest", "item", "trigger", "service", "sla",
                           "mediatype", "role", "usergroup", "user", "action")
"""Creation order: every kind refers only to kinds before it (deletes run in reverse)."""

MANAGED_TAG = ("managed-by", "hcops")
REGION_TAG = "region"
HOST_TAG = "hcops-host"
KEY_TAG = "hcops-key"
SLA_TAG = "hcops-sla"
VIP_TAG = "hcops-vip"
"""On a web check's outage trigger: the nginx service whose address (its VIP) failed. Its problem
counts against the service as a whole, not against the one proxy host the check runs on."""
GROUP_ROOT = "hcops"
SLO_PROBLEM_TAG = ("hcops-slo", "outage")
"""The tag hcops puts on the triggers that mean "not serving"; SLO services count only those."""
HOST_TAG_NAMES = frozenset({"managed-by", "region", "site", "county", "role", "service", "hcops-host"})
"""Host tag names hcops sets; a host's other tags are people's and are kept."""
PSK_SECRET = "zabbix-psk-{host}"  # noqa: S105 (the secret's name, shared with the zabbix_agent role)
PSK_IDENTITY = "hcops-{host}"

Tags = tuple[tuple[str, str], ...]


def tags(*pairs: tuple[str, str]) -> Tags:
    """Tags in the one order both sides use (Zabbix returns them unordered)."""
    return tuple(sorted(set(pairs)))


def managed_tags(region: str) -> list[dict[str, Any]]:
    """The tag filter that selects objects hcops owns in one region (both tags required)."""
    return [{"tag": MANAGED_TAG[0], "value": MANAGED_TAG[1], "operator": 1},
            {"tag": REGION_TAG, "value": region, "operator": 1}]


def group_prefix(region: str) -> str:
    return f"{GROUP_ROOT}/{region}"


def owns_group(region: str, name: str) -> bool:
    """Host groups carry no tags in Zabbix 6.0: hcops owns the ones under `hcops/<region>`."""
    prefix = group_prefix(region)
    return name == prefix or name.startswith(prefix + "/")


def proxy_prefix(region: str) -> str:
    """Proxies carry no tags in Zabbix 6.0 and their names allow no `/`: hcops' are `hcops-<region>-<site>`."""
    return f"{GROUP_ROOT}-{region}-"


def sla_prefix(region: str) -> str:
    return f"{GROUP_ROOT}/{region}/"


@dataclass
class Obj:
    """One Zabbix object as hcops compares it."""

    kind: Kind
    key: str
    fields: dict[str, Any]
    id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """API-side details that are not compared (interface ids, step ids)."""


@dataclass
class State:
    """Objects per kind, each by key."""

    objects: dict[Kind, dict[str, Obj]] = field(default_factory=lambda: {k: {} for k in KINDS})
    duplicates: list[Obj] = field(default_factory=list)
    """Owned objects whose key another owned object already holds (a retried create): deleted."""

    def add(self, obj: Obj) -> None:
        self.objects[obj.kind][obj.key] = obj

    def count(self) -> int:
        return sum(len(v) for v in self.objects.values())
