"""Site bridges, the shaped link router, and the host's own routing rules for the lab.

Cross-site traffic must cross the dedicated line, so the root namespace holds an address on
every bridge but never forwards between them (forwarding off per bridge and an nftables drop
for bridge-to-bridge), and what the host itself sends from its address in one site to another
site leaves through that site's gateway (policy routing), so even replies from the S3 endpoint
to the other site are shaped. The line is a network namespace with one veth leg per site
network, each capped with tbf on egress: one cap per direction. This kernel has no netem, so
the line's latency cannot be reproduced; only its bandwidth is.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.lab.layout import BridgeSpec, Layout, LinkSpec
from infra.lab.system import ok, run
from inventories.errors import HcopsError


def _json(args: list[str]) -> list[dict[str, Any]]:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    data = json.loads(proc.stdout)
    return data if isinstance(data, list) else []


def links_in(netns: str | None = None) -> dict[str, dict[str, Any]]:
    base = ["ip", "-j", "-d"] + (["-n", netns] if netns else [])
    return {str(d["ifname"]): d for d in _json(base + ["link", "show"])}


def addresses_in(netns: str | None = None) -> dict[str, list[str]]:
    base = ["ip", "-j"] + (["-n", netns] if netns else [])
    out: dict[str, list[str]] = {}
    for d in _json(base + ["addr", "show"]):
        infos = d.get("addr_info", [])
        assert isinstance(infos, list)
        out[str(d["ifname"])] = [f"{a['local']}/{a['prefixlen']}" for a in infos if a.get("family") == "inet"]
    return out


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def _sysctl(path: str, value: str, netns: str | None = None) -> None:
    if netns:
        run(["ip", "netns", "exec", netns, "sh", "-c", f"echo {value} > /proc/sys/{path}"], f"sysctl {path}")
    else:
        Path("/proc/sys", path).write_text(value + "\n")


def _prefixed(addr: object, br: BridgeSpec) -> str:
    return f"{addr}/{br.cidr.prefixlen}"


# ---------------------------------------------------------------- observation

@dataclass
class BridgeState:
    exists: bool
    is_bridge: bool
    has_address: bool
    up: bool


def bridge_state(br: BridgeSpec) -> BridgeState:
    links = links_in()
    info = links.get(br.name)
    if info is None:
        return BridgeState(False, False, False, False)
    kind = (info.get("linkinfo") or {}).get("info_kind")
    addrs = addresses_in().get(br.name, [])
    return BridgeState(True, kind == "bridge", _prefixed(br.host_address, br) in addrs,
                       "UP" in (info.get("flags") or []))


@dataclass
class LinkState:
    netns: bool
    ports: dict[str, bool]  # inner port name -> present with its gateway address
    up: dict[str, bool]  # inner port name -> administratively up
    shaped: dict[str, bool]  # inner port name -> tbf present

    @property
    def complete(self) -> bool:
        return self.netns and all(self.ports.values()) and all(self.shaped.values())

    @property
    def cut(self) -> bool:
        return self.complete and not any(self.up.values())


def link_state(link: LinkSpec) -> LinkState:
    if not netns_exists(link.netns):
        names = [p.inner for p in link.ports]
        return LinkState(False, dict.fromkeys(names, False), dict.fromkeys(names, False),
                         dict.fromkeys(names, False))
    inner = links_in(link.netns)
    addrs = addresses_in(link.netns)
    outer = links_in()
    ports, up, shaped = {}, {}, {}
    for port in link.ports:
        info = inner.get(port.inner)
        ports[port.inner] = (info is not None and port.outer in outer
                             and _prefixed(port.bridge.gateway, port.bridge) in addrs.get(port.inner, [])
                             and outer[port.outer].get("master") == port.bridge.name)
        up[port.inner] = info is not None and "UP" in (info.get("flags") or [])
        qd = _json(["ip", "netns", "exec", link.netns, "tc", "-j", "qdisc", "show", "dev", port.inner])
        shaped[port.inner] = any(q.get("kind") == "tbf" for q in qd)
    return LinkState(True, ports, up, shaped)


def host_routing_ok(layout: Layout) -> bool:
    rules = _json(["ip", "-j", "rule", "show"])
    for br in layout.bridges.values():
        if not any(r.get("src") == str(br.host_address) and str(r.get("table")) == str(br.table) for r in rules):
            return False
        routes = _json(["ip", "-j", "route", "show", "table", str(br.table)])
        if len(routes) < len(_table_routes(layout, br)):
            return False
    return ok(["nft", "list", "table", "inet", layout.nft_table])


# ---------------------------------------------------------------- creation

def _address_owner(addr: str) -> str | None:
    for ifname, addrs in addresses_in().items():
        if any(a.split("/")[0] == addr for a in addrs):
            return ifname
    return None


def ensure_bridge(layout: Layout, br: BridgeSpec) -> None:
    links = links_in()
    if br.name in links:
        kind = (links[br.name].get("linkinfo") or {}).get("info_kind")
        alias = str(links[br.name].get("ifalias", ""))
        if kind != "bridge" or not alias.startswith(layout.alias_prefix):
            raise HcopsError(f"network interface name {br.name} is already in use by something else ({kind})",
                             f"remove it (`ip link del {br.name}`) or rename the region/site")
    else:
        for net_addr in (br.host_address, br.gateway):
            owner = _address_owner(str(net_addr))
            if owner is not None:
                raise HcopsError(f"address {net_addr} of lab network {br.key} is already in use on {owner}",
                                 f"free it (`ip addr del {net_addr}/{br.cidr.prefixlen} dev {owner}`) "
                                 "or give the lab network another range")
        run(["ip", "link", "add", br.name, "type", "bridge", "forward_delay", "0", "stp_state", "0"],
            f"create bridge {br.name}")
    run(["ip", "link", "set", br.name, "alias", layout.alias_prefix + br.alias], "label bridge")
    _sysctl(f"net/ipv4/conf/{br.name}/forwarding", "0")
    _sysctl(f"net/ipv4/conf/{br.name}/rp_filter", "0")
    _sysctl(f"net/ipv6/conf/{br.name}/disable_ipv6", "1")
    run(["ip", "addr", "replace", _prefixed(br.host_address, br), "dev", br.name], f"address bridge {br.name}")
    run(["ip", "link", "set", br.name, "up"], f"bring up bridge {br.name}")


def _table_routes(layout: Layout, br: BridgeSpec) -> list[list[str]]:
    routes = [[str(br.cidr), "dev", br.name, "src", str(br.host_address)]]
    for other in layout.bridges.values():
        if other.key != br.key:
            routes.append([str(other.cidr), "via", str(br.gateway), "dev", br.name, "onlink"])
    return routes


def ensure_host_routing(layout: Layout) -> None:
    """Policy routes for what the host sends from its lab addresses, and no forwarding between bridges."""
    rules = _json(["ip", "-j", "rule", "show"])
    for br in layout.bridges.values():
        for route in _table_routes(layout, br):
            run(["ip", "route", "replace", *route, "table", str(br.table)], f"route in table {br.table}")
        if not any(r.get("src") == str(br.host_address) and str(r.get("table")) == str(br.table) for r in rules):
            run(["ip", "rule", "add", "from", str(br.host_address), "lookup", str(br.table),
                 "priority", "1000"], f"policy rule for {br.host_address}")
    names = [b.name for b in layout.bridges.values()]
    drops = "\n".join(f'    iifname "{a}" oifname "{b}" drop' for a in names for b in names if a != b)
    ruleset = (f"table inet {layout.nft_table} {{}}\ndelete table inet {layout.nft_table}\n"
               f"table inet {layout.nft_table} {{\n  chain forward {{\n"
               f"    type filter hook forward priority -10; policy accept;\n{drops}\n  }}\n}}\n")
    run(["nft", "-f", "-"], "nftables rules (no forwarding between lab bridges)", input_text=ruleset)


def _burst_bytes(mbit: int) -> int:
    # tbf needs a bucket of at least rate/HZ; 4 ms worth at the rate, never below 32 KiB.
    return max(32 * 1024, mbit * 1_000_000 // 8 // 250)


def ensure_link(layout: Layout, link: LinkSpec) -> None:
    if not netns_exists(link.netns):
        run(["ip", "netns", "add", link.netns], f"create router namespace {link.netns}")
    run(["ip", "-n", link.netns, "link", "set", "lo", "up"], "router loopback")
    _sysctl("net/ipv4/ip_forward", "1", link.netns)
    _sysctl("net/ipv4/conf/all/rp_filter", "0", link.netns)
    outer_links = links_in()
    inner_links = links_in(link.netns)
    for port in link.ports:
        if port.inner not in inner_links or port.outer not in outer_links:
            if port.inner in inner_links:
                run(["ip", "-n", link.netns, "link", "del", port.inner], "remove half a router leg")
            if port.outer in outer_links:
                run(["ip", "link", "del", port.outer], "remove half a router leg")
            run(["ip", "link", "add", port.outer, "type", "veth", "peer", "name", port.inner,
                 "netns", link.netns], f"create router leg {port.outer}")
        run(["ip", "link", "set", port.outer, "alias", f"{layout.alias_prefix}link {link.name} {port.bridge.key}"],
            "label router leg")
        run(["ip", "link", "set", port.outer, "master", port.bridge.name], f"attach {port.outer}")
        run(["ip", "link", "set", port.outer, "up"], f"bring up {port.outer}")
        run(["ip", "-n", link.netns, "addr", "replace", _prefixed(port.bridge.gateway, port.bridge),
             "dev", port.inner], f"gateway address on {port.inner}")
        burst = _burst_bytes(link.bandwidth_mbit)
        run(["ip", "netns", "exec", link.netns, "tc", "qdisc", "replace", "dev", port.inner, "root", "tbf",
             "rate", f"{link.bandwidth_mbit}mbit", "burst", str(burst), "latency", "50ms"],
            f"cap {port.inner} at {link.bandwidth_mbit} Mbit/s")
        run(["ip", "-n", link.netns, "link", "set", port.inner, "up"], f"bring up {port.inner}")


def set_link_up(link: LinkSpec, up: bool) -> None:
    if not netns_exists(link.netns):
        raise HcopsError(f"link {link.name} is not built (no namespace {link.netns})",
                         "run `hcops infra up` first")
    for port in link.ports:
        run(["ip", "-n", link.netns, "link", "set", port.inner, "up" if up else "down"],
            f"{'restore' if up else 'cut'} {link.name}")


# ---------------------------------------------------------------- removal

def remove_all(layout: Layout) -> list[str]:
    """Remove every network object of this lab (by name and by alias); returns what was removed."""
    removed: list[str] = []
    for link in layout.links.values():
        if netns_exists(link.netns):
            run(["ip", "netns", "del", link.netns], f"remove namespace {link.netns}")
            removed.append(f"namespace {link.netns}")
    names = {b.name for b in layout.bridges.values()}
    names |= {p.outer for link in layout.links.values() for p in link.ports}
    for ifname, info in links_in().items():
        if str(info.get("ifalias", "")).startswith(layout.alias_prefix):
            names.add(ifname)
    existing = links_in()
    for ifname in sorted(names, key=lambda n: n.startswith("hc")):  # legs first, bridges last
        if ifname in existing:
            run(["ip", "link", "del", ifname], f"remove {ifname}")
            removed.append(f"link {ifname}")
    rules = _json(["ip", "-j", "rule", "show"])
    for br in layout.bridges.values():
        for r in rules:
            if str(r.get("table")) == str(br.table) or r.get("src") == str(br.host_address):
                run(["ip", "rule", "del", "priority", str(r.get("priority")), "from", str(r.get("src", "all")),
                     "lookup", str(r.get("table"))], "remove policy rule")
                removed.append(f"rule from {r.get('src')}")
        if _json(["ip", "-j", "route", "show", "table", str(br.table)]):
            run(["ip", "route", "flush", "table", str(br.table)], f"flush table {br.table}")
            removed.append(f"route table {br.table}")
    if ok(["nft", "list", "table", "inet", layout.nft_table]):
        run(["nft", "delete", "table", "inet", layout.nft_table], "remove nftables table")
        removed.append(f"nftables table {layout.nft_table}")
    return removed
