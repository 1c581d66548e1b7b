"""Burn-rate items and triggers for every SLO, generated from the model as Sloth generates
Prometheus rules from an SLO spec, and synced by `hcops monitor apply` with everything else.

On the prober host (the model's `services.<canary>.prober`):
- one agent item per SLO reads the prober's last result (`<state>/last/<slo>.json`); a result
  older than three probe intervals counts as a failure (a dead prober is not a healthy service);
- one calculated item per SLO and window holds the burn rate, `(1 - avg(probe, window)) / (1 - target)`;
- one trigger per SLO and alert rule of the SRE workbook fires when both its windows burn at
  least at its factor (page: 1h & 5m at 14.4x, 6h & 30m at 6x; ticket: 3d & 6h at 1x).

One contributor of `monitoring.desired.CONTRIBUTORS`: the generic item/trigger sync reads,
diffs and applies what it returns like everything else hcops owns.
"""

from __future__ import annotations

from dr.availability.burn import WINDOWS, _span
from inventories.model import Region
from inventories.probes import prober
from monitoring.objects import Obj

STATE_DIR = "/var/lib/hcops-prober"  # playbooks/roles/canary: canary_prober_state_dir
ITEM_AGENT, ITEM_CALCULATED = "0", "15"
VALUE_FLOAT, VALUE_UNSIGNED = "0", "3"
PREPROC_JS = "21"
SEVERITY = {"page": "high", "ticket": "warning"}
SLO_TAG = "hcops-slo"
CHECK_JS = ("var o = JSON.parse(value);\n"
            "if (Date.now() / 1000 - o.t > 900) { return 2; }\n"
            "return o.failing ? 1 : 0;")


def probe_key(slo: str) -> str:
    return f'vfs.file.contents["{STATE_DIR}/last/{slo}.json"]'


def check_key() -> str:
    return f'vfs.file.contents["{STATE_DIR}/check.json"]'


def burn_key(slo: str, seconds: int) -> str:
    return f"hcops.burn[{slo},{_span(seconds)}]"


def _js(stale_s: float) -> str:
    return ("var o = JSON.parse(value);\n"
            f"if (Date.now() / 1000 - o.t > {stale_s:g}) {{ return 0; }}\n"
            "return o.ok ? 1 : 0;")


def desired(region: Region) -> list[Obj]:
    from monitoring.desired import item, trigger  # noqa: PLC0415 (desired registers this contributor)

    found = prober(region)
    if found is None or found.host not in region.hosts:
        return []
    host = found.host
    scope = ("scope", "slo")
    # The playbooks' SLO check (hcops-slo-check.timer) writes check.json: 0 ok, 1 failing, 2 stale.
    out: list[Obj] = [
        item(region, host, check_key(), "hcops SLO check (0 ok, 1 budget exhausted or page burn, 2 check stale)",
             type=ITEM_AGENT, value_type=VALUE_UNSIGNED, delay="1m", preprocessing=((PREPROC_JS, CHECK_JS),),
             extra_tags=(scope,)),
        trigger(region, host, f"hcops {region.name}: SLO check failing (budget exhausted or page-level burn) or stale",
                f"last(/{host}/{check_key()})>=1", severity=SEVERITY["page"], extra_tags=(scope,)),
    ]
    for slo_name, slo in region.slos.items():
        slo_tags = ((SLO_TAG, slo_name), scope)
        raw = probe_key(slo_name)
        out.append(item(region, host, raw, f"hcops SLO {slo_name}: probe of {slo.service} (1 up, 0 down)",
                        type=ITEM_AGENT, value_type=VALUE_UNSIGNED, delay=f"{found.interval_s:g}s",
                        preprocessing=((PREPROC_JS, _js(3 * found.interval_s)),), extra_tags=slo_tags))
        budget = (100.0 - slo.target) / 100.0
        for span in sorted({s for w in WINDOWS for s in (w.long_s, w.short_s)}):
            out.append(item(region, host, burn_key(slo_name, span),
                            f"hcops SLO {slo_name}: burn rate over {_span(span)}",
                            type=ITEM_CALCULATED, value_type=VALUE_FLOAT, delay="30s", units="x",
                            params=f"(1-avg(//{raw},{_span(span)}))/{budget:g}", extra_tags=slo_tags))
        for win in WINDOWS:
            expression = (f"last(/{host}/{burn_key(slo_name, win.long_s)})>={win.factor:g} and "
                          f"last(/{host}/{burn_key(slo_name, win.short_s)})>={win.factor:g}")
            out.append(trigger(
                region, host,
                f"hcops {region.name}/{slo_name}: error budget burning at {win.factor:g}x or more "
                f"({_span(win.long_s)} and {_span(win.short_s)}), {win.severity}",
                expression, severity=SEVERITY[win.severity], extra_tags=(*slo_tags, ("severity", win.severity))))
    return out
