"""Ansible inventory plugin: a region model directory as an inventory.

    # inventories/<region>/inventory.yml
    plugin: hcops_region

Groups: site_<site>, role_<role>, service_<service>, county_<county>, provider_<provider>,
mysql_primary, mysql_replica, and parents sites/roles/services/counties/providers. Host vars:
ansible_host (from the provisioned outputs when present, else the model), hcops_* facts; the
whole model as `hcops_model` on `all`. Invalid regions fail with every model error listed.
"""

from __future__ import annotations

import os
from typing import Any

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

from infra.state import read_db_primaries, read_outputs
from inventories.ansible_groups import build
from inventories.errors import HcopsError, RegionInvalid
from inventories.loader import load_region

DOCUMENTATION = r"""
name: hcops_region
short_description: hcops region model as inventory
description:
  - Reads the hcops region model in the directory of the inventory file and derives groups
    and host variables from it. Nothing is typed twice.
options:
  plugin:
    description: Marks this file as an hcops region inventory.
    required: true
    choices: ["hcops_region"]
  region:
    description: Region name or directory; default is the inventory file's directory.
    required: false
  use_outputs:
    description: Use provisioned outputs (addresses, SSH key) when the region has them.
    type: bool
    default: true
"""


class InventoryModule(BaseInventoryPlugin):  # type: ignore[misc]
    NAME = "hcops_region"

    def verify_file(self, path: str) -> bool:
        if not super().verify_file(path) or not path.endswith((".yml", ".yaml")):
            return False
        try:
            with open(path, encoding="utf-8") as fh:
                return any(line.strip() == "plugin: hcops_region" for line in fh)
        except OSError:
            return False

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        source = self.get_option("region") or os.path.dirname(os.path.abspath(path))
        try:
            region = load_region(source)
        except RegionInvalid as exc:
            raise AnsibleParserError(f"{exc.message}\n{exc.render()}") from None
        except HcopsError as exc:
            raise AnsibleParserError(f"{exc.message} ({exc.hint})") from None
        outputs = None
        primaries: dict[str, str] = {}
        if self.get_option("use_outputs"):
            try:
                outputs = read_outputs(region.name)
            except HcopsError:
                outputs = None  # not provisioned yet: model addresses are used
            try:
                primaries = read_db_primaries(region.name)
            except HcopsError as exc:
                raise AnsibleParserError(f"{exc.message} ({exc.hint})") from None
        inv = build(region, outputs, primaries)
        for group, hosts in inv.groups.items():
            self.inventory.add_group(group)
            for host in hosts:
                self.inventory.add_host(host, group=group)
        for parent, kids in inv.children.items():
            self.inventory.add_group(parent)
            for kid in kids:
                self.inventory.add_child(parent, kid)
        for host, hvars in inv.hostvars.items():
            for key, value in hvars.items():
                self.inventory.set_variable(host, key, value)
        for key, value in inv.group_vars["all"].items():
            self.inventory.set_variable("all", key, value)
