"""Lookup plugin: the region's generated secrets, from the controller's state dir.

    lookup('hcops_secret', 'mysql-replication')                  # password, created on first use
    lookup('hcops_secret', 'zabbix-psk-db1', kind='psk')         # 64 hex digits
    lookup('hcops_secret', 'wireguard-psk-frontline', kind='psk', encoding='base64')
    lookup('hcops_secret', 'zabbix-api-token', create=false)     # '' when never stored
    lookup('hcops_secret', 'zabbix-api-token', path=true)        # where it is (to write it)

The region is `hcops_region` (set by the hcops_region inventory plugin). Values never enter the
repo; tasks that pass them set `no_log: true`.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from infra.deploy_pki import read_secret, secret
from infra.state import SecretStore

DOCUMENTATION = r"""
name: hcops_secret
short_description: generated per-region secrets of hcops
description:
  - Returns a secret from the region's secret store (0600 files in the hcops state dir),
    generating it on first use.
options:
  _terms:
    description: secret names
    required: true
  kind:
    description: password, psk (hex) or token
    default: password
  encoding:
    description: raw, or base64 (hex psk as base64, for WireGuard)
    default: raw
  create:
    description: generate when missing; when false a missing secret is an empty string
    type: bool
    default: true
  path:
    description: return the file path instead of the value
    type: bool
    default: false
  region:
    description: region name; default the hcops_region variable
"""


class LookupModule(LookupBase):  # type: ignore[misc]
    def run(self, terms: list[str], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        self.set_options(var_options=variables, direct=kwargs)
        region = self.get_option("region") or (variables or {}).get("hcops_region")
        if not region:
            raise AnsibleLookupError("hcops_secret: no region (set hcops_region or pass region=)")
        check_mode = bool((variables or {}).get("ansible_check_mode"))
        out: list[str] = []
        for name in terms:
            try:
                if check_mode and not self.get_option("path") and not SecretStore(region).exists(name):
                    # --check creates nothing on the controller: the task reports the change instead
                    out.append("" if not self.get_option("create") else "(not generated in check mode)")
                elif self.get_option("path"):
                    out.append(str(SecretStore(region)._path(name)))
                elif self.get_option("create"):
                    out.append(secret(region, name, self.get_option("kind"), self.get_option("encoding")))
                else:
                    out.append(read_secret(region, name) or "")
            except (ValueError, OSError) as exc:
                raise AnsibleLookupError(f"hcops_secret {name!r}: {exc}") from None
        return out
