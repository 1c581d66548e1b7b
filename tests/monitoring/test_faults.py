"""Faults between hcops and Zabbix: a lost answer after a write, a frontend out of memory, a
truncated body, TLS with the region CA. Each through a loopback proxy in front of the real
test Zabbix (tests/monitoring/faults.py)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from infra.deploy_pki import RegionPKI
from infra.state import SecretStore
from monitoring.ledger import Ledger
from tests.fixtures.zabbix import ZabbixTestServer
from tests.monitoring.faults import FaultProxy
from tests.monitoring.helpers import as_json

pytestmark = pytest.mark.zabbix


@pytest.fixture
def proxy(zabbix: ZabbixTestServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    with FaultProxy(zabbix.url) as fault:
        monkeypatch.setenv("HCOPS_ZABBIX_URL", fault.url)
        monkeypatch.setenv("HCOPS_ZABBIX_BACKOFF", "0.01")
        yield fault


def test_a_lost_answer_after_a_create_is_re_read_not_re_sent(zabbix, hcops, proxy):
    # Reproduced before the fix: a 502 after service.create was retried, leaving duplicates.
    proxy.faults = {"service.create": ("lost", 1), "host.create": ("lost", 1)}
    applied = hcops("monitor", "apply", "--region", "lab", "--yes")
    assert applied.code == 0, applied.stderr
    text = " ".join(applied.stderr.split())
    assert "may or may not have been applied" in text and "had been applied (recorded)" in text
    services = zabbix.call("service.get", {"output": ["name"]})
    names = [s["name"] for s in services]
    assert len(names) == len(set(names)), "a service was created twice"
    assert len({h["host"] for h in zabbix.call("host.get", {"output": ["host"]})}) == 8  # 7 + "Zabbix server"
    ledger = Ledger("lab")
    assert len(ledger.ids["service"]) == len(names) and len(ledger.ids["host"]) == 7
    assert proxy.seen["host.create"] == 1  # the hosts went once: the re-read found them all
    assert hcops("monitor", "plan", "--region", "lab").code == 0


def test_a_server_error_is_reported_with_its_cause(zabbix, hcops, proxy):
    proxy.faults = {"host.create": ("oom", 10)}
    failed = hcops("monitor", "apply", "--region", "lab", "--yes")
    assert failed.code == 1 and "Traceback" not in failed.stderr
    text = " ".join(failed.stderr.split())
    assert "server error (HTTP 500: Fatal error: Allowed memory size of 134217728 bytes exhausted" in text
    assert "zabbix_server_php_memory_limit" in text and "stopped after" in text
    assert "unreachable" not in text


def test_a_truncated_answer_is_an_error_not_an_internal_error(zabbix, hcops, proxy):
    proxy.faults = {"host.get": ("cut", 1)}
    assert hcops("monitor", "plan", "--region", "lab").code == 2  # a read: retried, then fine
    proxy.faults = {"host.get": ("cut", 99)}
    cut = hcops("monitor", "plan", "--region", "lab", "--retries", "1")
    assert cut.code == 1 and "Traceback" not in cut.stderr and "internal error" not in cut.stderr
    assert "sent a truncated answer" in " ".join(cut.stderr.split())


def test_psk_rotation_whose_answer_is_lost_keeps_the_new_keys(zabbix, hcops, proxy):
    assert hcops("monitor", "apply", "--region", "lab", "--yes").code == 0
    store = SecretStore("lab")
    old = store.get("zabbix-psk-db1", "psk")
    proxy.faults = {"host.update": ("lost", 1)}
    lost = hcops("monitor", "apply", "--region", "lab", "--yes", "--rotate-psk", "--no-agents")
    assert lost.code == 1
    # Zabbix took the new keys; the answer was lost. They are kept as pending, not thrown away.
    in_zabbix = zabbix.sql("SELECT tls_psk FROM hosts WHERE host='db1'").strip()
    assert in_zabbix != old and store.get("zabbix-psk-db1-pending", "psk") == in_zabbix
    again = hcops("monitor", "apply", "--region", "lab", "--yes", "--rotate-psk", "--no-agents")
    assert again.code == 0, again.stderr
    assert store.get("zabbix-psk-db1", "psk") == in_zabbix == zabbix.sql(
        "SELECT tls_psk FROM hosts WHERE host='db1'").strip()
    assert not store.exists("zabbix-psk-db1-pending")


class _TlsFront:
    """https on loopback with a region-CA certificate, forwarding to the test Zabbix (plain http)."""

    def __init__(self, upstream: FaultProxy, cert: str, key: str) -> None:
        self.server: ThreadingHTTPServer = ThreadingHTTPServer(("127.0.0.1", 0), upstream.server.RequestHandlerClass)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/api_jsonrpc.php"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_api_over_tls_is_verified_against_the_region_ca(zabbix, hcops, proxy, monkeypatch, tmp_path):
    issued = RegionPKI("lab").issue("zabbix-frontend-test", ["127.0.0.1"])
    cert, key = tmp_path / "front.crt", tmp_path / "front.key"
    cert.write_text(issued.cert)
    key.write_text(issued.key)
    front = _TlsFront(proxy, str(cert), str(key))
    try:
        monkeypatch.setenv("HCOPS_ZABBIX_URL", front.url)
        # The region CA (<state>/lab/pki/ca.crt) is found by itself for an https URL.
        assert hcops("monitor", "plan", "--region", "lab").code == 2
        other = RegionPKI("elsewhere")
        other_ca = tmp_path / "other-ca.crt"
        other_ca.write_text(other.ca_pem())
        refused = hcops("monitor", "plan", "--region", "lab", "--ca-file", str(other_ca))
        assert refused.code == 1 and "did not verify" in refused.stderr and "--ca-file" in refused.stderr
        missing = hcops("monitor", "plan", "--region", "lab", "--ca-file", str(tmp_path / "nope.crt"))
        assert missing.code == 1 and "does not exist" in missing.stderr
        as_plan = as_json(hcops("-o", "json", "monitor", "plan", "--region", "lab").stdout)
        assert as_plan["summary"]["create"] > 0
    finally:
        front.close()
