"""HostGroup: a site's instances with their ports, boot and data volumes, keypair and placement.

Every port carries the model's fixed address (hosts keep the addresses deploy, monitoring and
the county plans already know). Instances boot from a volume; all volumes use the side's
encrypted volume type. Hosts of an HA pair join their anti-affinity server group (created once
per side by the program, since a server group spans the side's project, not one site).
"""

from __future__ import annotations

import functools
import json

import pulumi
import pulumi_openstack as openstack

from infra.openstack.config import SideConfig
from infra.openstack.security import BaselineGroups, SecurityGroups
from infra.openstack.vpc import Vpc
from inventories.model import Region


def cloud_config(region: Region, host: str, public_key: str = "") -> str:
    """First-boot settings: the model's host name and the automation account (key only,
    passwordless sudo), root locked, as in the lab, so deploy connects the same way to a cloud
    host and a lab host."""
    user = region.spec.region.automation_account
    keys = f"    ssh_authorized_keys: [{json.dumps('restrict,pty ' + public_key.strip())}]\n" if public_key else ""
    return (
        "#cloud-config\n"
        f"hostname: {host}\n"
        f"fqdn: {host}.{region.spec.region.domain}\n"
        "disable_root: true\n"
        "ssh_pwauth: false\n"
        "users:\n"
        f"  - name: {user}\n"
        "    gecos: hcops automation (Ansible, hcops; no interactive use)\n"
        "    shell: /bin/bash\n"
        "    lock_passwd: true\n"
        '    sudo: "ALL=(ALL:ALL) NOPASSWD: ALL"\n'
        + keys
    )


def _user_data(region: Region, host: str, public_key: str | None) -> str:
    return cloud_config(region, host, public_key or "")


class HostGroup(pulumi.ComponentResource):
    instances: dict[str, openstack.compute.Instance]
    ports: dict[str, dict[str, openstack.networking.Port]]
    volumes: dict[str, list[openstack.blockstorage.Volume]]

    def __init__(self, name: str, region: Region, site: str, *, side: SideConfig, vpc: Vpc,
                 security: SecurityGroups, baseline: BaselineGroups, keypair: openstack.compute.Keypair,
                 server_groups: dict[str, openstack.compute.ServerGroup],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hcops:openstack:HostGroup", name, None, opts)
        self.instances, self.ports, self.volumes = {}, {}, {}
        invoke = pulumi.InvokeOutputOptions(parent=self)
        images: dict[str, pulumi.Output[str]] = {}
        flavors: dict[tuple[int, int], pulumi.Output[str]] = {}
        for host, spec in region.sites[site].hosts.items():
            ref = region.hosts[host]
            child = pulumi.ResourceOptions(parent=self)
            if spec.os not in images:
                images[spec.os] = openstack.images.get_image_output(
                    name=side.images[spec.os], most_recent=True, opts=invoke).id
            flavor_id: pulumi.Output[str] | None = None
            if not spec.flavor:
                assert spec.size is not None  # the schema requires a size or a flavor
                key = (spec.size.vcpu, spec.size.ram_gb)
                if key not in flavors:
                    flavors[key] = openstack.compute.get_flavor_output(
                        vcpus=key[0], ram=key[1] * 1024, opts=invoke).id
                flavor_id = flavors[key]
            primary = ref.primary_address
            nets = sorted(spec.addresses, key=lambda n: spec.addresses[n] != primary)
            self.ports[host] = {}
            for net in nets:
                self.ports[host][net] = openstack.networking.Port(
                    f"{host}-{net}", name=f"{host}-{net}", network_id=vpc.networks[net].id,
                    fixed_ips=[openstack.networking.PortFixedIpArgs(
                        subnet_id=vpc.subnets[net].id, ip_address=str(spec.addresses[net]))],
                    security_group_ids=[*security.for_host(host), *baseline.ids()], admin_state_up=True,
                    tags=[f"hcops-region={region.name}", f"hcops-host={host}"], opts=child)
            disks = list(spec.size.disks_gb) if spec.size else [side.boot_volume_gb]
            boot = openstack.blockstorage.Volume(
                f"{host}-boot", name=f"{host}-boot", size=disks[0], image_id=images[spec.os],
                volume_type=side.volume_type, metadata={"hcops-host": host, "hcops-use": "boot"}, opts=child)
            data = [openstack.blockstorage.Volume(
                f"{host}-data{i}", name=f"{host}-data{i}", size=gb, volume_type=side.volume_type,
                metadata={"hcops-host": host, "hcops-use": "data"}, opts=child)
                for i, gb in enumerate(disks[1:], start=1)]
            self.volumes[host] = [boot, *data]
            devices = [openstack.compute.InstanceBlockDeviceArgs(
                uuid=boot.id, source_type="volume", destination_type="volume", boot_index=0,
                delete_on_termination=False)]
            devices += [openstack.compute.InstanceBlockDeviceArgs(
                uuid=v.id, source_type="volume", destination_type="volume", boot_index=-1,
                delete_on_termination=False) for v in data]
            hints = ([openstack.compute.InstanceSchedulerHintArgs(group=server_groups[host].id)]
                     if host in server_groups else None)
            self.instances[host] = openstack.compute.Instance(
                host, name=host, key_pair=keypair.name, block_devices=devices, scheduler_hints=hints,
                networks=[openstack.compute.InstanceNetworkArgs(port=self.ports[host][n].id) for n in nets],
                metadata={"hcops-region": region.name, "hcops-site": site,
                          "hcops-roles": ",".join(region.host_roles(host))},
                user_data=keypair.public_key.apply(functools.partial(_user_data, region, host)),
                stop_before_destroy=True,
                flavor_id=flavor_id, flavor_name=spec.flavor, opts=child)
        self.register_outputs({"instance_ids": {h: i.id for h, i in self.instances.items()}})
