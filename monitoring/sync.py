"""Plan and apply in one place, for the CLI, the tests and the benchmark alike."""

from __future__ import annotations

from dataclasses import dataclass

from inventories.model import Region
from monitoring.actual import Lookups, actual_state
from monitoring.apiuser import ensure_sync_token
from monitoring.apply import ApplyResult, apply_plan
from monitoring.client import ZabbixClient
from monitoring.desired import desired_state, templates_needed
from monitoring.diff import Plan, make_plan
from monitoring.ledger import Ledger
from monitoring.objects import State


@dataclass
class Planned:
    plan: Plan
    actual: State
    lookups: Lookups
    ledger: Ledger


def plan_region(client: ZabbixClient, region: Region, rotate_psk: bool = False, *, adopt: bool = False,
                enable_disabled: bool = False) -> Planned:
    desired = desired_state(region)
    ledger = Ledger(region.name)
    actual, lookups = actual_state(client, region.name, desired, templates_needed(desired), ledger=ledger,
                                   adopt=adopt, enable_disabled=enable_disabled)
    return Planned(make_plan(region.name, desired, actual, lookups, rotate_psk=rotate_psk), actual, lookups,
                   ledger)


def apply_planned(client: ZabbixClient, planned: Planned, allow_prune: bool = False) -> ApplyResult:
    result = apply_plan(client, planned.plan, planned.actual, planned.lookups, ledger=planned.ledger,
                        allow_prune=allow_prune)
    result.token = ensure_sync_token(client, planned.plan.region)
    return result
