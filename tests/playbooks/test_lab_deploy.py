"""The playbooks on the lab's real hosts: services, replication, proxy and VIP, Zabbix, the
collector tunnel, baseline controls, and idempotency (rerun and --check change nothing)."""

from __future__ import annotations

import json
import re
import ssl
import struct
import urllib.request

import pytest

from infra.deploy import DeployResult
from infra.state import SecretStore, region_state_dir
from tests.fixtures.deploy import Deploys, playbooks_busy, wait_for
from tests.fixtures.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

LAB_HOSTS = {"collector1", "db1", "backup1", "app1", "app2", "db2", "zbx1"}
DEPLOYED = LAB_HOSTS | {"localhost"}
"""The failover_manager play runs on the operations host (localhost) in every deploy."""


def model(lab: Lab) -> dict:  # type: ignore[type-arg]
    from inventories.describe import summary

    return summary(lab.region)


def sql(lab: Lab, host: str, query: str) -> str:
    return lab.run(host, f"mariadb -NBe {json.dumps(query)}").stdout.strip()


# ---------------------------------------------------------------- idempotency


def test_first_deploy_converges_every_host(deployed: Deploys) -> None:
    assert set(deployed.first.recap) == DEPLOYED  # the lab hosts, and the operations host's play
    assert deployed.first.failed_hosts == []
    assert deployed.first.exit_code() == 0


@pytest.mark.parametrize("host", sorted(LAB_HOSTS))
def test_deployed_host_is_running_not_degraded(deployed: Deploys, lab: Lab, host: str) -> None:
    """No unit left failed by a role (auditd's first start where the kernel cannot audit, say)."""
    state = lab.run(host, "systemctl is-system-running; systemctl --failed --no-legend --plain", check=False)
    assert state.stdout.splitlines()[0] == "running", state.stdout


def test_second_run_changes_nothing(rerun: DeployResult) -> None:
    assert set(rerun.recap) == DEPLOYED
    assert {h: r.changed for h, r in rerun.recap.items()} == {h: 0 for h in DEPLOYED}
    assert rerun.failed_hosts == []


def test_check_mode_on_converged_lab_reports_no_changes(check_run: DeployResult) -> None:
    assert check_run.check
    assert {h: r.changed for h, r in check_run.recap.items()} == {h: 0 for h in DEPLOYED}
    assert check_run.exit_code() == 0


# ---------------------------------------------------------------- listening addresses


def declared_listeners(lab: Lab, host: str) -> set[tuple[str, int]]:
    """(address, port) pairs the model lets `host` listen on, with the host-level extras."""
    m = model(lab)
    out: set[tuple[str, int]] = set()
    for svc in m["services"].values():
        if host in svc["hosts"]:
            for port in svc["ports"]:
                out.add((svc["hosts"][host], port))
            vip = svc["spec"].get("vip")
            if vip:
                out |= {(vip, p) for p in svc["ports"]}
    ref = lab.region.hosts[host]
    out.add((str(ref.primary_address), 10050))  # zabbix agent on the management address
    # level-3 baseline: the log host's TLS syslog, the time source's NTP
    out |= {(str(ref.primary_address), port) for _proto, port, _why in lab.region.baseline_listeners(host)}
    return out


@pytest.mark.parametrize("host", sorted(LAB_HOSTS))
def test_services_listen_only_on_declared_addresses(deployed: Deploys, lab: Lab, host: str) -> None:
    allowed = declared_listeners(lab, host)
    admin_ports = set(model(lab)["admin"]["ports"])
    tunnel_ports = {s["spec"]["port"] for s in model(lab)["services"].values() if s["kind"] == "collector"
                    and host in (s["spec"]["host"], s["spec"]["peer"])}
    # Orthanc 1.10 (Debian 12) cannot bind one address: its ports listen on all, and the orthanc
    # role's firewall accepts them on the service address only (tests/playbooks/test_orthanc_role.py)
    admin_ports |= {p for s in model(lab)["services"].values() if s["kind"] == "pacs" and host in s["hosts"]
                    for p in s["ports"]}
    seen = set()
    for line in lab.run(host, "ss -Hltnu").stdout.splitlines():
        proto, _, _, _, local, *_ = line.split()
        addr, _, port_s = local.rpartition(":")
        addr, port = addr.strip("[]"), int(port_s)
        if addr.startswith("127.") or addr == "::1":
            continue
        if addr in ("0.0.0.0", "*", "::"):
            # only the admin port (sshd) and WireGuard (which cannot bind one address) listen on all
            assert (proto == "tcp" and port in admin_ports) or (proto == "udp" and port in tunnel_ports), line
            continue
        seen.add((addr, port))
        assert (addr, port) in allowed, f"{host}: undeclared listener {line}"
    # and every declared listener of the host is up (the VIP only on its current holder)
    vips = {a for s in model(lab)["services"].values() if (a := s["spec"].get("vip"))}
    # (ports that listen on every address, as Orthanc's, are not expected on the service address)
    assert {x for x in allowed if x[0] not in vips and x[1] not in tunnel_ports | admin_ports} <= seen


# ---------------------------------------------------------------- MariaDB


def test_replication_gtid_semisync_replica_read_only(deployed: Deploys, lab: Lab) -> None:
    status = dict(zip(*[r.split("\t") for r in lab.run("db2", "mariadb -Be 'SHOW SLAVE STATUS'").stdout
                        .splitlines()[:2]], strict=True))
    assert status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"
    assert status["Using_Gtid"] == "Slave_Pos"
    assert status["Master_Host"] == "10.231.1.11"
    assert status["Master_SSL_Allowed"] == "Yes" and status["Master_SSL_Verify_Server_Cert"] == "Yes"
    assert sql(lab, "db2", "SELECT @@read_only") == "1"
    assert sql(lab, "db1", "SELECT @@read_only") == "0"
    assert sql(lab, "db2", "SHOW STATUS LIKE 'Rpl_semi_sync_slave_status'").split() == ["Rpl_semi_sync_slave_status",
                                                                                      "ON"]
    assert sql(lab, "db1", "SHOW STATUS LIKE 'Rpl_semi_sync_master_status'").split()[1] == "ON"
    assert int(sql(lab, "db1", "SHOW STATUS LIKE 'Rpl_semi_sync_master_clients'").split()[1]) >= 1
    assert sql(lab, "db1", "SELECT @@server_id") == "1" and sql(lab, "db2", "SELECT @@server_id") == "2"
    assert sql(lab, "db1", "SELECT @@gtid_strict_mode, @@log_bin, @@binlog_format").split() == ["1", "1", "ROW"]
    # a write on the primary arrives on the replica (the canary writes every second)
    # (by time, not MAX(seq): the drills' writers insert their own, larger sequence numbers)
    newest = "SELECT COALESCE(MAX(written_at), '') FROM canary.canary_seq"
    before = sql(lab, "db2", newest)
    assert wait_for(lambda: sql(lab, "db2", newest) > before, timeout=20)


def test_mariadb_hardening_and_tls_only_accounts(deployed: Deploys, lab: Lab) -> None:
    for host in ("db1", "db2", "zbx1"):
        assert sql(lab, host, "SELECT COUNT(*) FROM mysql.user WHERE User=''") == "0"
        assert sql(lab, host, "SELECT COUNT(*) FROM mysql.user WHERE User='root' "
                              "AND Host NOT IN ('localhost','127.0.0.1','::1')") == "0"
        assert sql(lab, host, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='test'") == "0"
        assert sql(lab, host, "SELECT @@local_infile") == "0"
    assert sql(lab, "db1", "SELECT DISTINCT ssl_type FROM mysql.user WHERE User IN ('repl','canary','emr')") == "ANY"
    assert sql(lab, "db1", "SHOW GRANTS FOR 'repl'@'10.231.2.12'").count("REPLICATION SLAVE ON *.*") == 1
    assert sql(lab, "db1", "SELECT @@require_secure_transport") == "1"
    # a client without TLS is refused; with the region CA it gets in
    password = SecretStore("lab").get("mysql-appdb-canary")
    creds = f"[client]\nuser=canary\npassword={password}\n"
    plain = lab.run("db2", "mariadb --defaults-extra-file=/dev/stdin -h 10.231.1.11 --skip-ssl -NBe 'SELECT 1' canary",
                    check=False, stdin=creds)
    assert plain.returncode != 0
    tls = lab.run("db2", "mariadb --defaults-extra-file=/dev/stdin -h 10.231.1.11 --ssl-ca=/etc/mysql/tls/ca.pem "
                  "--ssl-verify-server-cert -NBe 'SELECT 1' canary", stdin=creds)
    assert tls.stdout.strip() == "1"


# ---------------------------------------------------------------- canary, nginx, VIP


def region_ca() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(region_state_dir("lab") / "pki" / "ca.crt"))


def get(url: str, timeout: float = 5) -> tuple[int, dict[str, str], dict]:  # type: ignore[type-arg]
    ctx = region_ca() if url.startswith("https") else None
    with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
        return resp.status, dict(resp.headers), json.loads(resp.read())


def test_canary_reports_acknowledged_writes_through_the_primary(deployed: Deploys, lab: Lab) -> None:
    for host, addr in (("app1", "10.231.2.10"), ("app2", "10.231.2.11")):
        _, _, first = get(f"http://{addr}:8080/")
        assert first["host"] == host and first["primary"] == "10.231.1.11"
        assert wait_for(lambda a=addr, s=first["last_ack"]["seq"]: get(f"http://{a}:8080/")[2]["last_ack"]["seq"] > s,
                        timeout=10)
        assert get(f"http://{addr}:8080/health")[0] == 200


def test_nginx_balances_both_app_nodes_over_tls_and_survives_one(deployed: Deploys, lab: Lab) -> None:
    served = set()
    for _ in range(12):
        status, headers, body = get("https://10.231.2.100/")
        assert status == 200 and headers["Server"] == "nginx"  # server_tokens off: no version
        served.add(body["host"])
    assert served == {"app1", "app2"}
    ctx = region_ca()
    import socket

    with socket.create_connection(("10.231.2.100", 443), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="10.231.2.100") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    with playbooks_busy():
        lab.run("app1", "systemctl stop hcops-canary")
        try:
            results = [get("https://10.231.2.100/") for _ in range(8)]
            assert all(s == 200 for s, _, _ in results)
            assert {b["host"] for _, _, b in results} == {"app2"}
        finally:
            lab.run("app1", "systemctl start hcops-canary")
    log = lab.run("app1", "tail -n 3 /var/log/nginx/front-access.log").stdout
    assert re.search(r"rt=\d+\.\d{3} ", log)


def vip_holder(lab: Lab) -> str | None:
    for host in ("app1", "app2"):
        if "10.231.2.100/" in lab.run(host, "ip -4 -o addr show").stdout:
            return host
    return None


def test_stub_status_open_to_zabbix_only(deployed: Deploys, lab: Lab) -> None:
    """The "Nginx by HTTP" template reads /basic_status on each nginx host: Zabbix may, nobody else."""
    zabbix = lab.region.service_hosts("monitoring")[0]
    for host in lab.region.service_hosts("front"):
        url = f"http://{lab.address(host)}/basic_status"
        allowed = lab.run(zabbix, f"curl -s -o /dev/null -w '%{{http_code}}' {url}").stdout
        assert allowed == "200", (host, allowed)
        refused = lab.run("db2", f"curl -s -o /dev/null -w '%{{http_code}}' {url}").stdout
        assert refused == "403", (host, refused)


def test_vip_moves_when_the_active_nginx_stops(deployed: Deploys, lab: Lab) -> None:
    active = vip_holder(lab)
    assert active == "app1"  # first nginx host in the model has the highest priority
    with playbooks_busy():
        lab.run(active, "systemctl stop nginx")
        try:
            assert wait_for(lambda: vip_holder(lab) == "app2", timeout=20)
            assert wait_for(lambda: get("https://10.231.2.100/")[0] == 200, timeout=10)
        finally:
            lab.run(active, "systemctl start nginx")
        assert wait_for(lambda: vip_holder(lab) == "app1", timeout=20)
    assert get("https://10.231.2.100/")[0] == 200


# ---------------------------------------------------------------- Zabbix


def zabbix_call(lab: Lab, method: str, params: object, auth: str | None = None) -> dict:  # type: ignore[type-arg]
    """The frontend over https only (frontend_tls in the model), its certificate checked against the region CA."""
    from monitoring.client import default_url, region_ca_file

    body = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
    if auth:
        body["auth"] = auth
    url = default_url(lab.region)
    assert url.startswith("https://")
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json-rpc"})
    context = ssl.create_default_context(cafile=str(region_ca_file(lab.region.name)))
    with urllib.request.urlopen(req, timeout=10, context=context) as resp:
        return json.loads(resp.read())


def test_zabbix_api_answers_default_password_replaced_token_works(deployed: Deploys, lab: Lab) -> None:
    assert zabbix_call(lab, "apiinfo.version", {})["result"].startswith("6.0.")
    assert "error" in zabbix_call(lab, "user.login", {"username": "Admin", "password": "zabbix"})
    store = SecretStore(lab.region.name)
    assert "result" in zabbix_call(lab, "user.login", {"username": "Admin", "password": store.get("zabbix-admin")})
    token_file = store.dir / "zabbix-api-token"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    hosts = zabbix_call(lab, "host.get", {"output": ["hostid"], "limit": 1}, auth=token_file.read_text().strip())
    assert "result" in hosts
    assert lab.run("zbx1", "systemctl is-active zabbix-server").stdout.strip() == "active"


def agent_request(key: str) -> bytes:
    data = key.encode()
    return b"ZBXD\x01" + struct.pack("<Q", len(data)) + data


@pytest.mark.parametrize("host", ["db1", "collector1", "app2"])
def test_agents_answer_only_with_their_psk(deployed: Deploys, lab: Lab, host: str) -> None:
    addr = str(lab.region.hosts[host].primary_address)
    psk = SecretStore("lab").get(f"zabbix-psk-{host}", "psk")
    req = agent_request("agent.ping").hex()
    # send the request, keep stdin open until the agent answered and closed (Zabbix 6.0 uses TLS 1.2 PSK)
    send = f"(python3 -c \"import sys; sys.stdout.buffer.write(bytes.fromhex('{req}'))\"; sleep 3)"
    tls = (f"timeout 10 openssl s_client -connect {addr}:10050 -psk_identity hcops-{host} -tls1_2 -cipher PSK"
           " -quiet")
    # The poller: the site's Zabbix proxy on a remote site, else the server.
    proxy = lab.region.zabbix_proxy_of(host)
    poller = proxy.host if proxy else "zbx1"
    # the PSK goes through stdin, never onto a command line another user could read
    ask = f"read -r PSK; {send} | {tls} -psk \"$PSK\" 2>/dev/null | tail -c 1"
    ok = lab.run(poller, ask, stdin=psk + "\n", check=False)
    assert ok.stdout == "1", f"agent on {host} did not answer agent.ping over PSK from {poller}: {ok.stdout!r}"
    if proxy:  # behind a proxy the agent answers its proxy only, not the server across the line
        assert lab.run("zbx1", ask, stdin=psk + "\n", check=False).stdout != "1"
    wrong = lab.run(poller, f"{send} | {tls} -psk {'00' * 32} 2>/dev/null | tail -c 1", check=False)
    assert wrong.stdout != "1"
    plain = lab.run(poller, f"python3 -c \"import socket; s=socket.create_connection(('{addr}',10050),5); "
                    f"s.sendall(bytes.fromhex('{req}')); print(repr(s.recv(64)))\"", check=False)
    assert "ZBXD" not in plain.stdout  # unencrypted requests get no answer


# ---------------------------------------------------------------- collector tunnel


def test_tunnel_up_and_the_only_path_to_the_peer(deployed: Deploys, lab: Lab) -> None:
    show = lab.run("collector1", "wg show wg0 latest-handshakes").stdout.split()
    assert len(show) == 2 and int(show[1]) > 0, "no WireGuard handshake with the peer"
    probe = ("python3 -c \"import socket,sys\nfor a in sys.argv[1:]:\n h,p=a.split(':')\n try:\n"
             "  socket.create_connection((h,int(p)),3).close(); print(a,'open')\n except OSError as e:"
             " print(a,'blocked',e.errno)\" ")
    out = lab.run("collector1", probe + "10.231.250.1:8080 10.231.250.1:443 10.231.250.1:22 "
                  "10.231.2.10:22 10.231.2.10:8080 10.231.2.12:3306", timeout=60).stdout
    # the peer through the tunnel, on its declared tunnel_ports: the packet reaches the host (a
    # listener answers, or the host refuses: errno 111); any other port is dropped (a timeout)
    declared = next(s for s in lab.region.services.values() if s.kind == "collector").tunnel_ports  # type: ignore[union-attr]
    assert set(declared) == {443, 8080}
    for port in declared:
        assert re.search(rf"10\.231\.250\.1:{port} (open|blocked 111)", out), out
    assert "10.231.250.1:22 blocked None" in out, out  # SSH is not a declared tunnel port
    for direct in ("10.231.2.10:22", "10.231.2.10:8080", "10.231.2.12:3306"):
        assert f"{direct} blocked" in out  # the same peer / far site in clear: refused
    assert "10.231.1.11:3306 open" in lab.run("collector1", probe + "10.231.1.11:3306").stdout  # local site is free
    peer_rules = lab.run("app1", "nft list table inet hcops_collector").stdout
    assert re.search(r"udp dport 51820 ip saddr != (\{ )?10\.231\.1\.10 .*drop", peer_rules)
    assert lab.run("collector1", "systemctl is-enabled hcops-collector-firewall wg-quick@wg0").stdout.split() == \
        ["enabled", "enabled"]


# ---------------------------------------------------------------- baseline controls


BASELINE_PROBE = r"""
set -u
echo pwq=$(grep -E '^minlen' /etc/security/pwquality.conf | tr -d ' ')
echo maxdays=$(awk '/^PASS_MAX_DAYS/{print $2}' /etc/login.defs)
echo faillock_auth=$(grep -c 'pam_faillock.so preauth' /etc/pam.d/common-auth)
echo faillock_account=$(grep -c pam_faillock.so /etc/pam.d/common-account)
echo deny=$(grep -E '^deny' /etc/security/faillock.conf | tr -d ' ')
echo tmout=$(bash -lc 'echo $TMOUT')
sshd -T 2>/dev/null | sed 's/ /=/' | grep -E \
  '^(passwordauthentication|permitrootlogin|kbdinteractiveauthentication|banner|ciphers|macs|clientaliveinterval)='
echo banner_text=$(grep -c 'Authorised use only' /etc/issue.net)
echo auditrules=$(grep -c -- '-k identity' /etc/audit/rules.d/50-hcops.rules)
if auditctl -s >/dev/null 2>&1; then echo auditd=$(systemctl is-active auditd); else echo auditd=no-kernel-audit; fi
echo chrony=$(grep -c '^server ' /etc/chrony/chrony.conf)
echo unwanted=$(dpkg -l telnet rsh-client avahi-daemon cups rpcbind 2>/dev/null | grep -c '^ii')
echo loose_logs=$(find /var/log -xdev -type f -perm /o+rwx \
  ! -name wtmp ! -name btmp ! -name lastlog ! -name faillog | wc -l)
sudo true; echo sudolog=$(grep -c 'COMMAND=/usr/bin/true' /var/log/sudo.log)
"""


@pytest.mark.parametrize("host", sorted(LAB_HOSTS))
def test_baseline_controls_in_place(deployed: Deploys, lab: Lab, host: str) -> None:
    facts = dict(line.split("=", 1) for line in lab.run(host, BASELINE_PROBE).stdout.splitlines() if "=" in line)
    assert facts["pwq"] == "minlen=12"
    assert facts["maxdays"] == "90"
    assert facts["faillock_auth"] == "1" and int(facts["faillock_account"]) >= 1
    assert facts["deny"] == "deny=5"
    assert facts["tmout"] == "600"
    assert facts["passwordauthentication"] == "no" and facts["kbdinteractiveauthentication"] == "no"
    assert facts["permitrootlogin"] == "no"  # nobody logs in as root (tests/playbooks/test_level3_lab.py)
    assert facts["banner"] == "/etc/issue.net" and facts["banner_text"] == "1"
    assert "cbc" not in facts["ciphers"] and "hmac-sha1" not in facts["macs"].replace("etm", "")
    assert facts["clientaliveinterval"] == "300"
    assert int(facts["auditrules"]) >= 4
    # the lab's kernel has no audit support at all: the rules are installed and auditd waits for a kernel
    assert facts["auditd"] in ("active", "no-kernel-audit")
    assert int(facts["chrony"]) >= 1
    assert facts["unwanted"] == "0"
    assert facts["loose_logs"] == "0"
    assert int(facts["sudolog"]) >= 1


def test_ssh_refuses_passwords(deployed: Deploys, lab: Lab) -> None:
    import subprocess

    proc = subprocess.run(["ssh", "-F", str(lab.ssh_config),
                           "-o", "PreferredAuthentications=password,keyboard-interactive",
                           "-o", "PubkeyAuthentication=no", "-o", "BatchMode=yes", "db1", "true"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode != 0
    assert "Permission denied (publickey)" in proc.stderr
