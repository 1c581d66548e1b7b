"""Which services a service needs, as the model states them: the tiers an SLO's service stands on.

Both the Zabbix service trees (monitoring) and availability by design (dr) compose an SLO from
these tiers, so they are derived once, here, from the model.
"""

from __future__ import annotations

from inventories.model import Region
from inventories.schema import Canary, Nginx, Service


def dependencies(svc: Service) -> list[str]:
    """The services a service needs to work, as the model states them."""
    if isinstance(svc, Nginx):
        return [pool.service for pool in svc.pools.values()]
    if isinstance(svc, Canary):
        return [svc.database]
    return []


def tiers(region: Region, service: str) -> list[str]:
    """The service and everything it depends on, breadth first, each once."""
    order: list[str] = []
    queue = [service]
    while queue:
        name = queue.pop(0)
        if name in order or name not in region.services:
            continue
        order.append(name)
        queue.extend(dependencies(region.services[name]))
    return order
