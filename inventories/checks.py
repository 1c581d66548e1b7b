"""Cross-reference and policy checks on a structurally valid region.

Each check yields `(path, message, hint)`; the loader pins paths to file positions. Checks never
raise on odd input: a reference that does not resolve is reported once and then skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network, ip_network

from inventories.model import PATIENT_DATA_KINDS, PREFERRED_PURPOSE, Region, contains
from inventories.schema import Canary, Collector, MySQL, Nginx, ObjectStorage, Oracle, Pacs, Zabbix
from inventories.source import PathKey

Finding = tuple[PathKey, str, str]
INTERNET = IPv4Network("0.0.0.0/0")


def check(region: Region) -> list[Finding]:
    out: list[Finding] = []
    for fn in (_hosts, _networks, _links, _services, _rules, _admin, _backups, _slos, _equipment, _oncall, _proxies):
        out.extend(fn(region))
    return out


def _hosts(region: Region) -> Iterator[Finding]:
    seen_host: dict[str, str] = {}
    seen_addr: dict[IPv4Address, str] = {}
    for site_name, site in region.sites.items():
        for host_name, host in site.hosts.items():
            path: PathKey = ("sites", site_name, "hosts", host_name)
            if host_name in seen_host:
                yield (path, f"host name {host_name!r} is already used in site {seen_host[host_name]!r}",
                       "host names are unique across the region: rename one of them")
                continue
            seen_host[host_name] = site_name
            for net_name, addr in host.addresses.items():
                apath = path + ("addresses", net_name)
                net = site.networks.get(net_name)
                if net is None:
                    yield (apath, f"network {net_name!r} is not declared in site {site_name!r}",
                           f"use one of: {', '.join(site.networks) or '(none declared)'}, "
                           f"or declare it under sites.{site_name}.networks")
                    continue
                if not contains(net.cidr, addr):
                    yield (apath, f"{addr} is outside network {site_name}.{net_name} ({net.cidr})",
                           f"pick a host address inside {net.cidr}")
                    continue
                if addr == region.gateway(net):
                    yield (apath, f"{addr} is the gateway of {site_name}.{net_name}",
                           "the first address of a network is its gateway: use another")
                    continue
                if addr in seen_addr:
                    yield (apath, f"address {addr} is already used by {seen_addr[addr]}",
                           "every address is assigned once: pick a free one")
                    continue
                seen_addr[addr] = f"sites.{site_name}.hosts.{host_name}"
        if site.kind in ("county_hospital", "township_clinic") and not site.county:
            yield (("sites", site_name, "kind"), f"a {site.kind} site must name its county",
                   "add `county: <name>` to the site")


def _connected(region: Region) -> dict[str, int]:
    """Component id per site: sites joined by links can route to each other."""
    comp = {name: i for i, name in enumerate(region.sites)}
    changed = True
    while changed:
        changed = False
        for link in region.links.values():
            a, b = link.between
            if a in comp and b in comp and comp[a] != comp[b]:
                low = min(comp[a], comp[b])
                for site, c in comp.items():
                    if c in (comp[a], comp[b]) and c != low:
                        comp[site] = low
                changed = True
    return comp


def _networks(region: Region) -> Iterator[Finding]:
    comp = _connected(region)
    nets = sorted(region.networks().items(), key=lambda kv: int(kv[1][2].cidr.network_address))
    # Sorted by start address, a network can only overlap those that start before it ends.
    active: list[tuple[str, tuple[str, str, IPv4Network]]] = []
    for ref, (site, net_name, net) in nets:
        active = [a for a in active if a[1][2].broadcast_address >= net.cidr.network_address]
        for other_ref, (other_site, _, other) in active:
            if comp.get(site) == comp.get(other_site):
                yield (("sites", site, "networks", net_name, "cidr"),
                       f"{net.cidr} overlaps {other_ref} ({other}); the two sites are linked",
                       "give every network reachable over a link its own range")
        active.append((ref, (site, net_name, net.cidr)))


def _links(region: Region) -> Iterator[Finding]:
    for name, link in region.links.items():
        for i, site in enumerate(link.between):
            if site not in region.sites:
                yield (("links", name, "between", i), f"unknown site {site!r}",
                       f"use one of: {', '.join(region.sites)}")
        if link.between[0] == link.between[1]:
            yield (("links", name, "between"), "a link must join two different sites",
                   "name the two sites the line connects")
        if link.encryption == "none":
            yield (("links", name, "encryption"),
                   "level-3 protection (GB/T 22239-2019, 8.1.2.2) requires encrypted transmission",
                   "set `encryption: wireguard` or `ipsec`")


def _host_ref(region: Region, path: PathKey, host: str) -> Iterator[Finding]:
    if host not in region.hosts:
        yield (path, f"unknown host {host!r}", "name a host declared under sites.<site>.hosts")


def _services(region: Region) -> Iterator[Finding]:
    for name, svc in region.services.items():
        base: PathKey = ("services", name)
        if isinstance(svc, MySQL):
            yield from _host_ref(region, base + ("primary",), svc.primary)
            for i, rep in enumerate(svc.replicas):
                yield from _host_ref(region, base + ("replicas", i), rep)
                if rep == svc.primary:
                    yield (base + ("replicas", i), f"replica {rep!r} is on the same host as its primary",
                           "put the replica on another host (another site for disaster recovery)")
            if len(set(svc.replicas)) != len(svc.replicas):
                yield (base + ("replicas",), "a replica is listed twice", "list each replica once")
            yield from _replicas_reach_primary(region, name, svc)
        elif isinstance(svc, (Nginx, Canary, Oracle)):
            for i, host in enumerate(svc.hosts):
                yield from _host_ref(region, base + ("hosts", i), host)
        elif isinstance(svc, Collector):
            yield from _host_ref(region, base + ("host",), svc.host)
            yield from _host_ref(region, base + ("peer",), svc.peer)
            yield from _collector(region, name, svc)
        elif isinstance(svc, (Zabbix, Pacs)):  # one host each, named `server` or `host`
            yield from _host_ref(region, base + ("server" if isinstance(svc, Zabbix) else "host",),
                                 svc.server if isinstance(svc, Zabbix) else svc.host)
        elif isinstance(svc, ObjectStorage):
            if svc.site not in region.sites:
                yield (base + ("site",), f"unknown site {svc.site!r}", f"use one of: {', '.join(region.sites)}")
            if svc.host:
                yield from _host_ref(region, base + ("host",), svc.host)
        if isinstance(svc, Nginx):
            yield from _nginx(region, name, svc)
        if isinstance(svc, Canary) and svc.prober is not None:
            yield from _host_ref(region, ("services", name, "prober"), svc.prober)
        if isinstance(svc, Canary):
            db = region.services.get(svc.database)
            if not isinstance(db, MySQL):
                yield (base + ("database",), f"{svc.database!r} is not a mysql service",
                       "name the mysql service the canary writes to")
        yield from _listen_networks(region, name)


def _replicas_reach_primary(region: Region, name: str, svc: MySQL) -> Iterator[Finding]:
    """A replica pulls the binlog from its primary: some rule to the service must let the
    replica's address reach the MySQL port, or replication never starts (security groups and
    firewalls are built from the rules alone)."""
    if svc.primary not in region.hosts:
        return
    sources = [nets for rule in region.spec.rules.values()
               if rule.to == name and (not rule.ports or svc.port in rule.ports)
               and (nets := parse_source(region, rule.source)) is not None]
    for i, rep in enumerate(svc.replicas):
        if rep not in region.hosts or rep == svc.primary:
            continue
        try:
            addr = region.service_address(name, rep)
        except (KeyError, ValueError, StopIteration):
            continue  # the host's addresses are broken: reported by the host checks
        if not any(addr in net for nets in sources for net in nets):
            site, net = region.hosts[rep].site_name, region.service_network(name, rep)
            yield (("services", name, "replicas", i),
                   f"replica {rep} ({addr}) cannot reach its primary {svc.primary} on {svc.port}: "
                   f"no rule to {name} allows it",
                   f"add a rule `from: {site}.{net}` `to: {name}`")


def _listen_networks(region: Region, name: str) -> Iterator[Finding]:
    svc = region.services[name]
    if svc.network is None:
        return
    for host in region.service_hosts(name):
        ref = region.hosts.get(host)
        if ref and not any(ref.site.networks[n].purpose == svc.network
                           for n in ref.spec.addresses if n in ref.site.networks):
            yield (("services", name, "network"), f"host {host!r} has no address on a {svc.network} network",
                   f"give {host} an address on a {svc.network} network, or drop `network:` "
                   f"to use the {PREFERRED_PURPOSE[svc.kind]} network or the host's only address")


def _nginx(region: Region, name: str, svc: Nginx) -> Iterator[Finding]:
    base: PathKey = ("services", name)
    for i, lst in enumerate(svc.listeners):
        if lst.pool not in svc.pools:
            yield (base + ("listeners", i, "pool"), f"unknown pool {lst.pool!r}",
                   f"use one of: {', '.join(svc.pools) or '(declare pools first)'}")
    for pool_name, pool in svc.pools.items():
        if pool.service not in region.services:
            yield (base + ("pools", pool_name, "service"), f"unknown service {pool.service!r}",
                   f"use one of: {', '.join(region.services)}")
    if svc.vip is not None:
        nets = {(ref.site_name, n) for h in svc.hosts if (ref := region.hosts.get(h)) for n in ref.spec.addresses}
        if not any(contains(region.sites[s].networks[n].cidr, svc.vip) for s, n in nets
                   if n in region.sites[s].networks):
            yield (base + ("vip",), f"VIP {svc.vip} is on none of the nginx hosts' networks",
                   "pick a free address in the network the nginx hosts share")
        for h in region.hosts.values():
            if svc.vip in h.spec.addresses.values():
                yield (base + ("vip",), f"VIP {svc.vip} is already the address of host {h.name}",
                       "a VIP floats between hosts: pick an address no host owns")


def _collector(region: Region, name: str, svc: Collector) -> Iterator[Finding]:
    link = region.links.get(svc.link)
    if link is None:
        yield (("services", name, "link"), f"unknown link {svc.link!r}", f"use one of: {', '.join(region.links)}")
        return
    if svc.host in region.hosts and svc.peer in region.hosts:
        sites = {region.hosts[svc.host].site_name, region.hosts[svc.peer].site_name}
        if sites != set(link.between):
            yield (("services", name, "link"), f"link {svc.link!r} does not join {' and '.join(sorted(sites))}",
                   "the collector's link must join the collector's site and its peer's site")
    if svc.tunnel_cidr is not None:
        if svc.tunnel_cidr.prefixlen > 30:
            yield (("services", name, "tunnel_cidr"), f"{svc.tunnel_cidr} has no room for two tunnel addresses",
                   "use a /30 or larger")
        for net_ref, (_, _, net) in region.networks().items():
            if net.cidr.overlaps(svc.tunnel_cidr):
                yield (("services", name, "tunnel_cidr"), f"{svc.tunnel_cidr} overlaps network {net_ref}",
                       "pick tunnel addresses outside every site network")


def parse_source(region: Region, source: str) -> list[IPv4Network] | None:
    """A rule source as networks: `internet`, a site, `site.network` or a CIDR; None if unknown."""
    if source in ("internet", "any"):
        return [INTERNET]
    nets = region.networks()
    if source in nets:
        return [nets[source][2].cidr]
    if source in region.sites:
        return [n.cidr for n in region.sites[source].networks.values()]
    try:
        return [IPv4Network(ip_network(source, strict=False))]
    except ValueError:
        return None


def _rules(region: Region) -> Iterator[Finding]:
    for name, rule in region.spec.rules.items():
        base: PathKey = ("rules", name)
        nets = parse_source(region, rule.source)
        if nets is None:
            yield (base + ("from",), f"unknown source {rule.source!r}",
                   "use `internet`, a site name, `site.network` or a CIDR like 10.0.0.0/8")
        svc = region.services.get(rule.to)
        if svc is None:
            yield (base + ("to",), f"unknown service {rule.to!r}", f"use one of: {', '.join(region.services)}")
            continue
        declared = region.service_ports(rule.to)
        for i, port in enumerate(rule.ports or []):
            if port not in declared:
                yield (base + ("ports", i), f"service {rule.to!r} does not listen on port {port}",
                       f"use its ports {declared}, or omit `ports` to allow all of them")
        ports = set(rule.ports or declared)
        open_to_all = nets is not None and any(n.prefixlen == 0 for n in nets)
        if open_to_all and (svc.kind in PATIENT_DATA_KINDS or ports & set(region.spec.region.admin_ports)):
            yield (base + ("from",), f"{svc.kind} port(s) {sorted(ports)} open to 0.0.0.0/0: "
                   "level-3 protection forbids database, image store and admin ports open to the internet",
                   "allow only the networks that need it, e.g. `from: cloud.app`")


def _admin(region: Region) -> Iterator[Finding]:
    for i, source in enumerate(region.spec.region.admin_sources):
        nets = parse_source(region, source)
        path: PathKey = ("region", "admin_sources", i)
        if nets is None:
            yield (path, f"unknown admin source {source!r}", "use a site, `site.network` or a CIDR")
        elif any(n.prefixlen == 0 for n in nets):
            yield (path, "admin access open to 0.0.0.0/0 is forbidden by level-3 protection",
                   "name the management network or bastion range admins come from")
    settings = region.spec.region
    collectors = [n for n, s in region.services.items() if isinstance(s, Collector)]
    if collectors and not settings.admin_sources:
        yield (("region", "admin_sources"),
               f"the firewall of collector {collectors[0]!r} drops SSH from everywhere when no admin source is "
               "set: the controller would lock itself out",
               "set region.admin_sources to the network the controller and admins come from, e.g. [local-dc.lan]")
    if collectors and 22 not in settings.admin_ports:
        yield (("region", "admin_ports"), "the collector firewall would drop SSH (port 22), which deploy needs",
               "add 22 to region.admin_ports")
    for key in ("log_host", "time_source"):
        value = getattr(settings, key)
        if value is not None and value not in region.hosts:
            yield (("region", key), f"unknown host {value!r}", f"use one of: {', '.join(sorted(region.hosts))}")
    if settings.automation_account in region.spec.admins:
        yield (("admins", settings.automation_account),
               f"{settings.automation_account!r} is the automation account, not a person",
               "give the admin their own login name")
    if settings.kind != "lab":
        for name, admin in region.spec.admins.items():
            if not admin.ssh_keys:
                yield (("admins", name, "ssh_keys"), f"admin {name!r} has no ssh key",
                       "add the admin's public key (only lab regions get generated ones)")


def _cron_ok(expr: str) -> bool:
    fields = expr.split()
    if len(fields) != 5:
        return False
    limits = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    for field, (low, high) in zip(fields, limits, strict=True):
        for part in field.split(","):
            rng, _, step = part.partition("/")
            if step and not step.isdigit():
                return False
            if rng == "*":
                continue
            bounds = rng.split("-")
            if len(bounds) > 2 or not all(b.isdigit() and low <= int(b) <= high for b in bounds):
                return False
    return True


def _backups(region: Region) -> Iterator[Finding]:
    covered = set()
    for name, pol in region.backup_policies.items():
        base: PathKey = ("backup_policies", name)
        if pol.service not in region.services:
            yield (base + ("service",), f"unknown service {pol.service!r}",
                   f"use one of: {', '.join(region.services)}")
        covered.add(pol.service)
        if not _cron_ok(pol.schedule):
            yield (base + ("schedule",), f"{pol.schedule!r} is not a five-field cron expression",
                   "write minute hour day month weekday, e.g. \"30 1 * * *\"")
        yield from _host_ref(region, base + ("local_target", "host"), pol.local_target.host)
        svc = region.services.get(pol.service)
        if isinstance(svc, Pacs) and pol.local_target.host == svc.host:
            yield (base + ("local_target", "host"), f"the images of {pol.service} would be backed up onto "
                   f"their own host {svc.host}", "store the backup on the backup host (another machine)")
        if pol.offsite_target and region.bucket_service(pol.offsite_target.bucket) is None:
            yield (base + ("offsite_target", "bucket"), f"unknown bucket {pol.offsite_target.bucket!r}",
                   "name a bucket declared under an object_storage service")
        r = pol.retention
        if r.daily + r.weekly + r.monthly + r.yearly == 0:
            yield (base + ("retention",), "retention keeps no backup at all", "keep at least one daily copy")
    required = set(region.spec.region.require_backup_for)
    for name, svc in region.services.items():
        if svc.kind in required and name not in covered:
            yield (("services", name), f"{svc.kind} service {name!r} has no backup policy, "
                   "and the region requires one for this kind",
                   f"add a backup policy with `service: {name}` under backup_policies")


def _slos(region: Region) -> Iterator[Finding]:
    for name, slo in region.slos.items():
        if slo.service not in region.services:
            yield (("slos", name, "service"), f"SLO on unknown service {slo.service!r}",
                   f"use one of: {', '.join(region.services)}")


def _equipment(region: Region) -> Iterator[Finding]:
    """Bills of materials: every site and model named exists, server lines name the site's own
    hosts (each once), and what a site buys fits its racks and UPS."""
    catalogue = region.spec.hardware
    known = ", ".join(catalogue) or "(declare models under `hardware:` first)"
    for site_name, items in region.spec.equipment.items():
        base: PathKey = ("equipment", site_name)
        site = region.sites.get(site_name)
        if site is None:
            yield (base, f"unknown site {site_name!r}", f"use one of: {', '.join(region.sites)}")
            continue
        placed: dict[str, str] = {}
        for item_name, item in items.items():
            ipath = base + (item_name,)
            hw = catalogue.get(item.model)
            if hw is None:
                yield (ipath + ("model",), f"unknown hardware model {item.model!r}", f"use one of: {known}")
            elif item.hosts and hw.kind != "server":
                yield (ipath + ("model",), f"{item.model!r} is a {hw.kind}, not a server",
                       "a line that names hosts needs a hardware model of kind `server`")
            if item.hosts and item.quantity is not None and item.quantity != len(item.hosts):
                yield (ipath + ("quantity",), f"quantity {item.quantity} but {len(item.hosts)} host(s) named",
                       "drop `quantity`: a line naming hosts buys one server per host")
            for i, host in enumerate(item.hosts):
                if host not in site.hosts:
                    yield (ipath + ("hosts", i), f"host {host!r} is not in site {site_name!r}",
                           f"use one of: {', '.join(site.hosts) or '(the site has no hosts)'}")
                elif host in placed:
                    yield (ipath + ("hosts", i), f"host {host!r} is already the server of line {placed[host]!r}",
                           "name each host in one equipment line")
                else:
                    placed[host] = item_name
        load = region.site_load(site_name)
        if load["capacity_u"] and load["rack_units"] > load["capacity_u"]:
            yield (base, f"site {site_name} needs {load['rack_units']} rack units but its "
                   f"racks hold {load['capacity_u']}", "buy a larger rack or another one")
        if load["capacity_w"] and load["power_w"] > load["capacity_w"]:
            yield (base, f"site {site_name} draws {load['power_w']} W but its UPS "
                   f"delivers {load['capacity_w']} W", "size the UPS for the site's load, or add one")


def _oncall(region: Region) -> Iterator[Finding]:
    oncall = region.spec.oncall
    for name, group in oncall.groups.items():
        for index, person in enumerate(group.members):
            if person not in oncall.people:
                yield (("oncall", "groups", name, "members", index), f"on-call group {name!r} names unknown "
                       f"person {person!r}", f"add {person!r} under oncall.people, or use one of: "
                       f"{', '.join(oncall.people) or '(none declared)'}")
    for step_no, step in enumerate(oncall.escalation):
        for index, group_name in enumerate(step.notify):
            if group_name not in oncall.groups:
                yield (("oncall", "escalation", step_no, "notify", index), f"escalation step pages unknown "
                       f"group {group_name!r}", f"use one of: {', '.join(oncall.groups) or '(none declared)'}")
    if oncall.escalation and oncall.escalation[0].after_minutes != 0:
        yield (("oncall", "escalation", 0, "after_minutes"), "the first escalation step must page at once",
               "set its after_minutes to 0 (later steps escalate)")
    times = [s.after_minutes for s in oncall.escalation]
    if times != sorted(set(times)):
        yield (("oncall", "escalation"), "escalation steps must be in rising order of after_minutes, each once",
               "order the steps by after_minutes")
    for name, who in oncall.people.items():
        if who.phone and not oncall.webhook:
            yield (("oncall", "people", name, "phone"), f"{name} has a phone but the region has no webhook to "
                   "page it through", "add oncall.webhook.url (the SMS / IM gateway), or drop the phone")
        if who.email and not oncall.email:
            yield (("oncall", "people", name, "email"), f"{name} has an email but the region has no mail "
                   "server", "add oncall.email (smtp_server, from), or drop the email")
    if oncall.groups and not oncall.escalation:
        yield (("oncall", "escalation"), "on-call groups are declared but nobody is paged",
               "add an escalation step: [{after_minutes: 0, notify: [GROUP]}]")


def _proxies(region: Region) -> Iterator[Finding]:
    servers = {svc.server for svc in region.services.values() if isinstance(svc, Zabbix)}
    for site_name, site in region.sites.items():
        proxy = site.monitoring_proxy
        if proxy is None:
            continue
        path: PathKey = ("sites", site_name, "monitoring_proxy")
        if proxy.host not in site.hosts:
            yield (path + ("host",), f"host {proxy.host!r} is not a host of site {site_name!r}",
                   f"a site's proxy runs on the site itself: use one of {', '.join(site.hosts) or '(no hosts)'}")
        if not servers:
            yield (path, "a Zabbix proxy needs the region's Zabbix server, and no zabbix service is declared",
                   "declare a `kind: zabbix` service, or remove monitoring_proxy")
        elif any(region.hosts[s].site_name == site_name for s in servers if s in region.hosts):
            yield (path, f"site {site_name!r} holds the Zabbix server: its hosts need no proxy",
                   "remove monitoring_proxy from this site; proxies are for sites behind a line")
