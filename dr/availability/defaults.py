"""Documented defaults for availability by design, used where the model states nothing.

Figures are deliberately conservative, round numbers an operator can argue with and replace
in the model (`reliability: {mtbf_h, mttr_h}` on a host or a link):

| part | MTBF | MTTR | availability | why |
|---|---|---|---|---|
| host (VM or server) | 8760 h (1 a year) | 4 h | 99.954% | a reboot-class fault a year, fixed in a shift |
| dedicated line, one route | 2190 h (4 a year) | 4 h | 99.818% | carriers' 99.8% line SLAs; repaired on site |

Failover (the downtime each failure of an active member costs a redundant pair):

| pair | default | replaced by |
|---|---|---|
| nginx pair with a keepalived VIP | 10 s | - (VRRP advert 1 s, 3 missed adverts, plus the proxy's retries) |
| nginx pair without a VIP | 300 s | - (clients must be re-pointed by hand or DNS) |
| database primary + replicas | 1800 s | the longest measured RTO of a drill on the service (`dr/drills` journals) |
| other active/standby pair | 600 s | - |
"""

from __future__ import annotations

from inventories.schema import Reliability

HOST = Reliability(mtbf_h=8760, mttr_h=4)
LINE_ROUTE = Reliability(mtbf_h=2190, mttr_h=4)
FAILOVER_VIP_S = 10.0
FAILOVER_NO_VIP_S = 300.0
FAILOVER_DB_S = 1800.0  # a person is paged and runs `hcops failover` (no automatic promotion)
FAILOVER_OTHER_S = 600.0
# What `availability model` tries when a design misses its target.
AUTOMATED_DB_FAILOVER_S = 60.0
