"""Pulumi entry point: `pulumi up` in this directory builds the region named by `hcops:region`.

`hcops infra up` runs the same program through the Automation API; this file serves users who
drive the Pulumi CLI themselves (`pulumi config set hcops:region example-city`).
"""

from infra.openstack.program import pulumi_main

pulumi_main()
