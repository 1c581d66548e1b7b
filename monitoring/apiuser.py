"""Least privilege for the sync itself: a dedicated API user whose role allows only the API
methods hcops calls, and a token that expires and that the sync rotates.

The first apply runs with the token the `zabbix_server` role made for Admin (secret
`zabbix-api-token`). It creates, as desired objects like any other (owned, diffed, pruned):

- role `hcops/<region>/sync`: frontend off, API on in allow-list mode with `SYNC_METHODS`
  (a Super admin *type*, because Zabbix 6.0 lets only that type manage users, user groups,
  roles, media types, actions and proxies, which on-call and remote sites need; everything else the API offers is
  refused to it: settings, scripts, authentication, ...);
- user group `hcops/<region>/sync` (frontend access disabled) and user `hcops-<region>-sync`.

After each apply `ensure_sync_token` gives that user a token that expires in TOKEN_DAYS days,
stored atomically as secret `zabbix-sync-token` (saved as pending before it is generated, so a
lost answer never leaves a token nobody knows), and renews it once fewer than RENEW_DAYS are
left, deleting the old one. `resolve_connection` prefers this token to Admin's.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from infra.state import SecretStore
from inventories.model import Region
from monitoring.client import SYNC_TOKEN_SECRET, ZabbixClient
from monitoring.objects import Obj, sla_prefix

TOKEN_DAYS = 30
RENEW_DAYS = 7
SYNC_METHODS = (
    "action.*", "alert.get", "event.get", "history.get", "host.*", "hostgroup.*", "hostinterface.*", "httptest.*",
    "item.*", "maintenance.*", "mediatype.*", "problem.get", "proxy.*", "role.*", "service.*", "sla.*",
    "template.get", "token.*", "trend.get", "trigger.*", "user.*", "usergroup.*",
)
"""Every API method family `monitoring` calls (user.* for on-call users and checkAuthentication;
proxy.* for remote sites' proxies, which Zabbix 6.0 also lets only the Super admin type manage)."""


def sync_role(region: str) -> str:
    return f"{sla_prefix(region)}sync"


def sync_user(region: str) -> str:
    return f"hcops-{region}-sync"


def sync_objects(region: Region) -> Iterable[Obj]:
    name = region.name
    yield Obj("role", sync_role(name), {
        "name": sync_role(name), "type": "3", "ui.default_access": "0", "api.access": "1", "api.mode": "1",
        "api": tuple(sorted(SYNC_METHODS)), "actions.default_access": "0",
    })
    yield Obj("usergroup", sync_role(name), {
        "name": sync_role(name), "gui_access": "3", "users_status": "0", "rights": (),
    })
    yield Obj("user", sync_user(name), {
        "username": sync_user(name), "name": "hcops", "surname": f"sync ({name})", "role": sync_role(name),
        "groups": (sync_role(name),), "medias": (),
    })


@dataclass
class TokenState:
    action: str
    """"kept", "created" or "renewed" """
    expires_at: int


def ensure_sync_token(client: ZabbixClient, region: str, now: float | None = None) -> TokenState | None:
    """Give the sync user a valid, expiring token (see module doc); None when the user is absent."""
    users = client.call("user.get", {"output": ["userid"], "filter": {"username": sync_user(region)}})
    if not users:
        return None
    userid = users[0]["userid"]
    moment = int(now if now is not None else time.time())
    store = SecretStore(region)
    tokens = client.call("token.get", {"output": ["tokenid", "name", "expires_at", "status"],
                                       "userids": [userid]})
    valid = [t for t in tokens if t["status"] == "0" and int(t["expires_at"]) - moment > RENEW_DAYS * 86400]
    if valid and store.exists(SYNC_TOKEN_SECRET) and client.token_user(store.get(SYNC_TOKEN_SECRET, "token")) == userid:
        return TokenState("kept", max(int(t["expires_at"]) for t in valid))
    expires = moment + TOKEN_DAYS * 86400
    # Token names are unique per user: two applies within one second must not collide.
    created = client.call("token.create", {"name": f"hcops-sync-{moment}-{secrets.token_hex(4)}", "userid": userid,
                                           "expires_at": expires, "status": 0})
    tokenid = created["tokenids"][0]
    generated = client.call("token.generate", [tokenid])
    store.set(SYNC_TOKEN_SECRET, generated[0]["token"])  # atomic: the old token stays until this holds
    old = [t["tokenid"] for t in tokens if t["tokenid"] != tokenid]
    if old:
        client.call("token.delete", old)
    return TokenState("renewed" if tokens else "created", expires)
