"""The probes' judgement on what hosts answer, without a lab: a fake testinfra host that knows
only the commands it was given (any other command fails the test), fed real `ss`/`wg` output."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

import pytest

from infra.plans.checklist import checklist
from infra.plans.probes import Context, baseline, listening_ports, time_sync, tunnel
from infra.plans.render import normalise_pdf
from inventories.loader import load_region


@dataclass
class Answer:
    rc: int
    stdout: str
    stderr: str = ""


class FakeHost:
    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def run(self, cmd: str) -> Answer:
        self.asked.append(cmd)
        for prefix, out in self.answers.items():
            if cmd.startswith(prefix):
                return Answer(0, out)
        raise AssertionError(f"unexpected command {cmd!r}")


@pytest.fixture(scope="module")
def lab():  # type: ignore[no-untyped-def]
    return load_region("lab")


def item(region, ident: str):  # type: ignore[no-untyped-def]
    return next(i for i in checklist(region, "ruijin") if i.id == ident)


DB1_SS = """tcp   LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=101,fd=3))
tcp   LISTEN 0      80       10.231.1.11:3306      0.0.0.0:*    users:(("mariadbd",pid=202,fd=20))
tcp   LISTEN 0      4096     10.231.1.11:10050     0.0.0.0:*    users:(("zabbix_agent2",pid=303,fd=8))
tcp   LISTEN 0      80         127.0.0.1:3306      0.0.0.0:*    users:(("mariadbd",pid=202,fd=21))
"""


def test_declared_listeners_pass_and_an_extra_one_is_named(lab) -> None:  # type: ignore[no-untyped-def]
    ctx = Context(lab)
    ok = listening_ports(ctx, item(lab, "PORT-db1"), FakeHost({"ss ": DB1_SS}))
    assert ok.passed, ok.reason
    extra = DB1_SS + 'tcp LISTEN 0 5 0.0.0.0:18999 0.0.0.0:* users:(("python3",pid=404,fd=3))\n'
    bad = listening_ports(ctx, item(lab, "PORT-db1"), FakeHost({"ss ": extra}))
    assert not bad.passed
    assert bad.reason == 'undeclared listener(s): tcp 0.0.0.0:18999 users:(("python3",pid=404,fd=3))'
    gone = listening_ports(ctx, item(lab, "PORT-db1"), FakeHost({"ss ": DB1_SS.replace("10.231.1.11:3306", "x:1")}))
    assert not gone.passed and "declared but not listening: 10.231.1.11:3306" in gone.reason


def test_time_offset_and_chrony_state(lab) -> None:  # type: ignore[no-untyped-def]
    ctx = Context(lab)
    common = {"grep -E '^(server|pool) '": "server 10.231.1.1 iburst\n", "systemctl is-enabled chrony": "enabled\n",
              "systemctl show chrony": "no\n", "systemctl is-active chrony": "inactive\n"}
    now = FakeHost({"date +%s.%N": f"{time.time():.6f}\n", **common})
    assert time_sync(ctx, item(lab, "TIME-db1"), now).passed
    late = FakeHost({"date +%s.%N": f"{time.time() - 90:.6f}\n", **common})
    res = time_sync(ctx, item(lab, "TIME-db1"), late)
    assert not res.passed and "s off the operator's" in res.reason
    unsynced = FakeHost({"date +%s.%N": f"{time.time():.6f}\n", **common, "systemctl is-active chrony": "active\n",
                         "chronyc -n tracking": "Leap status     : Not synchronised\n"})
    res = time_sync(ctx, item(lab, "TIME-db1"), unsynced)
    assert not res.passed and "not synchronised (leap status Not synchronised)" in res.reason


def test_tunnel_leak_and_missing_handshake(lab) -> None:  # type: ignore[no-untyped-def]
    ctx = Context(lab)
    it = item(lab, "TUN-frontline")

    def host(handshake: int, clear: str, ssh_inside: str = "blocked None") -> FakeHost:
        def probe_answer() -> str:
            return "\n".join(["10.231.250.1:443 blocked 111", "10.231.250.1:8080 open",
                              f"10.231.250.1:22 {ssh_inside}"] + [f"{a} {clear}" for a in (
                "10.231.2.10:22", "10.231.2.10:443", "10.231.2.10:8080", "10.231.2.11:443", "10.231.2.11:8080",
                "10.231.2.12:3306")])
        return FakeHost({"wg show wg0 latest-handshakes": f"PEERKEY\t{handshake}\n", "python3 -c": probe_answer()})

    assert tunnel(ctx, it, host(int(time.time()) - 20, "blocked 111")).passed
    # SSH is not one of the lab's tunnel_ports (443, 8080): reaching it inside the tunnel fails the item
    open_ssh = tunnel(ctx, it, host(int(time.time()) - 20, "blocked 111", ssh_inside="open"))
    assert not open_ssh.passed and "undeclared port 10.231.250.1:22 reachable inside the tunnel" in open_ssh.reason
    leak = tunnel(ctx, it, host(int(time.time()) - 20, "open"))
    assert not leak.passed and "site cloud reachable in clear, outside the tunnel: 10.231.2.10:22" in leak.reason
    stale = tunnel(ctx, it, host(0, "blocked 111"))
    assert not stale.passed and "no WireGuard handshake" in stale.reason


def test_tunnel_retries_a_timed_out_port_and_says_so(lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("infra.plans.probes.TUNNEL_RETRY_WAIT_S", 0.0)
    ctx = Context(lab)
    it = item(lab, "TUN-frontline")
    clear = [f"{a} blocked 111" for a in ("10.231.2.10:22", "10.231.2.10:443", "10.231.2.10:8080",
                                          "10.231.2.11:443", "10.231.2.11:8080", "10.231.2.12:3306")]

    class Tunnel(FakeHost):
        """443 inside the tunnel times out for the first `lost` probes, then answers."""

        def __init__(self, lost: int) -> None:
            super().__init__({"wg show wg0 latest-handshakes": f"PEERKEY\t{int(time.time()) - 20}\n"})
            self.lost = lost

        def run(self, cmd: str) -> Answer:
            if not cmd.startswith("python3 -c"):
                return super().run(cmd)
            self.asked.append(cmd)
            first = "10.231.250.1:22" in cmd
            answer = "blocked None" if self.lost > 0 else "blocked 111"
            self.lost -= 1
            lines = [f"10.231.250.1:443 {answer}"] + (["10.231.250.1:8080 open", "10.231.250.1:22 blocked None"]
                                                      + clear if first else [])
            return Answer(0, "\n".join(lines))

    once = Tunnel(lost=1)
    res = tunnel(ctx, it, once)
    assert res.passed and "1 port(s) answered only on a retry" in res.reason, res.reason
    assert res.evidence["through_tunnel_attempts"] == {"10.231.250.1:443": 2, "10.231.250.1:8080": 1}
    # the retry asks only for the port that timed out, not the dropped ones
    assert once.asked[-1].endswith(" 10.231.250.1:443")
    gone = tunnel(ctx, it, Tunnel(lost=99))
    assert not gone.passed
    assert "not reachable through the tunnel at 10.231.250.1:443 (blocked None, 3 attempts)" in gone.reason


def test_baseline_names_the_missing_control(lab) -> None:  # type: ignore[no-untyped-def]
    good = ("pwq_minlen=12\npass_max_days=90\nfaillock=1\nfaillock_deny=5\ntmout=600\npasswordauthentication=no\n"
            "kbdinteractiveauthentication=no\npermitrootlogin=without-password\nbanner=/etc/issue.net\n"
            "audit_rules=6\nunwanted=0\nsudo_log=1\n")
    ctx = Context(lab)
    assert baseline(ctx, item(lab, "BASE-db1"), FakeHost({"\necho pwq": good})).passed
    bad = baseline(ctx, item(lab, "BASE-db1"), FakeHost({"\necho pwq": good.replace("passwordauthentication=no",
                                                                                      "passwordauthentication=yes")}))
    assert not bad.passed and bad.reason == "control(s) missing: sshd refuses passwords (passwordauthentication='yes')"


def test_pdf_print_stamps_become_the_cover_date() -> None:
    raw = b"<< /CreationDate (D:20261201093012+00'00') /ModDate (D:20261201093013+00'00') >>"
    out = normalise_pdf(raw, date(2025, 3, 4))
    assert out == b"<< /CreationDate (D:20250304000000+00'00') /ModDate (D:20250304000000+00'00') >>"
    assert len(out) == len(raw)


def test_the_login_decides_sudo_from_the_ssh_config() -> None:
    from infra.plans.hosts import _ssh_config_user

    config = ("Host db1 10.231.1.11\n  HostName 10.231.1.11\n  User hcops-auto\n  BatchMode yes\n"
              "Host app1 10.231.2.10\n  HostName 10.231.2.10\n  User root\n")
    assert _ssh_config_user(config, "db1") == "hcops-auto"  # a named automation account: checks run with sudo
    assert _ssh_config_user(config, "app1") == "root"
    assert _ssh_config_user(config, "zbx1") is None


def test_acceptance_waits_for_a_first_poll_and_no_longer_than_its_bound() -> None:
    """Right after `monitor apply` a proxy's hosts are "unknown" until it fetches its configuration:
    the check reads again until each is polled, and stops at the bound when one never is."""
    from infra.plans.probes import wait_polled

    def host(available: str) -> dict[str, object]:
        return {"host": "db1", "interfaces": [{"ip": "10.231.1.11", "port": "10050", "available": available}]}

    now = [0.0]
    answers = [[host("0")], [host("0")], [host("1")]]
    found, waited = wait_polled(lambda: answers.pop(0), 150, sleep=lambda s: now.__setitem__(0, now[0] + s),
                                clock=lambda: now[0])
    assert found == [host("1")] and waited == 10 and answers == []
    reads = [0]

    def never() -> list[dict[str, object]]:
        reads[0] += 1
        return [host("0")]
    now[0] = 0.0
    found, waited = wait_polled(never, 30, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert found == [host("0")] and waited == 30 and reads[0] == 7
    # an unavailable agent is an answer, not a pending one: no wait
    found, waited = wait_polled(lambda: [host("2")], 150, sleep=lambda s: pytest.fail("waited"), clock=lambda: 0.0)
    assert found == [host("2")] and waited == 0
