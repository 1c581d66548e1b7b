"""What Zabbix should hold for a region, computed from the model alone (no API call).

- host groups: `hcops/<region>`, and `.../site/<site>`, `.../county/<county>`, `.../role/<role>`;
- proxies: one active proxy per remote site (`sites.<site>.monitoring_proxy`), PSK from the
  proxy, accepted only from the proxy host's address;
- hosts: an agent interface at the host's primary (management) address, PSK encryption both
  ways, templates by role, tags (`managed-by: hcops`, region, site, county, roles, host), the
  macros the role templates read, and the site's proxy when the site is remote;
- web scenarios: one per listener of every public nginx service, at its VIP;
- services: per SLO a tree platform -> tier -> host; a tier is the SLO's service and what it
  depends on (nginx pools, the canary's database), a host leaf matches problems by the
  `hcops-host` tag the host carries (Zabbix passes host tags on to problems);
- SLAs: one per SLO, selecting the SLO's platform service by tag;
- items and triggers: hcops' own outage triggers (agent unreachable, database down, web check
  failing, each tagged `hcops-slo: outage`, the only problems SLO services count), certificate
  expiry per https listener, and whatever the CONTRIBUTORS below add (backup age, burn rates);
- alerting: media types (webhook, email), a role and user groups per on-call group, users with
  their media, and one trigger action with the model's escalation.

Extending from outside: write a function `(Region) -> Iterable[Obj]` that returns items and
triggers made with `item(...)` and `trigger(...)` below, and append it to `CONTRIBUTORS`. Its
objects are owned, diffed, created and pruned like every other (see monitoring/README.md).

PSKs are write-only in Zabbix (the API never returns them), so they are not fields here: the
apply step reads them from the secret store when it creates a host or rotates keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from inventories.dependencies import tiers
from inventories.freshness import freshness_checks
from inventories.model import Region
from inventories.schema import MySQL, Nginx, Oracle
from monitoring import burnrate
from monitoring.objects import (
    HOST_TAG,
    KEY_TAG,
    MANAGED_TAG,
    REGION_TAG,
    SLA_TAG,
    SLO_PROBLEM_TAG,
    VIP_TAG,
    Obj,
    State,
    Tags,
    group_prefix,
    sla_prefix,
    tags,
)

BASE_TEMPLATE = "Linux by Zabbix agent"
ROLE_TEMPLATES = {
    "mysql": "MySQL by Zabbix agent 2",
    "nginx": "Nginx by HTTP",
    "oracle": "Oracle by Zabbix agent 2",
}
MANAGED_TEMPLATES = frozenset({BASE_TEMPLATE, *ROLE_TEMPLATES.values()})
"""Templates hcops links (and may unlink); any other template on a host is a person's."""
MANAGED_MACROS = frozenset({"{$MYSQL.DSN}", "{$NGINX.STUB_STATUS.HOST}", "{$NGINX.STUB_STATUS.PORT}",
                            "{$ORACLE.CONNSTRING}", "{$ORACLE.SERVICE}"})
"""Macros hcops sets; a host's other macros are people's and are kept."""
AGENT_PORT = "10050"
TLS_PSK = "2"  # HOST_ENCRYPTION_PSK, for both tls_connect and tls_accept
TLS_NONE = "1"  # HOST_ENCRYPTION_NONE: an active proxy's tls_connect (the server never connects to it)
PROXY_ACTIVE = "5"  # HOST_STATUS_PROXY_ACTIVE
SLA_PERIOD = {"month": "2", "quarter": "3", "year": "4"}  # ZBX_SLA_PERIOD_*
# Service status algorithms (ZBX_SERVICE_STATUS_CALC_*).
ALG_ALL_CHILDREN = "1"  # a problem only when every child has one: a redundant pair
ALG_ANY_CHILD = "2"  # the most critical child: any failure counts
PROBLEM_TAG_EQUAL = "0"
MYSQL_AGENT_SESSION = "hcops"  # playbooks/roles/zabbix_agent: zabbix_agent_mysql_session
# Only problems that mean "not serving" count against an SLO. The official templates tag
# `scope: availability` on far more than outages (time out of sync, refused and aborted
# connections), so hcops raises its own outage triggers, tagged `hcops-slo: outage`, and the
# SLO leaves match that tag alone; template problems still alert but spend no error budget.
OUTAGE_TAG = (SLO_PROBLEM_TAG[0], PROBLEM_TAG_EQUAL, SLO_PROBLEM_TAG[1])
SEVERITY = {"not_classified": "0", "information": "1", "warning": "2", "average": "3", "high": "4",
            "disaster": "5"}
CERT_WARN_DAYS = 21
"""Days before a certificate expires that its trigger fires (deploy renews 30 days before)."""


def region_group(region: Region) -> str:
    return group_prefix(region.name)


def host_groups(region: Region, host: str) -> tuple[str, ...]:
    ref = region.hosts[host]
    base = region_group(region)
    names = {base, f"{base}/site/{ref.site_name}"}
    if ref.site.county:
        names.add(f"{base}/county/{ref.site.county}")
    names.update(f"{base}/role/{role}" for role in region.host_roles(host))
    return tuple(sorted(names))


def host_templates(region: Region, host: str) -> tuple[str, ...]:
    names = {BASE_TEMPLATE}
    names.update(ROLE_TEMPLATES[r] for r in region.host_roles(host) if r in ROLE_TEMPLATES)
    return tuple(sorted(names))


def host_macros(region: Region, host: str) -> tuple[tuple[str, str], ...]:
    """Macros the role templates need, with values from the model (never a secret)."""
    macros: dict[str, str] = {}
    for name in region.host_services(host):
        svc = region.services[name]
        if isinstance(svc, MySQL):
            # A named session of agent 2 (written by the zabbix_agent role): socket, monitoring
            # account and its password stay on the host, so no secret macro is needed here.
            macros["{$MYSQL.DSN}"] = MYSQL_AGENT_SESSION
        elif isinstance(svc, Nginx):
            http = [lst.port for lst in svc.listeners if lst.protocol == "http"]
            macros["{$NGINX.STUB_STATUS.HOST}"] = str(region.service_address(name, host))
            macros["{$NGINX.STUB_STATUS.PORT}"] = str(http[0] if http else 80)
        elif isinstance(svc, Oracle):
            macros["{$ORACLE.CONNSTRING}"] = f"tcp://localhost:{svc.port}"
            macros["{$ORACLE.SERVICE}"] = svc.sid
    return tuple(sorted(macros.items()))


def host_tags(region: Region, host: str) -> Tags:
    ref = region.hosts[host]
    pairs = [MANAGED_TAG, (REGION_TAG, region.name), ("site", ref.site_name), (HOST_TAG, host)]
    if ref.site.county:
        pairs.append(("county", ref.site.county))
    pairs += [("role", role) for role in region.host_roles(host)]
    pairs += [("service", svc) for svc in region.host_services(host)]
    return tags(*pairs)


def host_object(region: Region, host: str) -> Obj:
    ref = region.hosts[host]
    roles = ", ".join(region.host_roles(host)) or "none"
    return Obj("host", host, {
        "name": host,
        "status": "0",
        "description": f"Managed by hcops (region {region.name}, site {ref.site_name}); roles: {roles}",
        "groups": host_groups(region, host),
        "templates": host_templates(region, host),
        "tags": host_tags(region, host),
        "macros": host_macros(region, host),
        "interface.ip": str(ref.primary_address),
        "interface.port": AGENT_PORT,
        "tls_connect": TLS_PSK,
        "tls_accept": TLS_PSK,
        "proxy": proxy.name if (proxy := region.zabbix_proxy_of(host)) else "",
    })


def proxy_objects(region: Region) -> list[Obj]:
    """An active proxy per remote site; its PSK is write-only like a host's (sent by apply)."""
    return [Obj("proxy", p.name, {
        "name": p.name,
        "status": PROXY_ACTIVE,
        "description": f"Managed by hcops (region {region.name}, site {site}, on {p.host})",
        "tls_connect": TLS_NONE,
        "tls_accept": TLS_PSK,
        "proxy_address": str(p.address),
    }, extra={"psk_identity": p.psk_identity, "psk_secret": p.psk_secret})
        for site, p in sorted(region.zabbix_proxies.items())]


def web_scenarios(region: Region) -> list[Obj]:
    """One check per public listener, on the first proxy host, aimed at the service's VIP."""
    out: list[Obj] = []
    for name, svc in region.services.items():
        if not isinstance(svc, Nginx) or not svc.public:
            continue
        host = svc.hosts[0]
        address = svc.vip or region.service_address(name, host)
        for lst in sorted(svc.listeners, key=lambda item: item.port):
            title = f"hcops {name} {lst.protocol}:{lst.port}"
            out.append(Obj("httptest", f"{host}/{title}", {
                "host": host,
                "name": title,
                "url": f"{lst.protocol}://{address}:{lst.port}/",
                "status_codes": "200",
                "delay": "1m",
                "retries": "2",
                "verify_peer": "1" if lst.protocol == "https" else "0",
                "verify_host": "1" if lst.protocol == "https" else "0",
                "follow_redirects": "1",
                "tags": tags(MANAGED_TAG, (REGION_TAG, region.name), ("service", name)),
            }))
    return out


def _service(region: Region, key: str, algorithm: str, parent: str, *, sortorder: int,
             problem_host: str | None = None, problem_vip: str | None = None, sla_tag: str | None = None) -> Obj:
    pairs = [MANAGED_TAG, (REGION_TAG, region.name), (KEY_TAG, key)]
    if sla_tag:
        pairs.append((SLA_TAG, sla_tag))
    problem: tuple[tuple[str, str, str], ...] = ()
    if problem_host:
        problem = ((HOST_TAG, PROBLEM_TAG_EQUAL, problem_host), OUTAGE_TAG)
    elif problem_vip:
        problem = ((VIP_TAG, PROBLEM_TAG_EQUAL, problem_vip), OUTAGE_TAG)
    return Obj("service", key, {
        "name": key,
        "algorithm": algorithm,
        "sortorder": str(sortorder),
        "tags": tags(*pairs),
        "problem_tags": tuple(sorted(problem)),  # as Zabbix's are read back (monitoring/actual.py)
        "parent": parent,
    })


def service_tree(region: Region, slo_name: str) -> list[Obj]:
    """Platform, tiers, hosts for one SLO, parents before children.

    A redundant tier is down only when all its hosts are; but a public nginx tier also has a
    check of its VIP, run from one proxy host, whose failure means the whole tier is not serving.
    That check gets a leaf of its own right under the platform (`<tier>@vip`), where one failure
    counts, instead of counting as that one host's problem inside the all-hosts tier.
    """
    slo = region.slos[slo_name]
    root = f"{region.name}/{slo_name}"
    out = [_service(region, root, ALG_ANY_CHILD, "", sortorder=0, sla_tag=root)]
    checked = {dict(web.fields["tags"])["service"] for web in web_scenarios(region)}
    for t_index, tier in enumerate(tiers(region, slo.service)):
        hosts = region.service_hosts(tier)
        tier_key = f"{root}/{tier}"
        algorithm = ALG_ALL_CHILDREN if len(hosts) > 1 else ALG_ANY_CHILD
        out.append(_service(region, tier_key, algorithm, root, sortorder=t_index))
        out += [_service(region, f"{tier_key}/{host}", ALG_ANY_CHILD, tier_key, sortorder=h_index,
                         problem_host=host)
                for h_index, host in enumerate(hosts)]
        if tier in checked:
            out.append(_service(region, f"{root}/{tier}@vip", ALG_ANY_CHILD, root, sortorder=t_index,
                                problem_vip=tier))
    return out


def sla_object(region: Region, slo_name: str) -> Obj:
    slo = region.slos[slo_name]
    budget = region.allowed_downtime_minutes(slo_name)
    return Obj("sla", f"{sla_prefix(region.name)}{slo_name}", {
        "name": f"{sla_prefix(region.name)}{slo_name}",
        "slo": f"{slo.target:.4f}",
        "period": SLA_PERIOD[slo.window],
        "timezone": "UTC",
        "status": "1",
        "service_tags": ((SLA_TAG, PROBLEM_TAG_EQUAL, f"{region.name}/{slo_name}"),),
        "description": (f"managed-by: hcops. SLO {slo_name} of region {region.name}: service {slo.service} "
                        f"available {slo.target}% per {slo.window} ({budget} min of downtime allowed)"),
    })


def item(region: Region, host: str, key: str, name: str, *, type: str = "0", value_type: str = "3",
         delay: str = "1m", units: str = "", master: str = "", history: str = "31d", trends: str = "365d",
         preprocessing: Iterable[tuple[str, str]] = (), extra_tags: Iterable[tuple[str, str]] = (),
         params: str = "") -> Obj:
    """An item hcops owns on a model host. `type` and `value_type` are Zabbix's codes (0 agent,
    2 trapper, 15 calculated with its formula in `params`, 18 dependent with `master` naming the
    master item's key; value 0 float, 3 unsigned, 4 text); `preprocessing` is (type, params) pairs."""
    return Obj("item", f"{host}/{key}", {
        "host": host, "key": key, "name": name, "type": type, "value_type": value_type,
        "delay": "0" if type in ("2", "18") else delay, "units": units, "master": master,
        "history": history, "trends": "0" if value_type in ("1", "2", "4") else trends,
        "preprocessing": tuple(preprocessing), "params": params,
        "tags": tags(MANAGED_TAG, (REGION_TAG, region.name), *extra_tags),
    })


def trigger(region: Region, host: str, name: str, expression: str, *, severity: str = "high",
            comments: str = "", outage: bool = False, extra_tags: Iterable[tuple[str, str]] = ()) -> Obj:
    """A trigger hcops owns; `expression` in Zabbix 6.0 syntax (`last(/host/key)=0`). `outage`
    marks a problem that means "not serving", the only kind SLO services count."""
    pairs = [MANAGED_TAG, (REGION_TAG, region.name), *extra_tags]
    if outage:
        pairs.append(SLO_PROBLEM_TAG)
    return Obj("trigger", f"{host}/{name}", {
        "host": host, "name": name, "expression": expression, "priority": SEVERITY[severity],
        "comments": comments, "manual_close": "0", "tags": tags(*pairs),
    })


def outage_triggers(region: Region) -> Iterable[Obj]:
    """What "down" means per host: the agent silent, the database not answering, a web check failing."""
    for host in region.hosts:
        roles = region.host_roles(host)
        yield trigger(region, host, f"hcops: {host} unreachable (agent silent 3m)",
                      f"nodata(/{host}/agent.ping,3m)=1", outage=True)
        if "mysql" in roles:
            yield trigger(region, host, f"hcops: {host} MySQL down",
                          f'last(/{host}/mysql.ping["{{$MYSQL.DSN}}","{{$MYSQL.USER}}","{{$MYSQL.PASSWORD}}"])=0',
                          outage=True)
    for web in web_scenarios(region):
        # One failed check is an outage: the scenario itself already tried `retries` times within
        # it, and a minute-long check that needed two in a row would miss outages under 2 min.
        host, title = web.fields["host"], web.fields["name"]
        yield trigger(region, host, f"{title} failing", f"last(/{host}/web.test.fail[{title}])<>0",
                      outage=True, extra_tags=[(VIP_TAG, dict(web.fields["tags"])["service"])],
                      comments=f"{web.fields['url']} did not answer 200 (certificate verified) "
                               f"in {web.fields['retries']} attempts")


def certificate_expiry(region: Region) -> Iterable[Obj]:
    """Per https listener of a public nginx service: agent 2 reads the certificate; a trigger
    fires CERT_WARN_DAYS before it expires, and another when it does not verify."""
    for name, svc in region.services.items():
        if not isinstance(svc, Nginx) or not svc.public:
            continue
        host = svc.hosts[0]
        address = svc.vip or region.service_address(name, host)
        for lst in sorted(svc.listeners, key=lambda item: item.port):
            if lst.protocol != "https":
                continue
            raw = f"web.certificate.get[{address},{lst.port}]"
            expires = f"hcops.cert.expires[{name},{lst.port}]"
            yield item(region, host, raw, f"hcops {name} certificate {address}:{lst.port}", value_type="4",
                       delay="1h", history="7d", extra_tags=[("service", name)])
            yield item(region, host, expires, f"hcops {name} certificate expires ({lst.port})", type="18",
                       value_type="3", units="unixtime", master=raw,
                       preprocessing=[("12", "$.x509.not_after.timestamp")], extra_tags=[("service", name)])
            yield trigger(region, host, f"hcops {name} certificate {lst.port} expires in < {CERT_WARN_DAYS} days",
                          f"last(/{host}/{expires})-now()<{CERT_WARN_DAYS * 86400}", severity="high",
                          comments="renew it: rerun deploy (it reissues certificates 30 days before expiry)")


def backup_freshness(region: Region) -> Iterable[Obj]:
    """Per backup policy: the backup host's agent reads the last verified time the backup engine
    publishes there; a trigger fires when it is older than one missed run allows (or never)."""
    for check in freshness_checks(region):
        tag = [("hcops-backup", check.policy)]
        yield item(region, check.host, check.item_key, f"hcops backup {check.policy}: last verified",
                   value_type="3", units="unixtime", delay="5m", extra_tags=tag)
        yield trigger(region, check.host, check.trigger_name, check.trigger_expression, severity="high",
                      extra_tags=tag,
                      comments=f"no backup of policy {check.policy} verified in {check.max_age_s // 3600} h: "
                               f"see `hcops backup list --policy {check.policy}`, run and verify one")


Contributor = Callable[[Region], Iterable[Obj]]
CONTRIBUTORS: list[Contributor] = [outage_triggers, certificate_expiry, backup_freshness, burnrate.desired]
"""Functions adding items and triggers (kinds "item" and "trigger") to the desired state.
Append yours (e.g. backup age, SLO burn rates); keys must be unique: `<host>/<item key>` and
`<host>/<trigger name>`."""


def desired_state(region: Region) -> State:
    state = State()
    for host in region.hosts:
        for group in host_groups(region, host):
            if group not in state.objects["hostgroup"]:
                state.add(Obj("hostgroup", group, {}))
        state.add(host_object(region, host))
    if not state.objects["hostgroup"]:
        state.add(Obj("hostgroup", region_group(region), {}))
    for obj in proxy_objects(region):
        state.add(obj)
    for obj in web_scenarios(region):
        state.add(obj)
    for slo_name in region.slos:
        for obj in service_tree(region, slo_name):
            state.add(obj)
        state.add(sla_object(region, slo_name))
    for contribute in CONTRIBUTORS:
        for obj in contribute(region):
            if obj.kind not in ("item", "trigger"):
                raise ValueError(f"{contribute.__name__} contributed a {obj.kind}; only items and triggers")
            if obj.key in state.objects[obj.kind]:
                raise ValueError(f"{contribute.__name__}: {obj.kind} {obj.key!r} is defined twice")
            if obj.fields["host"] not in region.hosts:
                raise ValueError(f"{contribute.__name__}: {obj.kind} {obj.key!r} is on unknown host")
            state.add(obj)
    from monitoring.alerting import alerting_objects  # noqa: PLC0415 (alerting builds on this module)
    from monitoring.apiuser import sync_objects  # noqa: PLC0415
    for obj in (*alerting_objects(region), *sync_objects(region)):
        state.add(obj)
    return state


def templates_needed(state: State) -> list[str]:
    return sorted({t for obj in state.objects["host"].values() for t in obj.fields["templates"]})
