"""Filters the hcops roles share: address arithmetic the roles need without ansible.utils.

    '10.231.2.0/24' | hcops_mysql_host        -> '10.231.2.0/255.255.255.0'
    '10.231.250.0/30' | hcops_nth_address(1)  -> '10.231.250.1'
    '10.231.250.0/30' | hcops_prefixlen       -> 30
    '10.231.250.0/30' | hcops_host_cidr(2)    -> '10.231.250.2/30'
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


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "hcops_mysql_host": hcops_mysql_host,
            "hcops_nth_address": hcops_nth_address,
            "hcops_prefixlen": hcops_prefixlen,
            "hcops_host_cidr": hcops_host_cidr,
        }
