"""Reaching the API: where from, retries, slow and absent servers, bad tokens, versions."""

from __future__ import annotations

import socket

import pytest

from inventories.errors import HcopsError
from inventories.loader import load_region
from monitoring.client import check_version, resolve_connection


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_zabbix_env(monkeypatch, tmp_path):
    for var in ("HCOPS_ZABBIX_URL", "HCOPS_ZABBIX_TOKEN", "HCOPS_ZABBIX_USER", "HCOPS_ZABBIX_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HCOPS_ZABBIX_BACKOFF", "0.05")


def test_default_connection_is_the_models_zabbix_with_the_stored_token(no_zabbix_env):
    from infra.state import SecretStore

    region = load_region("lab")
    with pytest.raises(HcopsError) as missing:
        resolve_connection(region)
    assert "no Zabbix API credentials" in missing.value.message and "--token" in missing.value.hint
    SecretStore("lab").set("zabbix-api-token", "stored-token")
    conn = resolve_connection(region)
    assert conn.url == "https://10.231.2.13:8081/api_jsonrpc.php"  # zbx1, frontend_port 8081, frontend_tls
    assert conn.token == "stored-token" and "secret store" in conn.source
    assert resolve_connection(region, url="http://127.0.0.1:1/api_jsonrpc.php", token="t").token == "t"


def test_version_check_names_the_unsupported_version():
    assert check_version("6.0.14", "u") == (6, 0, 14)
    for version in ("5.4.12", "7.0.3"):
        with pytest.raises(HcopsError) as exc:
            check_version(version, "http://zbx/api_jsonrpc.php")
        assert f"Zabbix {version}" in exc.value.message and "6.0" in exc.value.message


def test_unreachable_api_is_retried_then_reported(no_zabbix_env, hcops):
    url = f"http://127.0.0.1:{_closed_port()}/api_jsonrpc.php"
    result = hcops("monitor", "plan", "--region", "lab", "--url", url, "--token", "x", "--retries", "2")
    assert result.code == 1
    assert f"the Zabbix API at {url} is unreachable" in result.stderr
    assert "3 attempts" in result.stderr and "retry 2/2" in result.stderr
    assert "Traceback" not in result.stderr


def test_slow_api_times_out_with_a_clear_error(no_zabbix_env, hcops):
    # A socket that accepts connections into its backlog but never answers: a hung frontend.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/api_jsonrpc.php"
        result = hcops("monitor", "plan", "--region", "lab", "--url", url, "--token", "x",
                       "--timeout", "0.3", "--retries", "1")
    assert result.code == 1
    assert "did not answer in time" in result.stderr and "2 attempts" in result.stderr


@pytest.mark.zabbix
def test_bad_token_and_bad_path_are_refused_clearly(zabbix, hcops):
    bad = hcops("monitor", "plan", "--region", "lab", "--token", "0" * 64)
    assert bad.code == 1
    assert "refused the credentials" in bad.stderr and "token from --token" in bad.stderr
    wrong = hcops("monitor", "plan", "--region", "lab", "--url", zabbix.url.replace("api_jsonrpc.php", "nope.php"))
    assert wrong.code == 1
    assert "did not answer as a Zabbix API" in wrong.stderr


@pytest.mark.zabbix
def test_user_and_password_login(zabbix, hcops, monkeypatch):
    monkeypatch.delenv("HCOPS_ZABBIX_TOKEN")
    monkeypatch.setenv("HCOPS_ZABBIX_USER", "Admin")
    monkeypatch.setenv("HCOPS_ZABBIX_PASSWORD", "wrong")
    refused = hcops("monitor", "plan", "--region", "lab", "--retries", "0")
    assert refused.code == 1 and "refused the credentials" in refused.stderr
    monkeypatch.setenv("HCOPS_ZABBIX_PASSWORD", "zabbix")
    def open_sessions() -> int:
        return int(zabbix.sql("SELECT COUNT(*) FROM sessions WHERE userid=1 AND status=0").strip())

    before = open_sessions()
    assert hcops("monitor", "plan", "--region", "lab").code == 2
    assert hcops("monitor", "maintenance", "list", "--region", "lab").code == 0
    assert open_sessions() == before  # each password session was logged out (token sessions need none)
