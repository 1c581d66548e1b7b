#!/usr/bin/python
"""Ansible module: a MariaDB account with its password, TLS requirement and exact privileges.

Idempotent: the password is compared by hash, privileges by parsing SHOW GRANTS, so a rerun with
the same model reports no change. Check mode reports what would change without changing it.

Every account it creates is recorded in `hcops_meta.accounts` (replicated like the account), so
`hcops_mariadb_prune` can drop the ones the model no longer declares and leave hand-made ones.

The password never reaches the server in clear: the module computes its mysql_native_password
hash on the host and sends `IDENTIFIED BY PASSWORD '<hash>'`, so the binary log (replicated, kept
for days) and the audit log hold the hash at most, and the binlog itself is encrypted at rest.
"""

from __future__ import annotations

import hashlib
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.hcops_mariadb import TRACK_SCHEMA, SqlError, is_tracked, quote, run

DOCUMENTATION = r"""
module: hcops_mariadb_user
short_description: Ensure a MariaDB account with password, REQUIRE SSL and exact privileges
options:
  name: {description: user name, required: true, type: str}
  host: {description: account host (address, address/netmask, localhost), required: true, type: str}
  password: {description: password (never logged), type: str, no_log: true}
  privileges:
    description: "list of OBJECT:PRIV[,PRIV], e.g. canary.*:ALL or *.*:REPLICATION SLAVE"
    type: list
    elements: str
    default: []
  require_ssl: {description: the account may only connect over TLS, type: bool, default: false}
  state: {description: present or absent, type: str, default: present, choices: [present, absent]}
  log_bin: {description: write the change to the binary log (false on replicas), type: bool, default: true}
"""

GRANT_RE = re.compile(r"^GRANT (.+?) ON (\S+) TO ")


def _object(obj: str) -> str:
    db, _, table = obj.partition(".")
    db = db.strip("`")
    table = table.strip("`")
    return ("*" if db == "*" else f"`{db}`") + "." + ("*" if table in ("*", "") else f"`{table}`")


def _privs(text: str) -> frozenset[str]:
    out = set()
    for raw in text.split(","):
        priv = " ".join(raw.split()).upper()
        out.add("ALL PRIVILEGES" if priv == "ALL" else priv)
    return frozenset(out)


def desired_grants(privileges: list[str]) -> dict[str, frozenset[str]]:
    grants: dict[str, frozenset[str]] = {}
    for item in privileges:
        obj, sep, privs = item.rpartition(":")
        if not sep or not obj:
            raise ValueError(f"privilege {item!r} is not OBJECT:PRIV[,PRIV]")
        grants[_object(obj)] = grants.get(_object(obj), frozenset()) | _privs(privs)
    return grants


def current_grants(rows: list[dict[str, str]]) -> dict[str, frozenset[str]]:
    grants: dict[str, frozenset[str]] = {}
    for row in rows:
        line = next(iter(row.values()))
        m = GRANT_RE.match(line)
        if not m:
            continue
        privs, obj = _privs(m.group(1)), _object(m.group(2))
        if privs == {"USAGE"}:
            continue
        grants[obj] = grants.get(obj, frozenset()) | privs
    return grants


def native_hash(password: str) -> str:
    """MariaDB's mysql_native_password hash: '*' + upper hex of SHA1(SHA1(password))."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()  # noqa: S324


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "host": {"type": "str", "required": True},
            "password": {"type": "str", "no_log": True},
            "privileges": {"type": "list", "elements": "str", "default": []},
            "require_ssl": {"type": "bool", "default": False},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "log_bin": {"type": "bool", "default": True},
        },
        required_if=[("state", "present", ["password"])],
        supports_check_mode=True,
    )
    p = module.params
    account = f"{quote(p['name'])}@{quote(p['host'])}"
    actions: list[str] = []
    statements: list[str] = []
    try:
        want = desired_grants(p["privileges"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    try:
        pw = quote(native_hash(p["password"] or ""))
        rows = run(f"SELECT authentication_string = {pw} AS pw_ok, ssl_type FROM mysql.user "  # noqa: S608
                   f"WHERE User={quote(p['name'])} AND Host={quote(p['host'])}")
        tracked = is_tracked(p["name"], p["host"])
        where = f"user={quote(p['name'])} AND host={quote(p['host'])}"
        if p["state"] == "absent":
            if rows:
                actions.append("drop")
                statements.append(f"DROP USER {account}")
            if tracked:
                statements.append(f"DELETE FROM hcops_meta.accounts WHERE {where}")  # noqa: S608
        else:
            tls = "REQUIRE SSL" if p["require_ssl"] else "REQUIRE NONE"
            if not rows:
                actions.append("create")
                statements.append(f"CREATE USER {account} IDENTIFIED BY PASSWORD {pw} {tls}")
                have: dict[str, frozenset[str]] = {}
            else:
                if rows[0]["pw_ok"] != "1":
                    actions.append("password")
                    statements.append(f"ALTER USER {account} IDENTIFIED BY PASSWORD {pw}")
                if (rows[0]["ssl_type"] == "ANY") != p["require_ssl"]:
                    actions.append("tls")
                    statements.append(f"ALTER USER {account} {tls}")
                have = current_grants(run(f"SHOW GRANTS FOR {account}"))
            if have != want:
                actions.append("privileges")
                if have:
                    statements.append(f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {account}")
                for obj, privs in sorted(want.items()):
                    statements.append(f"GRANT {', '.join(sorted(privs))} ON {obj} TO {account}")
            if not tracked:
                actions.append("track")
                statements += [*TRACK_SCHEMA, "INSERT IGNORE INTO hcops_meta.accounts (user, host) VALUES "  # noqa: S608
                               f"({quote(p['name'])}, {quote(p['host'])})"]
        if statements and not module.check_mode:
            run(";\n".join(statements) + ";", log_bin=p["log_bin"])
    except SqlError as exc:
        module.fail_json(msg=f"account {p['name']}@{p['host']}: {exc}")
    module.exit_json(changed=bool(actions), actions=actions, user=p["name"], host=p["host"],
                     account=f"{p['name']}@{p['host']}")


if __name__ == "__main__":
    main()
