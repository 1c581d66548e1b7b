"""The region as Ansible sees it: groups and host variables, derived from the model only.

Kept apart from the Ansible plugin class so it is typed, unit-tested and reusable (deploy reads
the same groups to limit runs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from infra.state import RegionOutputs
from inventories.describe import summary
from inventories.model import ZABBIX_PROXY_PORT, Region
from inventories.probes import probe_targets, prober
from inventories.schema import Collector, MySQL

OS_FAMILY = {"debian12": "debian", "ubuntu22": "debian", "oraclelinux8": "redhat", "rhel8": "redhat",
             "rhel9": "redhat"}


def group_name(*parts: str) -> str:
    """Ansible group names are identifiers: `site`, `local-dc` -> `site_local_dc`."""
    return re.sub(r"[^a-z0-9_]", "_", "_".join(parts).lower())


@dataclass
class AnsibleInventory:
    groups: dict[str, list[str]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    hostvars: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_vars: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, group: str, host: str) -> None:
        members = self.groups.setdefault(group, [])
        if host not in members:
            members.append(host)


def current_primaries(region: Region, recorded: dict[str, str] | None) -> dict[str, str]:
    """The primary of each MySQL service: the one failover recorded if it is still a server of
    the service, else the model's."""
    out = {}
    for name, svc in region.services.items():
        if isinstance(svc, MySQL):
            got = (recorded or {}).get(name)
            out[name] = got if got in region.service_hosts(name) else svc.primary
    return out


def build(region: Region, outputs: RegionOutputs | None = None,
          primaries: dict[str, str] | None = None) -> AnsibleInventory:
    """`primaries`: what failover recorded (infra.state.read_db_primaries); deploy configures
    that server as the primary and the others, the model's primary included, as its replicas."""
    inv = AnsibleInventory()
    current = current_primaries(region, primaries)
    for name, ref in region.hosts.items():
        site = ref.site
        inv.add(group_name("site", ref.site_name), name)
        inv.add(group_name("provider", site.provider), name)
        if site.county:
            inv.add(group_name("county", site.county), name)
        # which roles may run here: Debian-only roles target `os_family_debian` (defect: apt and
        # pam-auth-update on an Oracle Linux host)
        inv.add(group_name("os", ref.spec.os), name)
        inv.add(group_name("os_family", OS_FAMILY[ref.spec.os]), name)
        for role in region.host_roles(name):
            inv.add(group_name("role", role), name)
        for svc_name in region.host_services(name):
            inv.add(group_name("service", svc_name), name)
        out = outputs.hosts.get(name) if outputs else None
        inv.hostvars[name] = {
            "ansible_host": str(out.ssh_address if out else ref.primary_address),
            "hcops_site": ref.site_name,
            "hcops_site_kind": site.kind,
            "hcops_county": site.county,
            "hcops_addresses": {n: str(a) for n, a in ref.spec.addresses.items()},
            "hcops_primary_address": str(ref.primary_address),
            "hcops_roles": region.host_roles(name),
            "hcops_services": region.host_services(name),
            "hcops_os": ref.spec.os,
        }
        if name in region.mysql_server_ids:
            inv.hostvars[name]["hcops_mysql_server_id"] = region.mysql_server_ids[name]
    _zabbix_proxies(region, inv)
    for svc_name, svc in region.services.items():
        if isinstance(svc, MySQL):
            inv.add("mysql_primary", current[svc_name])
            for rep in region.service_hosts(svc_name):
                if rep != current[svc_name]:
                    inv.add("mysql_replica", rep)
            for host in region.service_hosts(svc_name):
                inv.hostvars[host]["hcops_mysql_service"] = svc_name
        if isinstance(svc, Collector):  # the far end of a collector's tunnel runs the collector role too
            inv.add("collector_peer", svc.peer)
    found = prober(region)
    if found is not None and found.host in inv.hostvars:  # the canary role's prober runs there
        inv.add("canary_prober", found.host)
        inv.hostvars[found.host]["hcops_prober"] = {
            "canary": found.canary, "interval_s": found.interval_s,
            "targets": [t.as_dict() for t in probe_targets(region)]}
    # Parent groups so `--limit sites` or `-l roles` read naturally.
    for prefix in ("site", "role", "service", "county", "provider"):
        kids = sorted(g for g in inv.groups if g.startswith(prefix + "_"))
        if kids:
            inv.children[prefix + "s" if prefix != "county" else "counties"] = kids
    all_vars: dict[str, Any] = {"hcops_region": region.name, "hcops_region_dir": str(region.root),
                                "hcops_model": summary(region),
                                "hcops_db_primaries": current}
    if outputs:
        all_vars.update(_connection_vars(outputs))
        # sudo is how the automation account works on the region's hosts, not on this controller:
        # a task delegated to localhost (Mitogen's strategy reads become from the delegated host's
        # variables) must not inherit it from `all`
        become = all_vars.pop("ansible_become")
        for name in region.hosts:
            inv.hostvars[name]["ansible_become"] = become
    inv.group_vars["all"] = all_vars
    return inv


def _zabbix_proxies(region: Region, inv: AnsibleInventory) -> None:
    """Remote sites: the proxy host's settings, and every agent of the site pointed at it."""
    for proxy in region.zabbix_proxies.values():
        inv.add("zabbix_proxy", proxy.host)
        inv.hostvars[proxy.host]["hcops_zabbix_proxy"] = {
            "name": proxy.name, "site": proxy.site, "psk_identity": proxy.psk_identity,
            "psk_secret": proxy.psk_secret, "offline_buffer_h": proxy.spec.offline_buffer_h,
            "config_frequency_s": proxy.spec.config_frequency_s,
            "agent_networks": [str(n.cidr) for n in region.sites[proxy.site].networks.values()]}
        for host in region.sites[proxy.site].hosts:
            inv.hostvars[host]["hcops_zabbix_via"] = {"name": proxy.name, "address": str(proxy.address),
                                                      "port": ZABBIX_PROXY_PORT}


def _connection_vars(outputs: RegionOutputs) -> dict[str, Any]:
    """How Ansible reaches the provisioned hosts, from the provisioning outputs."""
    # The automation account logs in (key only; root cannot); every task runs as root via sudo.
    out: dict[str, Any] = {"ansible_user": outputs.ssh_user, "ansible_become": outputs.ssh_user != "root"}
    if outputs.known_hosts:  # host keys from provisioning, checked on every connection
        out["ansible_ssh_common_args"] = (f"-o UserKnownHostsFile={outputs.known_hosts} "
                                          "-o StrictHostKeyChecking=yes")
    if outputs.ssh_private_key:
        out["ansible_ssh_private_key_file"] = str(outputs.ssh_private_key)
    out["hcops_vips"] = {k: str(v) for k, v in outputs.vips.items()}
    if outputs.s3:
        out["hcops_s3"] = outputs.s3.model_dump(mode="json")
    return out
