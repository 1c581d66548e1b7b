"""Lookup plugin: a host's WireGuard key pair, generated once on the controller.

    lookup('hcops_wireguard', 'collector1') -> {'private': base64, 'public': base64}

The private half lives in the region's secret store as `wireguard-<host>`; tasks that write it
set `no_log: true`. In a --check run a missing pair is not generated (NOT_ISSUED text).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from infra.deploy_pki import wireguard_keys

DOCUMENTATION = r"""
name: hcops_wireguard
short_description: WireGuard key pairs of hcops hosts
description:
  - Returns a dict with private and public keys (base64) for each named host.
options:
  _terms:
    description: host names
    required: true
  region:
    description: region name; default the hcops_region variable
"""


class LookupModule(LookupBase):  # type: ignore[misc]
    def run(self, terms: list[str], variables: dict[str, Any] | None = None,
            **kwargs: Any) -> list[dict[str, str]]:
        self.set_options(var_options=variables, direct=kwargs)
        region = self.get_option("region") or (variables or {}).get("hcops_region")
        if not region:
            raise AnsibleLookupError("hcops_wireguard: no region (set hcops_region or pass region=)")
        create = not bool((variables or {}).get("ansible_check_mode"))  # --check creates nothing here
        out = []
        for host in terms:
            try:
                keys = wireguard_keys(region, host, create)
            except (ValueError, OSError) as exc:
                raise AnsibleLookupError(f"hcops_wireguard {host!r}: {exc}") from None
            out.append({"private": keys.private, "public": keys.public})
        return out
