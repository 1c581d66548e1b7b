"""Filters the hcops roles share: address arithmetic the roles need without ansible.utils.

    '10.231.2.0/24' | hcops_mysql_host        -> '10.231.2.0/255.255.255.0'
    '10.231.250.0/30' | hcops_nth_address(1)  -> '10.231.250.1'
    '10.231.250.0/30' | hcops_prefixlen       -> 30
    '10.231.250.0/30' | hcops_host_cidr(2)    -> '10.231.250.2/30'
    '30 1 * * *' | hcops_oncalendar           -> '*-*-* 01:30:00'
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError


def _net(cidr: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(str(cidr), strict=False)
    except ValueError as exc:
        raise AnsibleFilterError(f"not an IPv4 network: {cidr!r} ({exc})") from None


def hcops_mysql_host(cidr: str) -> str:
    """A CIDR in the `address/netmask` form MariaDB accepts as an account host."""
    net = _net(cidr)
    if net.prefixlen == 0:
        return "%"
    if net.prefixlen == 32:
        return str(net.network_address)
    return f"{net.network_address}/{net.netmask}"


def hcops_nth_address(cidr: str, n: int) -> str:
    net = _net(cidr)
    if n < 1 or n >= net.num_addresses - 1:
        raise AnsibleFilterError(f"{cidr} has no usable address number {n}")
    return str(net.network_address + n)


def hcops_host_cidr(cidr: str, n: int) -> str:
    """Address number n of a network with the network's prefix, as interface configs want it."""
    return f"{hcops_nth_address(cidr, n)}/{_net(cidr).prefixlen}"


def hcops_prefixlen(cidr: str) -> int:
    return _net(cidr).prefixlen


_DOW = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _cal_field(field: str, width: int, names: tuple[str, ...] | None = None) -> str:
    out = []
    for part in field.split(","):
        rng, _, step = part.partition("/")
        if rng == "*":
            if names is not None or not step:
                return "*"
            out.append(f"{0:0{width}d}/{int(step)}")
            continue
        a, _, b = rng.partition("-")
        if names is not None:
            out.append(f"{names[int(a)]}..{names[int(b)]}" if b else names[int(a)])
        elif b:
            out.append(f"{int(a):0{width}d}..{int(b):0{width}d}" + (f"/{int(step)}" if step else ""))
        else:
            out.append(f"{int(a):0{width}d}" + (f"/{int(step)}" if step else ""))
    return ",".join(out)


def hcops_oncalendar(cron: str) -> str:
    """A five-field cron expression (as the model's backup schedules) as a systemd OnCalendar=."""
    fields = str(cron).split()
    if len(fields) != 5:
        raise AnsibleFilterError(f"not a five-field cron expression: {cron!r}")
    minute, hour, dom, month, dow = fields
    try:
        date = f"*-{_cal_field(month, 2)}-{_cal_field(dom, 2)}"
        time = f"{_cal_field(hour, 2)}:{_cal_field(minute, 2)}:00"
        days = "" if dow == "*" else _cal_field(dow, 1, _DOW) + " "
    except (ValueError, IndexError) as exc:
        raise AnsibleFilterError(f"cannot convert cron expression {cron!r}: {exc}") from None
    return f"{days}{date} {time}"


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "hcops_mysql_host": hcops_mysql_host,
            "hcops_nth_address": hcops_nth_address,
            "hcops_prefixlen": hcops_prefixlen,
            "hcops_host_cidr": hcops_host_cidr,
            "hcops_oncalendar": hcops_oncalendar,
        }
