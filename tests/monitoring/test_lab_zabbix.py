"""Zabbix sync against the lab's own Zabbix (deployed by the playbooks on zbx1), with the lab's
real agents reporting over PSK: apply, an empty second plan, agents available, data arriving."""

from __future__ import annotations

import pytest

from monitoring.client import ZabbixClient, resolve_connection
from tests.fixtures.deploy import Deploys, wait_for
from tests.fixtures.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.fixture(scope="module")
def synced(lab: Lab, deployed: Deploys, hcops_module) -> ZabbixClient:  # type: ignore[no-untyped-def]
    res = hcops_module("monitor", "apply", "--region", lab.region_arg, "--yes")
    assert res.code == 0, res.stderr
    return ZabbixClient.connect(resolve_connection(lab.region))


@pytest.fixture(scope="module")
def hcops_module():  # type: ignore[no-untyped-def]
    """The CLI runner at module scope (the function-scoped `hcops` fixture cannot feed `synced`)."""
    mp = pytest.MonkeyPatch()
    from tests.conftest import make_runner

    yield make_runner(mp)
    mp.undo()


def managed_hosts(client: ZabbixClient) -> list[dict]:  # type: ignore[type-arg]
    return client.call("host.get", {  # type: ignore[no-any-return]
        "output": ["host"], "selectInterfaces": ["ip", "available", "error"],
        "tags": [{"tag": "managed-by", "value": "hcops"}],
    })


def test_second_plan_is_empty(synced: ZabbixClient, lab: Lab, hcops) -> None:  # type: ignore[no-untyped-def]
    res = hcops("monitor", "plan", "--region", lab.region_arg)
    assert res.code == 0, res.stdout + res.stderr
    assert "no changes" in res.stdout + res.stderr


def test_every_model_host_is_monitored_at_its_model_address(synced: ZabbixClient, lab: Lab) -> None:
    hosts = {h["host"]: h for h in managed_hosts(synced)}
    assert set(hosts) == set(lab.region.hosts)
    for name, ref in lab.region.hosts.items():
        assert hosts[name]["interfaces"][0]["ip"] == str(ref.primary_address)


def test_real_agents_answer_the_server_over_psk(synced: ZabbixClient) -> None:
    """The Zabbix server on zbx1 reaches every agent with the PSK hcops sent (bounded wait)."""

    def all_available() -> bool:
        return all(h["interfaces"][0]["available"] == "1" for h in managed_hosts(synced))

    assert wait_for(all_available, timeout=180, interval=5), managed_hosts(synced)


def test_agent_data_arrives(synced: ZabbixClient) -> None:
    hostids = [h["hostid"] for h in synced.call("host.get", {"output": ["hostid"],
                                                            "tags": [{"tag": "managed-by", "value": "hcops"}]})]

    def pings() -> list[dict]:  # type: ignore[type-arg]
        return synced.call("item.get", {"output": ["lastvalue", "lastclock"], "hostids": hostids,  # type: ignore[no-any-return]
                                        "filter": {"key_": "agent.ping"}})

    assert wait_for(lambda: len(pings()) == len(hostids) and all(i["lastvalue"] == "1" for i in pings()),
                    timeout=240, interval=10), pings()


def test_mysql_template_reads_the_database_through_the_agent_session(synced: ZabbixClient, lab: Lab) -> None:
    """{$MYSQL.DSN} names the agent's session (socket + monitoring account): MySQL answers 1."""
    db_hosts = lab.region.service_hosts("appdb")
    hostids = [h["hostid"] for h in synced.call("host.get", {"output": ["hostid"], "filter": {"host": db_hosts}})]

    def pings() -> list[str]:
        items = synced.call("item.get", {"output": ["lastvalue", "lastclock"], "hostids": hostids,
                                         "search": {"key_": "mysql.ping["}, "startSearch": True})
        return [i["lastvalue"] for i in items if i["lastclock"] != "0"]

    assert wait_for(lambda: pings() == ["1"] * len(db_hosts), timeout=240, interval=10), pings()


def test_slo_services_count_only_availability_problems(synced: ZabbixClient, lab: Lab) -> None:
    """Load and CPU problems (this 2-core lab raises them) alert, but every SLO service stays OK:
    the leaves match only `scope: availability` problems of their host."""
    def statuses() -> dict[str, str]:
        services = synced.call("service.get", {"output": ["name", "status"],
                                               "tags": [{"tag": "managed-by", "value": "hcops"}]})
        return {s["name"]: s["status"] for s in services}

    assert wait_for(lambda: set(statuses().values()) == {"-1"}, timeout=240, interval=10), statuses()

