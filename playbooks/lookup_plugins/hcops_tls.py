"""Lookup plugin: a TLS certificate for a host, signed by the region's CA on the controller.

    lookup('hcops_tls', 'mysql-db1', sans=['10.231.1.11', 'db1'])
      -> {'cert': PEM, 'key': PEM, 'ca': PEM}
    lookup('hcops_tls', 'ca', ca_only=true) -> {'ca': PEM}    # for hosts that only verify

Issued once and reused while the SANs stay the same, so reruns change nothing. Tasks that copy
the key set `no_log: true`. In a --check run nothing is issued: a certificate that would be is
returned as NOT_ISSUED text, and the task that writes it reports the change.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from infra.deploy_pki import RegionPKI

DOCUMENTATION = r"""
name: hcops_tls
short_description: region CA-signed certificates of hcops
description:
  - Returns a dict with cert, key and ca (PEM) for the named certificate.
options:
  _terms:
    description: certificate names
    required: true
  sans:
    description: DNS names and IP addresses the certificate is valid for
    type: list
    elements: str
  ca_only:
    description: return only the region CA certificate
    type: bool
    default: false
  region:
    description: region name; default the hcops_region variable
"""


class LookupModule(LookupBase):  # type: ignore[misc]
    def run(self, terms: list[str], variables: dict[str, Any] | None = None,
            **kwargs: Any) -> list[dict[str, str]]:
        self.set_options(var_options=variables, direct=kwargs)
        region = self.get_option("region") or (variables or {}).get("hcops_region")
        if not region:
            raise AnsibleLookupError("hcops_tls: no region (set hcops_region or pass region=)")
        pki = RegionPKI(region)
        create = not bool((variables or {}).get("ansible_check_mode"))  # --check creates nothing here
        if self.get_option("ca_only"):
            return [{"ca": pki.ca_pem(create)} for _ in terms]
        sans = [str(s) for s in self.get_option("sans") or []]
        if not sans:
            raise AnsibleLookupError("hcops_tls: sans must name at least one address or DNS name")
        out = []
        for name in terms:
            try:
                issued = pki.issue(name, sans, create)
            except (ValueError, OSError) as exc:
                raise AnsibleLookupError(f"hcops_tls {name!r}: {exc}") from None
            out.append({"cert": issued.cert, "key": issued.key, "ca": issued.ca})
        return out
