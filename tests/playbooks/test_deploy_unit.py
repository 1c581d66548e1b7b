"""Deploy engine and helpers without the lab: recap parsing, exit codes, bad input, key
material, filters and the MariaDB modules' grant parsing."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from infra.deploy import DeployResult, HostRecap, parse_recap
from infra.deploy_pki import RegionPKI, secret, wireguard_keys

REPO = Path(__file__).resolve().parents[2]

RECAP = """
PLAY RECAP *********************************************************************
app1                       : ok=62   changed=0    unreachable=0    failed=0    skipped=3    rescued=0    ignored=0
db1                        : ok=39   changed=2    unreachable=0    failed=1    skipped=3    rescued=0    ignored=0
zbx1                       : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0

"""


def test_parse_recap_and_exit_codes() -> None:
    recap = parse_recap(RECAP.splitlines())
    assert recap["app1"] == HostRecap(ok=62, changed=0, skipped=3)
    assert recap["db1"].failed == 1 and recap["db1"].changed == 2
    assert not recap["zbx1"].healthy
    assert DeployResult(2, recap).exit_code() == 1
    ok = {"app1": HostRecap(ok=3), "db1": HostRecap(ok=4, changed=1)}
    assert DeployResult(0, ok).exit_code() == 0
    assert DeployResult(0, ok, check=True).exit_code() == 2
    assert DeployResult(0, {"a": HostRecap(ok=1)}, check=True).exit_code() == 0
    assert DeployResult(0, {}).exit_code() == 1  # no recap: nothing ran


def test_deploy_unknown_region(hcops) -> None:  # type: ignore[no-untyped-def]
    r = hcops("deploy", "--region", "atlantis")
    assert r.code == 1
    assert "unknown region 'atlantis'" in r.stderr and "fix:" in r.stderr and "Traceback" not in r.stderr


def test_deploy_unprovisioned_region(hcops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    region = tmp_path / "scratch"
    shutil.copytree(REPO / "inventories" / "lab", region)
    text = (region / "region.yml").read_text().replace("  name: lab\n", "  name: scratch\n")
    (region / "region.yml").write_text(text)
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "state"))
    r = hcops("deploy", "--region", str(region))
    assert r.code == 1
    assert "has not been provisioned" in r.stderr and "hcops infra up --region scratch" in r.stderr


@pytest.mark.parametrize("limit", ["nosuchhost", "db1,dbx", "role_nothing", "~[unclosed"])
def test_deploy_bad_limit(hcops, limit: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from infra.state import RegionOutputs, write_outputs

    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path))
    write_outputs(RegionOutputs(region="lab", provider="lab"))  # provisioned, as far as deploy can tell
    r = hcops("deploy", "--region", "lab", "--limit", limit)
    assert r.code == 1
    assert "--limit" in r.stderr and "fix:" in r.stderr and "Traceback" not in r.stderr


def test_region_pki_reuses_and_reissues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography import x509

    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path))
    pki = RegionPKI("r")
    a = pki.issue("mysql-db1", ["10.0.0.5", "db1"])
    assert pki.issue("mysql-db1", ["db1", "10.0.0.5"]) == a  # same SANs: same bytes, rerun changes nothing
    b = pki.issue("mysql-db1", ["10.0.0.6", "db1"])
    assert b.cert != a.cert and b.ca == a.ca
    cert = x509.load_pem_x509_certificate(b.cert.encode())
    ca = x509.load_pem_x509_certificate(b.ca.encode())
    cert.verify_directly_issued_by(ca)
    assert (tmp_path / "r" / "pki" / "mysql-db1.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError):
        pki.issue("../evil", ["x"])


def test_wireguard_keys_and_secrets_are_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path))
    k1, k2 = wireguard_keys("r", "c1"), wireguard_keys("r", "c1")
    assert k1 == k2 and len(base64.b64decode(k1.public)) == 32
    assert wireguard_keys("r", "c2").public != k1.public
    psk = secret("r", "wg-psk", "psk", "base64")
    assert len(base64.b64decode(psk)) == 32 and secret("r", "wg-psk", "psk", "base64") == psk
    with pytest.raises(ValueError):
        secret("r", "x", "nonsense")


def _load(path: Path, name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_filters() -> None:
    f = _load(REPO / "playbooks" / "filter_plugins" / "hcops.py", "hcops_filters")
    assert f.hcops_mysql_host("10.231.2.0/24") == "10.231.2.0/255.255.255.0"
    assert f.hcops_mysql_host("0.0.0.0/0") == "%"
    assert f.hcops_host_cidr("10.231.250.0/30", 2) == "10.231.250.2/30"
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError):
        f.hcops_nth_address("10.231.250.0/30", 3)  # broadcast
    with pytest.raises(AnsibleFilterError):
        f.hcops_prefixlen("not-a-network")


def test_mariadb_user_module_grant_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    import ansible.module_utils as mu

    utils = _load(REPO / "playbooks" / "roles" / "mariadb_modules" / "module_utils" / "hcops_mariadb.py",
                  "ansible.module_utils.hcops_mariadb")
    monkeypatch.setattr(mu, "hcops_mariadb", utils, raising=False)
    mod = _load(REPO / "playbooks" / "roles" / "mariadb_modules" / "library" / "hcops_mariadb_user.py",
                "hcops_mariadb_user")
    rows = [{"Grants for canary@x": "GRANT USAGE ON *.* TO `canary`@`10.0.0.0/255.0.0.0` IDENTIFIED BY PASSWORD "
                                    "'*AB' REQUIRE SSL"},
            {"Grants for canary@x": "GRANT ALL PRIVILEGES ON `canary`.* TO `canary`@`10.0.0.0/255.0.0.0`"}]
    assert mod.current_grants(rows) == mod.desired_grants(["canary.*:ALL"])
    assert mod.current_grants(rows) != mod.desired_grants(["canary.*:SELECT"])
    assert mod.desired_grants(["*.*:replication slave"]) == {"*.*": frozenset({"REPLICATION SLAVE"})}
    with pytest.raises(ValueError):
        mod.desired_grants(["no-colon"])
    assert utils.quote("it's \\ x") == "'it\\'s \\\\ x'"


def test_check_mode_lookups_create_nothing_on_the_controller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`hcops deploy --check` on a fresh controller: no CA, certificate or WireGuard key is made
    (the tasks that would write them report the change); a real run then issues them."""
    from infra.deploy_pki import NOT_ISSUED

    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path))
    from ansible.plugins.loader import lookup_loader

    lookup_loader.add_directory(str(REPO / "playbooks" / "lookup_plugins"))  # as ansible.cfg does
    tls, wg = lookup_loader.get("hcops_tls"), lookup_loader.get("hcops_wireguard")
    check = {"hcops_region": "r", "ansible_check_mode": True}
    assert tls.run(["mysql-db1"], check, sans=["10.0.0.5"]) == [{"cert": NOT_ISSUED, "key": NOT_ISSUED,
                                                                   "ca": NOT_ISSUED}]
    assert tls.run(["ca"], check, ca_only=True) == [{"ca": NOT_ISSUED}]
    assert wg.run(["c1"], check) == [{"private": NOT_ISSUED, "public": NOT_ISSUED}]
    assert not any(tmp_path.rglob("*")), sorted(tmp_path.rglob("*"))

    real = {"hcops_region": "r"}
    issued = tls.run(["mysql-db1"], real, sans=["10.0.0.5"])[0]
    keys = wg.run(["c1"], real)[0]
    assert issued["cert"].startswith("-----BEGIN CERTIFICATE") and keys["public"] != NOT_ISSUED
    # once issued, --check hands out the same bytes (no change reported) ...
    assert tls.run(["mysql-db1"], check, sans=["10.0.0.5"])[0] == issued
    assert wg.run(["c1"], check)[0] == keys
    # ... and a reissue it would need (new SANs) is reported, not done
    crt = tmp_path / "r" / "pki" / "mysql-db1.crt"
    before = crt.read_bytes()
    assert tls.run(["mysql-db1"], check, sans=["10.0.0.6"])[0]["cert"] == NOT_ISSUED
    assert crt.read_bytes() == before


def test_mariadb_prune_module_reads_its_keep_list_and_refuses_a_bad_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    import ansible.module_utils as mu

    utils = _load(REPO / "playbooks" / "roles" / "mariadb_modules" / "module_utils" / "hcops_mariadb.py",
                  "ansible.module_utils.hcops_mariadb")
    monkeypatch.setattr(mu, "hcops_mariadb", utils, raising=False)
    mod = _load(REPO / "playbooks" / "roles" / "mariadb_modules" / "library" / "hcops_mariadb_prune.py",
                "hcops_mariadb_prune")
    assert mod.parse_keep(["canary@10.231.2.0/255.255.255.0", "zbx_monitor@localhost"]) == {
        ("canary", "10.231.2.0/255.255.255.0"), ("zbx_monitor", "localhost")}
    for bad in ("canary", "@localhost", "canary@"):
        with pytest.raises(ValueError, match="every entry must be user@host"):
            mod.parse_keep(["repl@10.0.0.1", bad])
