"""Level-3 protection on the deployed lab: how people and the controller log in, host keys,
passwords out of the binlog, a certificate change that drops no request, and the assessor's
evidence (`hcops audit level3`) passing on every host. Region-agnostic: runs on any lab copy."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from infra.admins import admin_key_path, credentials, totp
from infra.state import SecretStore, read_outputs, region_state_dir
from tests.fixtures.deploy import Deploys, deploy_lab
from tests.fixtures.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def _ssh(lab: Lab, host: str, *opts: str, cmd: str = "true", env: dict[str, str] | None = None,
         timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", "-F", str(lab.ssh_config), *opts, host, cmd], capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL, env=env)


def _mysql_primary(lab: Lab) -> tuple[str, str]:
    name, svc = next((n, s) for n, s in lab.region.services.items() if s.kind == "mysql")
    return name, svc.primary  # type: ignore[union-attr]


# ---------------------------------------------------------------- defect 2: accounts


def test_root_cannot_log_in_and_the_controller_is_root_only_through_logged_sudo(deployed: Deploys,
                                                                                  lab: Lab) -> None:
    host = "db1"
    as_root = _ssh(lab, host, "-o", "User=root")
    assert as_root.returncode == 255 and "Permission denied" in as_root.stderr
    user = read_outputs(lab.region.name).ssh_user
    assert user == lab.region.spec.region.automation_account != "root"
    # callers of lab.run / control.ssh / testinfra keep root semantics
    marker = f"level3-{os.getpid()}-{time.monotonic_ns()}"
    out = lab.run(host, f"echo $(id -u) $HOME {marker} | tee /dev/null").stdout.split()
    assert out[:2] == ["0", "/root"]
    log = lab.run(host, "cat /var/log/sudo.log").stdout
    assert marker in log and f"{user} :" in log  # the automation account's root command, with its name
    assert lab.testinfra_host(host).check_output("id -u") == "0"  # type: ignore[attr-defined]
    # the automation account itself has no password and cannot add keys of its own
    shadow = lab.run(host, f"getent shadow {user} | cut -d: -f2; stat -c %U /home/{user}/.ssh/authorized_keys")
    assert shadow.stdout.split() == ["*", "root"]


def test_admin_needs_key_and_totp_and_sudo_asks_again(deployed: Deploys, lab: Lab, tmp_path: Path) -> None:
    admin = next(iter(lab.region.spec.admins))
    cred = credentials(lab.region.name, admin, [], lab=True, create=False)
    key = admin_key_path(lab.region.name, admin)
    assert cred.totp_hex and key.exists()
    askpass = tmp_path / "askpass"
    askpass.write_text('#!/bin/sh\necho "$HCOPS_TEST_CODE"\n')
    askpass.chmod(0o700)
    base = ("-o", f"User={admin}", "-o", f"IdentityFile={key}", "-o", "IdentitiesOnly=yes")

    def login(code: str | None) -> subprocess.CompletedProcess[str]:
        if code is None:  # the key alone, nothing to answer the second factor
            return _ssh(lab, "app1", *base, cmd="id -un")
        env = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0",
               "HCOPS_TEST_CODE": code}
        return _ssh(lab, "app1", *base, "-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1",
                    cmd="id -un; sudo -n true 2>&1 || echo sudo-needs-code", env=env)

    key_only = login(None)
    assert key_only.returncode == 255 and "keyboard-interactive" in key_only.stderr  # partial success, then no
    right = totp(cred.totp_hex)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert login(wrong).returncode == 255
    ok = login(totp(cred.totp_hex))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split("\n")[0] == admin and "sudo-needs-code" in ok.stdout
    # the controller's own key does not make anyone an admin: the automation account has no TOTP path
    assert _ssh(lab, "app1", "-o", "User=" + admin).returncode == 255

    # wrong codes count toward pam_faillock, across connections: after `deny` of them a right code
    # is refused too (a 6-digit code cannot be guessed connection after connection)
    deny = int(lab.run("app1", "awk '$1==\"deny\"{print $3}' /etc/security/faillock.conf").stdout)
    used_step = int(time.time()) // 30
    try:
        for _ in range(deny):
            assert login(wrong).returncode == 255
        tally = lab.run("app1", f"faillock --user {admin}").stdout
        assert sum(1 for line in tally.splitlines() if line.rstrip().endswith(" V")) >= deny, tally
        while int(time.time()) // 30 == used_step:  # a code of a new step: pam_oath's replay guard is not the refusal
            time.sleep(1)
        locked = login(totp(cred.totp_hex))
        assert locked.returncode == 255, locked.stdout
    finally:
        lab.run("app1", f"faillock --user {admin} --reset")


# ---------------------------------------------------------------- defect 3: host keys


def test_a_changed_host_key_is_refused(deployed: Deploys, lab: Lab, tmp_path: Path) -> None:
    outputs = read_outputs(lab.region.name)
    assert outputs.known_hosts and outputs.known_hosts.exists()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    impostor = (tmp_path / "k.pub").read_text().split()[1]
    lines = []
    for line in outputs.known_hosts.read_text().splitlines():
        names, kind, _key = line.split()
        lines.append(f"{names} {kind} {impostor}" if "db1" in names.split(",") else line)
    (tmp_path / "known_hosts").write_text("\n".join(lines) + "\n")
    proc = _ssh(lab, "db1", "-o", f"UserKnownHostsFile={tmp_path / 'known_hosts'}")
    assert proc.returncode == 255 and "Host key verification failed" in proc.stderr
    inv = subprocess.run([str(Path(os.sys.executable).parent / "ansible-inventory"), "-i",  # type: ignore[attr-defined]
                          str(lab.region.root / "inventory.yml"), "--host", "db1"],
                         capture_output=True, text=True, check=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2] / "playbooks")
    hostvars = json.loads(inv.stdout)
    assert f"UserKnownHostsFile={outputs.known_hosts}" in hostvars["ansible_ssh_common_args"]
    assert hostvars["ansible_become"] is True


# ---------------------------------------------------------------- defect 1: no password in the binlog


def test_no_database_password_in_any_binlog_and_binlogs_unreadable_offline(deployed: Deploys, lab: Lab) -> None:
    import hashlib

    service, primary = _mysql_primary(lab)
    store = SecretStore(lab.region.name)
    names = [p.name for p in store.dir.iterdir() if p.name.startswith(f"mysql-{service}-")
             and not p.name.endswith("encryption-key")]
    passwords = {n: store.get(n) for n in names}
    assert passwords
    events = lab.run(primary, "for f in $(mariadb -NBe 'SHOW BINARY LOGS' | cut -f1); do "
                              "mariadb -NBe \"SHOW BINLOG EVENTS IN '$f'\"; done", timeout=120).stdout
    for name, password in passwords.items():
        assert password not in events, f"{name} in clear in the binlog"
    if "CREATE USER" in events:  # the accounts were made in this binlog history: only their hashes are there
        canary = passwords.get(f"mysql-{service}-canary") or next(iter(passwords.values()))
        digest = "*" + hashlib.sha1(hashlib.sha1(canary.encode()).digest()).hexdigest().upper()
        assert digest in events or any(
            "*" + hashlib.sha1(hashlib.sha1(p.encode()).digest()).hexdigest().upper() in events
            for p in passwords.values())
    offline = lab.run(primary, "n=0; for f in $(mariadb -NBe 'SHOW BINARY LOGS' | cut -f1); do "
                               "mysqlbinlog /var/lib/mysql/$f 2>/dev/null "
                               "| grep -q 'The rest of the binlog is encrypted' || n=$((n+1)); done; echo $n")
    assert offline.stdout.strip() == "0"  # every binlog file encrypted at rest


def test_application_accounts_hold_only_their_privileges_and_removed_ones_are_dropped(deployed: Deploys,
                                                                                       lab: Lab) -> None:
    service, primary = _mysql_primary(lab)
    svc = lab.region.services[service]
    for db, spec in svc.databases.items():  # type: ignore[union-attr]
        sql = f"SELECT Host FROM mysql.user WHERE User='{spec.user}'"
        hosts = lab.run(primary, f"mariadb -NBe \"{sql}\"").stdout.split()
        assert hosts, f"no account {spec.user}"
        for h in hosts:
            grants = lab.run(primary, f"mariadb -NBe \"SHOW GRANTS FOR '{spec.user}'@'{h}'\"").stdout
            on_db = next(line for line in grants.splitlines() if f"ON `{db}`.*" in line)
            got = {p.strip() for p in on_db.split(" ON ")[0].removeprefix("GRANT ").split(",")}
            assert got == set(spec.privileges), (spec.user, h, on_db)
            assert "ALL PRIVILEGES" not in grants and "WITH GRANT OPTION" not in grants
    # an account hcops made that the model no longer declares, and one a DBA made by hand
    lab.run(primary, "mariadb -e \"CREATE USER 'gone_app'@'10.231.2.%' IDENTIFIED VIA unix_socket; "
                     "INSERT INTO hcops_meta.accounts (user, host) VALUES ('gone_app', '10.231.2.%'); "
                     "CREATE USER 'dba_hand'@'localhost' IDENTIFIED VIA unix_socket\"")
    try:
        result, lines = deploy_lab(lab, tags="mysql", limit=primary)
        assert result.exit_code() == 0, "\n".join(lines[-40:])
        users = lab.run(primary, "mariadb -NBe \"SELECT CONCAT(User, '@', Host) FROM mysql.user\"").stdout.split()
        assert "gone_app@10.231.2.%" not in users
        assert "dba_hand@localhost" in users  # never dropped: hcops did not make it ...
        assert any("dba_hand@localhost" in line and "review it" in line for line in lines)  # ... but named
        tracked = lab.run(primary, "mariadb -NBe 'SELECT COUNT(*) FROM hcops_meta.accounts "
                                   "WHERE user=\"gone_app\"'").stdout.strip()
        assert tracked == "0"
    finally:
        lab.run(primary, "mariadb -e \"DROP USER IF EXISTS 'dba_hand'@'localhost', 'gone_app'@'10.231.2.%'; "
                         "DELETE FROM hcops_meta.accounts WHERE user='gone_app'\"", check=False)


# ---------------------------------------------------------------- defect 8: certificate change, no request lost


def test_certificate_change_reloads_nginx_and_drops_no_request(deployed: Deploys, lab: Lab) -> None:
    name = next(n for n, s in lab.region.services.items() if s.kind == "nginx")
    vip = str(read_outputs(lab.region.name).vips[name])
    ca = region_state_dir(lab.region.name) / "pki" / "ca.crt"
    ctx = ssl.create_default_context(cafile=str(ca))
    nginx_hosts = lab.region.service_hosts(name)

    def pids() -> dict[str, str]:
        return {h: lab.run(h, "systemctl show -p MainPID --value nginx keepalived | tr '\\n' ' '").stdout.strip()
                for h in nginx_hosts}

    def serial() -> int:
        import socket

        with socket.create_connection((vip, 443), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=vip) as t:
            from cryptography import x509

            der = t.getpeercert(binary_form=True)
            assert der
            return x509.load_der_x509_certificate(der).serial_number

    before_serial, before_pids = serial(), pids()
    cert = region_state_dir(lab.region.name) / "pki" / f"nginx-{name}.crt"
    assert cert.exists()
    cert.unlink()  # the next deploy issues a new certificate for the service
    stop = threading.Event()
    results: list[int | str] = []

    def probe() -> None:
        deadline = time.monotonic() + 600  # bounded
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"https://{vip}/", timeout=5, context=ctx) as resp:
                    results.append(resp.status)
            except Exception as exc:
                results.append(repr(exc))
            time.sleep(0.05)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    try:
        result, lines = deploy_lab(lab, tags="nginx", limit=",".join(nginx_hosts))
    finally:
        stop.set()
        worker.join(30)
    assert result.exit_code() == 0, "\n".join(lines[-40:])
    assert result.changed >= len(nginx_hosts)
    failures = [r for r in results if r != 200]
    assert len(results) >= 20 and failures == [], failures[:5]
    assert serial() != before_serial  # the new certificate is served
    assert pids() == before_pids  # nginx reloaded, keepalived kept: no process restarted


# ---------------------------------------------------------------- the evidence


def test_audit_level3_passes_on_every_host_with_honest_na(deployed: Deploys, lab: Lab, hcops,  # type: ignore[no-untyped-def]
                                                         tmp_path: Path) -> None:
    page = tmp_path / "level3.html"
    r = hcops("-o", "json", "audit", "level3", "--region", lab.region_arg, "--html", str(page))
    data = json.loads(r.stdout)
    assert set(data["hosts"]) == set(lab.hosts)
    failing = {row["clause"]: {h: v["evidence"] for h, v in row["hosts"].items() if v["status"] == "FAIL"}
               for row in data["rows"] if row["status"] == "FAIL"}
    assert failing == {}, failing
    for row in data["rows"]:
        for host, verdict in row["hosts"].items():
            assert verdict["status"] in ("PASS", "NA", "FAIL") and verdict["evidence"], (row["clause"], host)
    per_host = {h for row in data["rows"] for h in row["hosts"]}
    assert set(lab.hosts) <= per_host
    # a row every host answers, with real evidence
    twofactor = next(row for row in data["rows"] if row["clause"] == "8.1.4.1 d")
    assert {v["status"] for v in twofactor["hosts"].values()} == {"PASS"} and len(twofactor["hosts"]) == len(lab.hosts)
    html = page.read_text()
    assert "8.1.4.1 d" in html and "<svg" in html and "src=" not in html
