"""HostGroup: a site's instances with their ports, boot and data volumes, keypair and placement.

Every port carries the model's fixed address (hosts keep the addresses deploy, monitoring and
the county plans already know). Instances boot from a volume; all volumes use the side's
encrypted volume type. Hosts of an HA pair join their anti-affinity server group (created once
per side by the program, since a server group spans the side's project, not one site).
"""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack

from infra.openstack.config import ProgramSettingsError, SideConfig
from infra.openstack.security import BaselineGroups, SecurityGroups
from infra.openstack.topology import transit_hosts, vrrp_address_pairs
from infra.openstack.vpc import Vpc
from inventories.model import Region
from inventories.schema import Host


def cloud_config(region: Region, host: str) -> str:
    """First-boot settings, read once: the model's host name, root's SSH login locked, and the
    keypair's key given to the region's automation account with sudo (level-3 8.1.4.1: no shared
    root login; deploy connects as that account and becomes root per task, as on lab hosts)."""
    return (
        "#cloud-config\n"
        f"hostname: {host}\n"
        f"fqdn: {host}.{region.spec.region.domain}\n"
        "disable_root: true\n"
        "ssh_pwauth: false\n"
        "system_info:\n"
        "  default_user:\n"
        f"    name: {region.spec.region.automation_account}\n"
        "    lock_passwd: true\n"
        "    shell: /bin/bash\n"
        '    sudo: "ALL=(ALL) NOPASSWD:ALL"\n'
    )


def flavor_key(vcpu: int, ram_gb: int) -> str:
    """How a size is named in a side's `flavors` map: `48c112g` is 48 vCPU, 112 GB RAM."""
    return f"{vcpu}c{ram_gb}g"


def unmapped_sizes(region: Region, site_hosts: dict[str, Host], side: SideConfig) -> dict[str, list[str]]:
    """Sizes the side's flavor map does not name (key -> hosts), when the side maps sizes."""
    out: dict[str, list[str]] = {}
    if side.flavor_lookup != "map":
        return out
    for host, spec in site_hosts.items():
        if spec.flavor or spec.size is None:
            continue
        key = flavor_key(spec.size.vcpu, spec.size.ram_gb)
        if key not in side.flavors:
            out.setdefault(key, []).append(host)
    return out


class HostGroup(pulumi.ComponentResource):
    """A site's hosts. Chosen so that a replacement can succeed on a real cloud:

    - the boot volume ignores later changes of its image (a newer image never replaces a
      running host's disk), and an image may be pinned by id per side (`imageIds`);
    - cloud-init `user_data` is read once at first boot: a change must not replace the server;
    - data disks are separate `VolumeAttach`es, not block devices (a block-device change
      replaces the server while the volume is still attached), and are kept on delete
      (`retain_on_delete`: a 2 TB database or an 8 TB backup volume outlives a destroy);
    - ports and instances are deleted before their replacement is created, since the new one
      needs the same fixed address (port) or the same port (instance).
    """

    instances: dict[str, openstack.compute.Instance]
    ports: dict[str, dict[str, openstack.networking.Port]]
    volumes: dict[str, list[openstack.blockstorage.Volume]]
    attachments: dict[str, list[openstack.compute.VolumeAttach]]

    def __init__(self, name: str, region: Region, site: str, *, side: SideConfig, vpc: Vpc,
                 security: SecurityGroups, baseline: BaselineGroups, keypair: openstack.compute.Keypair,
                 server_groups: dict[str, openstack.compute.ServerGroup],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hcops:openstack:HostGroup", name, None, opts)
        self.instances, self.ports, self.volumes, self.attachments = {}, {}, {}, {}
        invoke = pulumi.InvokeOutputOptions(parent=self)
        site_hosts = region.sites[site].hosts
        missing = unmapped_sizes(region, site_hosts, side)
        if missing:
            raise ProgramSettingsError(
                f"site {site}: no flavor for size(s) "
                + "; ".join(f"{k.replace('c', ' vCPU/', 1).replace('g', ' GB')} ({', '.join(h)})"
                            for k, h in sorted(missing.items())),
                f"map each size to a flavor of the cloud: pulumi config set --path "
                f"'hcops:{side.key}.flavors.{next(iter(sorted(missing)))}' FLAVOR (or give the host `flavor:` "
                "in the model)")
        transit = transit_hosts(region, vpc.routes)
        images: dict[str, pulumi.Input[str]] = {}
        flavors: dict[tuple[int, int], pulumi.Output[str]] = {}
        for host, spec in site_hosts.items():
            ref = region.hosts[host]
            if spec.os not in images:
                pinned = side.image_ids.get(spec.os)
                images[spec.os] = pinned or openstack.images.get_image_output(
                    name=side.images[spec.os], most_recent=True, opts=invoke).id
            flavor_id: pulumi.Output[str] | None = None
            flavor_name = spec.flavor
            if not flavor_name:
                assert spec.size is not None  # the schema requires a size or a flavor
                key = (spec.size.vcpu, spec.size.ram_gb)
                if side.flavor_lookup == "map":
                    flavor_name = side.flavors[flavor_key(*key)]
                else:
                    if key not in flavors:
                        flavors[key] = openstack.compute.get_flavor_output(
                            vcpus=key[0], ram=key[1] * 1024, opts=invoke).id
                    flavor_id = flavors[key]
            primary = ref.primary_address
            nets = sorted(spec.addresses, key=lambda n: spec.addresses[n] != primary)
            self.ports[host] = {}
            pairs = vrrp_address_pairs(region, host)
            carried = transit.get(host)
            if carried:  # a host forwarding between sites answers for the remote networks
                home = next(n for n in nets if spec.addresses[n] == primary)
                pairs.setdefault(home, []).extend(str(c) for c in carried)
            for net in nets:
                self.ports[host][net] = openstack.networking.Port(
                    f"{host}-{net}", name=f"{host}-{net}", network_id=vpc.networks[net],
                    fixed_ips=[openstack.networking.PortFixedIpArgs(
                        subnet_id=vpc.subnets[net], ip_address=str(spec.addresses[net]))],
                    allowed_address_pairs=[openstack.networking.PortAllowedAddressPairArgs(ip_address=a)
                                           for a in pairs.get(net, [])] or None,
                    security_group_ids=[*security.for_host(host), *baseline.ids()], admin_state_up=True,
                    tags=[f"hcops-region={region.name}", f"hcops-host={host}"],
                    opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True,
                                                depends_on=vpc.interfaces_of(net)))
            zone = spec.availability_zone
            disks = list(spec.size.disks_gb) if spec.size else [side.boot_volume_gb]
            boot = openstack.blockstorage.Volume(
                f"{host}-boot", name=f"{host}-boot", size=disks[0], image_id=images[spec.os],
                volume_type=side.volume_type, availability_zone=zone,
                metadata={"hcops-host": host, "hcops-use": "boot"},
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["imageId"]))
            data = [openstack.blockstorage.Volume(
                f"{host}-data{i}", name=f"{host}-data{i}", size=gb, volume_type=side.volume_type,
                availability_zone=zone, metadata={"hcops-host": host, "hcops-use": "data"},
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True))
                for i, gb in enumerate(disks[1:], start=1)]
            self.volumes[host] = [boot, *data]
            devices = [openstack.compute.InstanceBlockDeviceArgs(
                uuid=boot.id, source_type="volume", destination_type="volume", boot_index=0,
                delete_on_termination=False)]
            hints = ([openstack.compute.InstanceSchedulerHintArgs(group=server_groups[host].id)]
                     if host in server_groups else None)
            self.instances[host] = openstack.compute.Instance(
                host, name=host, key_pair=keypair.name, block_devices=devices, scheduler_hints=hints,
                availability_zone=zone,
                networks=[openstack.compute.InstanceNetworkArgs(port=self.ports[host][n].id) for n in nets],
                metadata={"hcops-region": region.name, "hcops-site": site,
                          "hcops-roles": ",".join(region.host_roles(host))},
                user_data=cloud_config(region, host), stop_before_destroy=True,
                flavor_id=flavor_id, flavor_name=flavor_name,
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True,
                                            ignore_changes=["userData"]))
            # One attachment after the other: Nova serialises attachments to one server anyway,
            # and a fixed order keeps device names stable across runs.
            previous: list[pulumi.Resource] = []
            self.attachments[host] = []
            for i, vol in enumerate(data, start=1):
                attach = openstack.compute.VolumeAttach(
                    f"{host}-data{i}", instance_id=self.instances[host].id, volume_id=vol.id,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=previous))
                self.attachments[host].append(attach)
                previous = [attach]
        self.register_outputs({"instance_ids": {h: i.id for h, i in self.instances.items()}})
