"""Issue #9 defect 5: one VIP mechanism per provider. The nginx role runs keepalived only where
the model says keepalived holds the VIP (the lab), never beside Octavia on OpenStack.

The role's own defaults are evaluated by Ansible's templar with the variables the inventory
plugin gives each host (`inventories.ansible_groups.build`), as a play would see them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from inventories.ansible_groups import build
from inventories.loader import load_region
from tests.infra.conftest import OPENSTACK_LAB, copy_region

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = REPO / "playbooks" / "roles" / "nginx" / "defaults" / "main.yml"
TASKS = REPO / "playbooks" / "roles" / "nginx" / "tasks" / "main.yml"


def keepalived_for(region_dir: Path, host: str) -> bool:
    inv = build(load_region(str(region_dir)))
    defaults = {k: trust_as_template(v) if isinstance(v, str) else v
                for k, v in yaml.safe_load(DEFAULTS.read_text()).items()}
    variables = {**defaults, **inv.group_vars["all"], **inv.hostvars[host], "inventory_hostname": host}
    return bool(Templar(loader=DataLoader(), variables=variables).template(defaults["nginx_keepalived"]))


@pytest.mark.parametrize(("where", "keepalived"), [("lab", True), ("openstack", False)])
def test_keepalived_only_where_the_model_gives_it_the_vip(where: str, keepalived: bool, tmp_path: Path) -> None:
    region = REPO / "inventories" / "lab" if where == "lab" else copy_region("lab", tmp_path, OPENSTACK_LAB)
    assert [keepalived_for(region, h) for h in ("app1", "app2")] == [keepalived, keepalived]


def test_the_keepalived_tasks_are_guarded_by_the_decision() -> None:
    tasks = yaml.safe_load(TASKS.read_text())
    task = next(t for t in tasks if t.get("ansible.builtin.import_tasks") == "keepalived.yml")
    assert "nginx_keepalived | bool" in task["when"]
