"""Lookup plugin: a named admin's public keys and TOTP seed (hex), from the controller.

    lookup('hcops_admin', 'zhang-wei', keys=[...], lab=true)   # {'keys': [...], 'totp_hex': '...'}

In check mode nothing is generated: a missing lab key or seed comes back empty, and the task
that would install it reports a change instead.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from infra.admins import credentials

DOCUMENTATION = r"""
name: hcops_admin
short_description: keys and TOTP seed of an hcops region's named admin
description:
  - Returns the admin's public keys (from the model, or a key the controller makes for a lab
    region) and the TOTP seed pam_oath checks, created on first use outside check mode.
options:
  _terms:
    description: admin login names
    required: true
  keys:
    description: the admin's public keys from the model
    type: list
    default: []
  lab:
    description: the region is a lab (generate a key when the model has none)
    type: bool
    default: false
  region:
    description: region name; default the hcops_region variable
"""


class LookupModule(LookupBase):  # type: ignore[misc]
    def run(self, terms: list[str], variables: dict[str, Any] | None = None,
            **kwargs: Any) -> list[dict[str, Any]]:
        self.set_options(var_options=variables, direct=kwargs)
        region = self.get_option("region") or (variables or {}).get("hcops_region")
        if not region:
            raise AnsibleLookupError("hcops_admin: no region (set hcops_region or pass region=)")
        create = not bool((variables or {}).get("ansible_check_mode"))
        out = []
        for name in terms:
            try:
                cred = credentials(region, name, list(self.get_option("keys") or []),
                                   lab=bool(self.get_option("lab")), create=create)
            except (ValueError, OSError) as exc:
                raise AnsibleLookupError(f"hcops_admin {name!r}: {exc}") from None
            out.append({"keys": cred.keys, "totp_hex": cred.totp_hex})
        return out
