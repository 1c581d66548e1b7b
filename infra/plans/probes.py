"""What each kind of checklist item looks at on the hosts, and what it concludes.

A probe gets the testinfra host of the item and returns (passed, reason, evidence): the reason
says in one line why it failed (or what passed), the evidence is what was seen, verbatim enough
for an assessor to judge without rerunning. Probes never raise for a failed check; an error
reaching the host becomes a failed item with the error as its reason.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.openstack.topology import ZABBIX_AGENT_PORT
from infra.plans.checklist import CheckItem
from inventories.model import Region
from inventories.schema import Collector, Nginx, Pacs
from monitoring.client import ZabbixClient, resolve_connection

Evidence = dict[str, Any]


@dataclass
class Outcome:
    passed: bool
    reason: str
    evidence: Evidence = field(default_factory=dict)


@dataclass
class Context:
    """What probes share during one verify run (the Zabbix answer is fetched once)."""

    region: Region
    zabbix_hosts: dict[str, Any] | None = None
    zabbix_error: str | None = None
    zabbix_waited_s: float = 0.0


def _run(host: Any, cmd: str) -> tuple[int, str, str]:
    r = host.run(cmd)
    return r.rc, r.stdout, r.stderr


# ------------------------------------------------------------------ HW


def hardware(ctx: Context, item: CheckItem, host: Any) -> Outcome:
    size = ctx.region.hosts[item.host].spec.size
    assert size is not None
    _, cpus, _ = _run(host, "nproc")
    _, mem, _ = _run(host, "awk '/^MemTotal/{print $2}' /proc/meminfo")
    n, kb = int(cpus.strip() or 0), int(mem.strip() or 0)
    gb = round(kb / 1024 / 1024, 1)
    ev = {"cpus": n, "ram_gb": gb, "needs": {"vcpu": size.vcpu, "ram_gb": size.ram_gb}}
    problems = []
    if n < size.vcpu:
        problems.append(f"{n} CPU(s), the model needs {size.vcpu}")
    if kb < size.ram_gb * 1024 * 1024 * 0.9:  # firmware and kernel keep a little of the nominal RAM
        problems.append(f"{gb} GB RAM, the model needs {size.ram_gb} GB")
    if problems:
        return Outcome(False, "; ".join(problems), ev)
    return Outcome(True, f"{n} CPU(s), {gb} GB RAM", ev)


# ------------------------------------------------------------------ PORT


def declared_listeners(region: Region, host: str) -> tuple[set[tuple[str, int]], set[int], set[int], set[str]]:
    """(address, tcp/udp port) a host may listen on; ports allowed on every address (admin and
    PACS over tcp, tunnels over udp); and the VIPs (present only on their current holder)."""
    out: set[tuple[str, int]] = set()
    vips: set[str] = set()
    anywhere: set[int] = set()
    for name in region.host_services(host):
        svc = region.spec.services[name]
        addr = str(region.service_address(name, host))
        if isinstance(svc, Pacs):
            # Orthanc 1.10 (Debian 12) has no bind-address option: REST and DICOM listen on every
            # address; the orthanc role's firewall accepts them on the service address only.
            anywhere |= set(region.service_ports(name))
            continue
        for port in region.service_ports(name):
            out.add((addr, port))
        if isinstance(svc, Nginx) and svc.vip is not None:
            vips.add(str(svc.vip))
            out |= {(str(svc.vip), p) for p in region.service_ports(name)}
    primary = str(region.hosts[host].primary_address)
    out.add((primary, ZABBIX_AGENT_PORT))
    out |= {(primary, port) for _proto, port, _why in region.baseline_listeners(host)}
    admin = set(region.spec.region.admin_ports) | anywhere
    tunnels = {s.port for s in region.services.values() if isinstance(s, Collector) and host in (s.host, s.peer)}
    return out, admin, tunnels, vips


def listening_ports(ctx: Context, item: CheckItem, host: Any) -> Outcome:
    allowed, admin, tunnels, vips = declared_listeners(ctx.region, item.host)
    rc, out, err = _run(host, "ss -Hltnup")
    if rc != 0:
        return Outcome(False, f"could not list listening sockets: {err.strip()}", {})
    seen: set[tuple[str, int]] = set()
    extra: list[str] = []
    listeners: list[str] = []
    for line in out.splitlines():
        cols = line.split()
        if len(cols) < 5:
            continue
        proto, local = cols[0], cols[4]
        proc = cols[6] if len(cols) > 6 else ""
        addr, _, port_s = local.rpartition(":")
        addr = addr.strip("[]").split("%")[0]
        port = int(port_s)
        if addr.startswith("127.") or addr == "::1":
            continue
        listeners.append(f"{proto} {addr}:{port} {proc}".strip())
        if addr in ("0.0.0.0", "*", "::"):  # noqa: S104 (reading listeners, not binding)
            if (proto == "tcp" and port in admin) or (proto == "udp" and port in tunnels):
                continue
            extra.append(f"{proto} {addr}:{port} {proc}".strip())
            continue
        seen.add((addr, port))
        if (addr, port) not in allowed:
            extra.append(f"{proto} {addr}:{port} {proc}".strip())
    missing = sorted(f"{a}:{p}" for a, p in allowed if a not in vips and (a, p) not in seen and p not in tunnels)
    ev: Evidence = {"listeners": sorted(listeners), "declared": sorted(f"{a}:{p}" for a, p in allowed),
                    "any_address": {"tcp": sorted(admin), "udp": sorted(tunnels)}}
    problems = []
    if extra:
        problems.append("undeclared listener(s): " + ", ".join(sorted(extra)))
    if missing:
        problems.append("declared but not listening: " + ", ".join(missing))
    if problems:
        return Outcome(False, "; ".join(problems), ev)
    return Outcome(True, f"{len(listeners)} listener(s), all declared", ev)


# ------------------------------------------------------------------ TIME


def time_sync(ctx: Context, item: CheckItem, host: Any) -> Outcome:
    before = time.time()
    _, out, _ = _run(host, "date +%s.%N")
    after = time.time()
    try:
        offset = float(out.strip()) - (before + after) / 2
    except ValueError:
        return Outcome(False, f"could not read the clock: {out.strip()!r}", {})
    _, servers, _ = _run(host, "grep -E '^(server|pool) ' /etc/chrony/chrony.conf")
    _, enabled, _ = _run(host, "systemctl is-enabled chrony")
    _, active, _ = _run(host, "systemctl is-active chrony")
    _, cond, _ = _run(host, "systemctl show chrony -p ConditionResult --value")
    ev: Evidence = {"offset_s": round(offset, 3), "round_trip_s": round(after - before, 3),
                    "chrony_servers": servers.split("\n") if servers.strip() else [],
                    "chrony_enabled": enabled.strip(), "chrony_active": active.strip()}
    problems = []
    if abs(offset) > 1.0 + (after - before) / 2:
        problems.append(f"clock is {offset:+.2f} s off the operator's")
    if enabled.strip() != "enabled":
        problems.append(f"chrony is {enabled.strip() or 'not installed'}, not enabled")
    if not servers.strip():
        problems.append("chrony has no time server configured")
    if active.strip() == "active":
        _, tracking, _ = _run(host, "chronyc -n tracking")
        leap = next((ln.split(":", 1)[1].strip() for ln in tracking.splitlines() if ln.startswith("Leap status")), "")
        ev["leap_status"] = leap
        if leap != "Normal":
            problems.append(f"chrony is not synchronised (leap status {leap or 'unknown'})")
    elif cond.strip() == "no":
        # chrony's unit skips itself without CAP_SYS_TIME (a container): the host keeps its
        # hypervisor's clock, and the offset above is what proves it is right.
        ev["chrony_note"] = "unit condition not met (no CAP_SYS_TIME): the clock is the hypervisor's"
    else:
        problems.append(f"chrony is {active.strip()}")
    if problems:
        return Outcome(False, "; ".join(problems), ev)
    return Outcome(True, f"clock within {abs(offset):.2f} s; chrony enabled with {len(ev['chrony_servers'])} "
                   "server(s)", ev)


# ------------------------------------------------------------------ AGENT / ZBX


def agent(ctx: Context, item: CheckItem, host: Any) -> Outcome:
    svc = host.service("zabbix-agent2")
    running, enabled = svc.is_running, svc.is_enabled
    addr = str(ctx.region.hosts[item.host].primary_address)
    sock = host.socket(f"tcp://{addr}:{ZABBIX_AGENT_PORT}")
    listening = sock.is_listening
    ev = {"running": running, "enabled": enabled, f"listening_{addr}_{ZABBIX_AGENT_PORT}": listening}
    problems = [what for ok, what in ((running, "zabbix-agent2 is not running"),
                                      (enabled, "zabbix-agent2 is not enabled at boot"),
                                      (listening, f"nothing listens on {addr}:{ZABBIX_AGENT_PORT}")) if not ok]
    if problems:
        return Outcome(False, "; ".join(problems), ev)
    return Outcome(True, f"zabbix-agent2 running, enabled, listening on {addr}:{ZABBIX_AGENT_PORT}", ev)


# A host just registered is "unknown" until it is first polled: a new proxy fetches its
# configuration only every config_frequency_s (60 s on the lab), so acceptance right after
# `monitor apply` waits for that first poll, never longer than this.
PENDING_WAIT_S = 150.0


def _pending(found: list[dict[str, Any]]) -> list[str]:
    return [h["host"] for h in found if any(str(i.get("available")) == "0" for i in h.get("interfaces") or [])]


def wait_polled(read: Callable[[], list[dict[str, Any]]], wait_s: float = PENDING_WAIT_S,
                sleep: Callable[[float], None] = time.sleep,
                clock: Callable[[], float] = time.monotonic) -> tuple[list[dict[str, Any]], float]:
    """Read the hosts until none has an interface Zabbix has not polled yet, or `wait_s` passes;
    returns what the last read gave and the seconds waited."""
    start = clock()
    while True:
        found = read()
        waited = clock() - start
        if not _pending(found) or waited >= wait_s:
            return found, waited
        sleep(5)


def fetch_zabbix(ctx: Context, hosts: list[str], wait_s: float = PENDING_WAIT_S) -> None:
    try:
        client = ZabbixClient.connect(resolve_connection(ctx.region))
        found, ctx.zabbix_waited_s = wait_polled(lambda: client.call("host.get", {
            "output": ["host", "status"], "filter": {"host": hosts},
            "selectInterfaces": ["ip", "port", "available", "error"]}), wait_s)
        ctx.zabbix_hosts = {h["host"]: h for h in found}
    except Exception as exc:
        ctx.zabbix_error = getattr(exc, "message", None) or str(exc)


AVAILABLE = {"0": "unknown", "1": "available", "2": "unavailable"}


def zabbix(ctx: Context, item: CheckItem, host: Any) -> Outcome:
    if ctx.zabbix_hosts is None:
        return Outcome(False, f"Zabbix not asked: {ctx.zabbix_error}", {})
    found = ctx.zabbix_hosts.get(item.host)
    if found is None:
        return Outcome(False, f"{item.host} is not registered in the region's Zabbix "
                       f"(fix: hcops monitor apply --region {ctx.region.name})", {})
    iface = (found.get("interfaces") or [{}])[0]
    state = AVAILABLE.get(str(iface.get("available")), str(iface.get("available")))
    ev = {"zabbix_host": item.host, "enabled": found.get("status") == "0", "interface": iface}
    if found.get("status") != "0":
        return Outcome(False, f"{item.host} is registered but disabled in Zabbix", ev)
    if state != "available":
        err = f": {iface.get('error')}" if iface.get("error") else ""
        waited = f" (after waiting {ctx.zabbix_waited_s:.0f} s for a first poll)" if state == "unknown" else ""
        return Outcome(False, f"agent interface {iface.get('ip')}:{iface.get('port')} is {state} in Zabbix{err}"
                       + waited, ev)
    return Outcome(True, f"registered, agent interface {iface.get('ip')}:{iface.get('port')} available", ev)


# ------------------------------------------------------------------ BASE

BASELINE_PROBE = r"""
echo pwq_minlen=$(grep -E '^minlen' /etc/security/pwquality.conf | tr -dc 0-9)
echo pass_max_days=$(awk '/^PASS_MAX_DAYS/{print $2}' /etc/login.defs)
echo faillock=$(grep -c 'pam_faillock.so preauth' /etc/pam.d/common-auth)
echo faillock_deny=$(grep -E '^deny' /etc/security/faillock.conf | tr -dc 0-9)
echo tmout=$(bash -lc 'echo $TMOUT')
sshd -T 2>/dev/null | sed 's/ /=/' | \
  grep -E '^(passwordauthentication|kbdinteractiveauthentication|permitrootlogin|banner)='
echo audit_rules=$(grep -c -- '-k ' /etc/audit/rules.d/50-hcops.rules 2>/dev/null)
echo unwanted=$(dpkg -l telnet rsh-client avahi-daemon cups rpcbind 2>/dev/null | grep -c '^ii')
echo sudo_log=$(grep -c '^Defaults.*logfile' /etc/sudoers.d/50-hcops-logging 2>/dev/null)
"""

BASELINE_EXPECT: list[tuple[str, Callable[[str], bool], str]] = [
    ("pwq_minlen", lambda v: v.isdigit() and int(v) >= 12, "password minimum length >= 12"),
    ("pass_max_days", lambda v: v.isdigit() and int(v) <= 90, "password expiry <= 90 days"),
    ("faillock", lambda v: v == "1", "pam_faillock in the auth stack"),
    ("faillock_deny", lambda v: v.isdigit() and 0 < int(v) <= 5, "lockout after <= 5 failures"),
    ("tmout", lambda v: v.isdigit() and 0 < int(v) <= 600, "idle shells end within 600 s"),
    ("passwordauthentication", lambda v: v == "no", "sshd refuses passwords"),
    ("kbdinteractiveauthentication", lambda v: v == "no", "sshd refuses keyboard-interactive"),
    ("permitrootlogin", lambda v: v in ("no", "without-password", "prohibit-password"), "root only by key"),
    ("banner", lambda v: v not in ("", "none"), "login banner shown"),
    ("audit_rules", lambda v: v.isdigit() and int(v) >= 4, "audit rules installed"),
    ("unwanted", lambda v: v == "0", "no unwanted packages (telnet, rsh, avahi, cups, rpcbind)"),
    ("sudo_log", lambda v: v.isdigit() and int(v) >= 1, "sudo logs every command"),
]


def baseline(ctx: Context, item: CheckItem, host: Any) -> Outcome:
    _, out, _ = _run(host, BASELINE_PROBE)
    facts = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    failed = [f"{what} ({key}={facts.get(key, '')!r})" for key, ok, what in BASELINE_EXPECT
              if not ok(facts.get(key, ""))]
    if failed:
        return Outcome(False, "control(s) missing: " + "; ".join(failed), {"facts": facts})
    return Outcome(True, f"{len(BASELINE_EXPECT)} controls in place", {"facts": facts})


# ------------------------------------------------------------------ TUN

TCP_PROBE = ("python3 -c \"import socket,sys\nfor a in sys.argv[1:]:\n h,p=a.split(':')\n try:\n"
             "  socket.create_connection((h,int(p)),3).close(); print(a,'open')\n except OSError as e:"
             " print(a,'blocked',e.errno)\" ")


TUNNEL_RETRIES = 2
TUNNEL_RETRY_WAIT_S = 5.0


def _tcp_answers(host: Any, addresses: list[str]) -> dict[str, str]:
    """address -> "open", "blocked <errno>" ("blocked None": timed out), from `host`."""
    _, out, _ = _run(host, TCP_PROBE + " ".join(addresses))
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def _got_through(answer: str | None) -> bool:
    # a listener answered, or the far host refused (errno 111): either way the packet arrived
    return answer in ("open", "blocked 111")


def tunnel(ctx: Context, item: CheckItem, host: Any) -> Outcome:
    svc = ctx.region.services[item.subject]
    assert isinstance(svc, Collector)
    region = ctx.region
    link = region.links[svc.link]
    far = next(s for s in link.between if s != region.hosts[svc.host].site_name)
    admin = region.spec.region.admin_ports[0] if region.spec.region.admin_ports else 22
    peer_direct = str(region.hosts[svc.peer].primary_address)
    ev: Evidence = {}
    problems = []
    if svc.tunnel_cidr is not None:
        peer_inner = str(next(iter(svc.tunnel_cidr.hosts())))
        _, hs, _ = _run(host, "wg show wg0 latest-handshakes")
        parts = hs.split()
        age = int(time.time()) - int(parts[1]) if len(parts) == 2 and parts[1].isdigit() and int(parts[1]) else None
        ev["wg_latest_handshake_age_s"] = age
        if age is None:
            problems.append("no WireGuard handshake with the peer")
        elif age > 300:
            problems.append(f"last WireGuard handshake {age} s ago (more than 300 s)")
        # the declared tunnel_ports reach the peer (a listener answers, or its host refuses: errno
        # 111, the packet got through); the admin port inside the tunnel is not declared: dropped
        inside = [f"{peer_inner}:{p}" for p in svc.tunnel_ports]
        shut = [] if admin in svc.tunnel_ports else [f"{peer_inner}:{admin}"]
    else:
        inside, shut = [], []
    # the far site in clear: its hosts' service ports and the peer's admin port must be refused
    direct = [f"{peer_direct}:{admin}"]
    for name, s in region.services.items():
        for h in region.service_hosts(name):
            if region.hosts[h].site_name == far and s.kind not in ("collector",):
                direct.append(f"{region.service_address(name, h)}:{region.service_ports(name)[0]}")
    direct = sorted(set(direct))[:6]
    answers = _tcp_answers(host, inside + shut + direct)
    # a declared port that timed out is tried again: a lost SYN inside a tunnel is retransmitted
    # only once within the 3 s connect timeout (once seen on a cold lab, not reproduced since);
    # the attempts are evidence, so a tunnel that needs them shows it. Dropped ports are not retried.
    attempts = dict.fromkeys(inside, 1)
    for _ in range(TUNNEL_RETRIES):
        late = [a for a in inside if not _got_through(answers.get(a))]
        if not late:
            break
        time.sleep(TUNNEL_RETRY_WAIT_S)
        answers |= _tcp_answers(host, late)
        attempts |= {a: attempts[a] + 1 for a in late}
    ev["through_tunnel"] = {a: answers.get(a, "no answer") for a in inside}
    ev["through_tunnel_attempts"] = attempts
    ev["undeclared_in_tunnel"] = {a: answers.get(a, "no answer") for a in shut}
    ev["in_clear"] = {a: answers.get(a, "no answer") for a in direct}
    for a in inside:
        if not _got_through(answers.get(a)):
            problems.append(f"peer {svc.peer} not reachable through the tunnel at {a} "
                            f"({answers.get(a, 'no answer')}, {attempts[a]} attempts)")
    for a in shut:
        if _got_through(answers.get(a)):
            problems.append(f"undeclared port {a} reachable inside the tunnel (only tunnel_ports "
                            f"{', '.join(map(str, svc.tunnel_ports))} should be)")
    leaks = [a for a in direct if answers.get(a) == "open"]
    if leaks:
        problems.append(f"site {far} reachable in clear, outside the tunnel: {', '.join(leaks)}")
    if problems:
        return Outcome(False, "; ".join(problems), ev)
    retried = sum(1 for n in attempts.values() if n > 1)
    return Outcome(True, f"peer reached through the tunnel on {', '.join(map(str, svc.tunnel_ports))} and on "
                         f"nothing else tried; {len(direct)} far address(es) refused in clear"
                         + (f"; {retried} port(s) answered only on a retry" if retried else ""), ev)


# ------------------------------------------------------------------ BAK


def backup(ctx: Context, item: CheckItem, host: Any) -> Outcome:
    policy = item.subject
    unit = f"hcops-backup@{policy}.timer"
    _, enabled, _ = _run(host, f"systemctl is-enabled {unit}")
    _, active, _ = _run(host, f"systemctl is-active {unit}")
    ev: Evidence = {"timer": unit, "enabled": enabled.strip() or "not found", "active": active.strip()}
    problems = []
    if enabled.strip() != "enabled" or active.strip() != "active":
        problems.append(f"timer {unit} on {item.host} is {enabled.strip() or 'not found'}/{active.strip()}")
    try:
        status_mod = importlib.import_module("dr.backup.status")
    except ImportError as exc:
        problems.append(f"backup module not available (dr.backup.status: {exc}); the last backup cannot be verified")
        return Outcome(False, "; ".join(problems), ev)
    try:
        statuses = status_mod.policy_status(ctx.region)
    except Exception as exc:
        problems.append(f"backup status failed: {getattr(exc, 'message', None) or exc}")
        return Outcome(False, "; ".join(problems), ev)
    mine = next((s for s in statuses if s.policy == policy), None)
    if mine is None:
        problems.append(f"the backup engine reports nothing for policy {policy}")
    else:
        verified = mine.last_verified_at
        ev["last_verified_at"] = verified.astimezone(UTC).isoformat() if isinstance(verified, datetime) else None
        ev["verified_where"] = list(mine.verified_where)
        ev["age_s"] = mine.age_s
        if verified is None:
            problems.append(f"no backup of {policy} has been verified yet")
    if problems:
        return Outcome(False, "; ".join(problems), ev)
    return Outcome(True, f"timer active; last backup verified {ev['last_verified_at']} at "
                   f"{', '.join(ev['verified_where'])}", ev)


PROBES: dict[str, Callable[[Context, CheckItem, Any], Outcome]] = {
    "HW": hardware, "PORT": listening_ports, "TIME": time_sync, "AGENT": agent, "ZBX": zabbix,
    "BASE": baseline, "TUN": tunnel, "BAK": backup,
}
