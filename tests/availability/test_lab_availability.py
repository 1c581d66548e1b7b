"""On the lab: the prober keeps a history, Zabbix gets the burn-rate items and triggers, and the
front-outage drill (nginx stopped on both proxies for a bounded time, inside the drill's own
maintenance window) fires the page trigger and shows in both sources of `hcops availability
report`, beside the drill's own measurement."""

from __future__ import annotations

import json
import threading
import time

import pytest

from monitoring import sla
from monitoring.burnrate import probe_key
from monitoring.client import ZabbixClient, resolve_connection
from tests.fixtures.deploy import Deploys, wait_for
from tests.fixtures.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]
OUTAGE_MAX_S = 120


def _page_problem(client: ZabbixClient, lab: Lab) -> list[dict]:  # type: ignore[type-arg]
    return client.call("problem.get", {  # type: ignore[no-any-return]
        "output": ["eventid", "name", "clock"], "tags": [
            {"tag": "region", "value": lab.region.name, "operator": 1},
            {"tag": "hcops-slo", "value": "platform", "operator": 1},
            {"tag": "severity", "value": "page", "operator": 1}]})


def test_outage_fires_burn_trigger_and_shows_in_both_sources(lab: Lab, deployed: Deploys, hcops, tmp_path) -> None:  # type: ignore[no-untyped-def]
    applied = hcops("monitor", "apply", "--region", lab.region_arg, "--yes")
    assert applied.code == 0, applied.stderr
    client = ZabbixClient.connect(resolve_connection(lab.region))
    triggers = client.call("trigger.get", {"output": ["description"], "tags": [
        {"tag": "region", "value": lab.region.name, "operator": 1}, {"tag": "hcops-slo", "value": "platform",
                                                                     "operator": 1}]})
    assert len(triggers) == 3, triggers  # page 1h+5m, page 6h+30m, ticket 3d+6h

    prober = lab.region.services["canary"].prober  # type: ignore[union-attr]
    assert lab.run(prober, "systemctl is-active hcops-prober").stdout.strip() == "active"

    def raw_value() -> str | None:
        rows = client.call("item.get", {"output": ["lastvalue", "lastclock"], "host": prober,
                                        "filter": {"key_": probe_key("platform")}})
        return rows[0]["lastvalue"] if rows and rows[0]["lastclock"] != "0" else None

    assert wait_for(lambda: raw_value() == "1", timeout=120, interval=5), "the raw probe item never read 1"
    def zabbix_downtime() -> float:
        return next(r.downtime_min for r in sla.report(client, lab.region, "month") if r.slo == "platform")

    before = zabbix_downtime()
    lab.wait_not_busy()
    started = time.time()
    # the drill runs here (Chaos Toolkit sets signal handlers: main thread only); a watcher
    # looks for the page problem while it runs
    seen: list[bool] = []
    watcher = threading.Thread(target=lambda: seen.append(bool(
        wait_for(lambda: _page_problem(client, lab), timeout=OUTAGE_MAX_S - 10, interval=5))), daemon=True)
    watcher.start()
    res = hcops("-o", "json", "drill", "run", "front-outage", "--region", lab.region_arg, "--yes")
    watcher.join(OUTAGE_MAX_S)
    ended = time.time()
    fired = bool(seen and seen[0])
    run = json.loads(res.stdout) if res.stdout.strip().startswith("{") else {}
    assert res.code == 0, f"front-outage failed: {run.get('verdict')} {res.stderr[-2000:]}"
    assert fired, "the page-level burn-rate trigger did not fire during the outage"
    measured = [o for o in run["outages"] if "request" in o["what"]]
    assert measured and run["failed_requests"] > 0, run["outages"]

    out = tmp_path / "availability.html"
    wait_for(lambda: lab.run(prober, "tail -n1 /var/lib/hcops-prober/history/platform/*.tsv | tail -n1")
             .stdout.split("\t")[1:2] == ["1"], timeout=60, interval=3)
    # Zabbix's Nginx checks poll once a minute: a bounded wait for its SLA to count this outage
    assert wait_for(lambda: zabbix_downtime() > before, timeout=120, interval=10), "Zabbix never counted it"
    res = hcops("-o", "json", "availability", "report", "--region", lab.region_arg, "--no-fail",
                "--html", str(out))
    assert res.code == 0, res.stderr
    data = json.loads(res.stdout)
    platform = next(s for s in data["slos"] if s["slo"] == "platform")
    ours = [i for i in platform["probes"]["incidents"] if i["start"] >= started - 15 and i["end"] <= ended + 30]
    assert ours and sum(i["seconds"] for i in ours) >= 30, platform["probes"]
    assert platform["zabbix"] is not None, platform["zabbix_error"]
    assert platform["zabbix"]["downtime_min"] > before, platform["zabbix"]
    assert platform["paging"] and data["failing"]  # the outage is inside the 5 min window still
    assert run["run_id"] in [d["run_id"] for d in platform["drills"]]  # drawn on the report's timeline
    assert "<svg" in out.read_text()
    print(json.dumps({"outage_s": round(ended - started), "drill_outage_s": sum(o["seconds"] for o in measured),
                      "probe_down_min": platform["probes"]["downtime_min"],
                      "zabbix_down_min": platform["zabbix"]["downtime_min"], "explanation": platform["explanation"]}))
