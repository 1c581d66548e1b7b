"""Level-3 pieces that need no lab: how the controller logs in, host-key checking, OS guards,
hashed database passwords, TOTP, check mode creating no secret, and the audit's report and CLI."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.admins import credentials, totp, totp_uri
from infra.lab.control import as_root
from infra.level3.audit import AuditResult, HostResult, Row, _parse
from infra.level3.checks import CLAUSES
from infra.level3.report import render_html
from infra.openstack.compute import cloud_config
from infra.state import HostOutput, RegionOutputs
from inventories.ansible_groups import build
from inventories.loader import load_region

REPO = Path(__file__).resolve().parents[2]


def _load(path: Path, name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------- defect 2: how the controller logs in

def test_commands_run_as_root_through_sudo_with_their_shell_meaning() -> None:
    assert as_root("echo a | tr a b && id -u") == "sudo -n -H -- /bin/bash -c 'echo a | tr a b && id -u'"
    assert as_root(["systemctl", "restart", "my unit"]) == "sudo -n -H -- systemctl restart 'my unit'"
    # the quoted line really is one bash command line: run it locally without sudo
    line = as_root("x=\"it's\"; echo \"$x\" | wc -c").removeprefix("sudo -n -H -- ")
    assert subprocess.run(line, shell=True, capture_output=True, text=True, check=False).stdout.strip() == "5"


def test_inventory_logs_in_as_automation_account_with_become_and_checked_host_keys(tmp_path: Path) -> None:
    region = load_region("lab")
    known = tmp_path / "known_hosts"
    outputs = RegionOutputs(region="lab", provider="lab", ssh_user="hcops", ssh_private_key=tmp_path / "k",
                            known_hosts=known,
                            hosts={"db1": HostOutput(site="local-dc", ssh_address="10.231.1.11",  # type: ignore[arg-type]
                                                     addresses={}, provider_id="x")})
    inv = build(region, outputs)
    allv = inv.group_vars["all"]
    assert allv["ansible_user"] == "hcops"
    # sudo on every region host, never inherited by the controller (tasks delegated to localhost)
    assert all(inv.hostvars[h]["ansible_become"] is True for h in region.hosts)
    assert "ansible_become" not in allv
    assert f"UserKnownHostsFile={known}" in allv["ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=yes" in allv["ansible_ssh_common_args"]
    cfg = (REPO / "playbooks" / "ansible.cfg").read_text()
    assert "StrictHostKeyChecking=no" not in cfg and "/dev/null" not in cfg and "host_key_checking = True" in cfg


def test_deploy_refuses_a_region_without_known_hosts(hcops, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.state import write_outputs

    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path))
    write_outputs(RegionOutputs(region="lab", provider="lab"))
    r = hcops("deploy", "--region", "lab")
    assert r.code == 1 and "known_hosts" in r.stderr and "fix:" in r.stderr and "Traceback" not in r.stderr


def test_cloud_hosts_get_the_automation_account_and_no_root_login() -> None:
    region = load_region("example-city")
    text = cloud_config(region, "db1")
    # the keypair's key goes to cloud-init's default user: the automation account, not root
    assert "disable_root: true" in text and f"name: {region.spec.region.automation_account}" in text
    assert "lock_passwd: true" in text and "NOPASSWD" in text


# ---------------------------------------------------------------- defect 7: roles by OS family

def test_debian_only_roles_skip_the_oracle_linux_host() -> None:
    inv = build(load_region("example-city"))
    assert "ora1" in inv.groups["os_family_redhat"] and "ora1" not in inv.groups["os_family_debian"]
    site = (REPO / "playbooks" / "site.yml").read_text()
    for play_hosts in ("hosts: os_family_debian", "hosts: role_mysql:&os_family_debian",
                       "hosts: role_nginx:&os_family_debian"):
        assert play_hosts in site
    assert "hosts: all\n" not in site


# ---------------------------------------------------------------- defect 8: HA pairs roll

def test_ha_plays_roll_one_node_at_a_time_and_keepalived_reloads() -> None:
    import yaml

    plays = {p["name"]: p for p in yaml.safe_load((REPO / "playbooks" / "site.yml").read_text())}
    for name in ("MariaDB primary and replicas", "Canary application", "Nginx reverse proxy with a keepalived VIP"):
        assert plays[name]["serial"] == 1
    handlers = yaml.safe_load((REPO / "playbooks/roles/nginx/handlers/main.yml").read_text())
    assert [h["ansible.builtin.systemd_service"]["state"] for h in handlers] == ["reloaded"]
    mysql_tasks = (REPO / "playbooks/roles/mysql/tasks/main.yml").read_text()
    assert "notify: Reload MariaDB TLS" in mysql_tasks  # a certificate change is FLUSH SSL, not a restart


# ---------------------------------------------------------------- defect 1: hashes, not passwords

def test_mariadb_user_module_sends_only_the_native_hash() -> None:
    sys.modules.setdefault("ansible.module_utils.hcops_mariadb", _load(
        REPO / "playbooks/roles/mariadb_modules/module_utils/hcops_mariadb.py", "ansible.module_utils.hcops_mariadb"))
    mod = _load(REPO / "playbooks/roles/mariadb_modules/library/hcops_mariadb_user.py", "hcops_mariadb_user")
    # MariaDB's PASSWORD('password'), a published value
    assert mod.native_hash("password") == "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
    src = (REPO / "playbooks/roles/mariadb_modules/library/hcops_mariadb_user.py").read_text()
    assert "IDENTIFIED BY {pw}" not in src and "PASSWORD({pw})" not in src


# ---------------------------------------------------------------- second factor

def test_totp_matches_rfc6238_and_uri_is_enrollable() -> None:
    seed = b"12345678901234567890".hex()
    assert totp(seed, at=59) == "287082"           # RFC 6238 appendix B, SHA-1, last 6 digits
    assert totp(seed, at=1111111109) == "081804"
    uri = totp_uri("lab", "zhang-wei", seed)
    assert uri.startswith("otpauth://totp/") and "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" in uri


def test_lab_admin_gets_a_key_and_seed_once_check_mode_makes_none(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path))
    none = credentials("r", "zhang-wei", [], lab=True, create=False)
    assert none.keys == [] and none.totp_hex == "" and not any(tmp_path.rglob("*"))
    first = credentials("r", "zhang-wei", [], lab=True)
    again = credentials("r", "zhang-wei", [], lab=True)
    assert first == again and first.keys[0].startswith("ssh-ed25519 ") and len(first.totp_hex) == 40
    real = credentials("r", "li-na", ["ssh-ed25519 AAAAx li"], lab=False)
    assert real.keys == ["ssh-ed25519 AAAAx li"] and not (tmp_path / "r/ssh/admins/li-na").exists()


def test_check_mode_creates_no_secret_on_the_controller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path))
    sys.path.insert(0, str(REPO / "playbooks" / "lookup_plugins"))
    try:
        from ansible.plugins.loader import lookup_loader

        lookup_loader.add_directory(str(REPO / "playbooks" / "lookup_plugins"))
        lookup = lookup_loader.get("hcops_secret")
        value = lookup.run(["mysql-x-y"], variables={"hcops_region": "r", "ansible_check_mode": True})
        assert value == ["(not generated in check mode)"] and not any(tmp_path.rglob("mysql-x-y"))
        real = lookup.run(["mysql-x-y"], variables={"hcops_region": "r", "ansible_check_mode": False})
        assert len(real[0]) >= 24 and (tmp_path / "r" / "secrets" / "mysql-x-y").exists()
    finally:
        sys.path.remove(str(REPO / "playbooks" / "lookup_plugins"))


# ---------------------------------------------------------------- the evidence

def test_clause_table_covers_the_level3_areas_and_each_probe_gives_a_verdict() -> None:
    clauses = {c.clause for c in CLAUSES}
    for needed in ("8.1.4.1 a", "8.1.4.1 b", "8.1.4.1 c", "8.1.4.1 d", "8.1.4.2 a", "8.1.4.2 b", "8.1.4.2 c",
                   "8.1.4.2 d", "8.1.4.3 a", "8.1.4.3 b", "8.1.4.3 c", "8.1.4.3 d", "8.1.4.4 a", "8.1.4.4 b",
                   "8.1.4.7", "8.1.4.8", "8.1.2.2", "8.1.3.1", "8.1.5.4 d"):
        assert needed in clauses
    for c in CLAUSES:
        assert c.control and c.where and (c.probe or c.model)
        if c.probe:  # valid bash
            syntax = subprocess.run(["bash", "-n", "-c", c.probe], capture_output=True, check=False)
            assert syntax.returncode == 0, c.clause
    assert _parse("noise\nNA no kernel audit here\n", 0, "") == HostResult("NA", "no kernel audit here")
    assert _parse("", 2, "bash: boom").status == "FAIL"


def _result() -> AuditResult:
    rows = [Row("8.1.4.1 d", "Two factors", "key + TOTP", "baseline", {"db1": HostResult("PASS", "ok <b>")}),
            Row("8.1.4.3 a", "Audit", "auditd", "baseline", {"db1": HostResult("NA", "no kernel audit")}),
            Row("8.1.4.3 d", "Central log", "log host", "model", {"db1": HostResult("FAIL", "rsyslog not running")})]
    return AuditResult("lab", "2026-12-01T09:00:00+00:00", 1.0, ["db1"], rows)


def test_report_is_offline_html_with_escaped_evidence_and_honest_verdict() -> None:
    result = _result()
    page = render_html(result)
    assert "ok &lt;b&gt;" in page and "ok <b>" not in page
    assert "<svg" in page and "not applicable here" in page and "1 clause(s) fail: 8.1.4.3 d" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert result.exit_code() == 1 and result.counts() == {"PASS": 1, "FAIL": 1, "NA": 1}
    data = json.loads(json.dumps(result.as_dict()))
    assert data["passed"] is False and data["rows"][1]["status"] == "NA"


def test_audit_cli_bad_input_is_a_clear_error(hcops, tmp_path: Path,  # type: ignore[no-untyped-def]
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path))
    r = hcops("audit", "level3", "--region", "lab")
    assert r.code == 1 and "has not been provisioned" in r.stderr and "Traceback" not in r.stderr
    from infra.state import write_outputs

    write_outputs(RegionOutputs(region="lab", provider="lab"))
    r = hcops("audit", "level3", "--region", "lab", "--hosts", "nosuch")
    assert r.code == 1 and "unknown host" in r.stderr and "fix:" in r.stderr
    r = hcops("audit", "level3", "--region", "nosuchregion")
    assert r.code == 1 and "Traceback" not in r.stderr
