#!/usr/bin/python
"""Ansible module: a MariaDB database with its character set, idempotent and check-mode aware."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.hcops_mariadb import SqlError, ident, quote, run

DOCUMENTATION = r"""
module: hcops_mariadb_db
short_description: Ensure a MariaDB database exists with a character set, or is absent
options:
  name: {description: database name, required: true, type: str}
  encoding: {description: character set, type: str, default: utf8mb4}
  collation: {description: collation, type: str, default: utf8mb4_unicode_ci}
  state: {description: present or absent, type: str, default: present, choices: [present, absent]}
  log_bin: {description: write the change to the binary log (false on replicas), type: bool, default: true}
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "encoding": {"type": "str", "default": "utf8mb4"},
            "collation": {"type": "str", "default": "utf8mb4_unicode_ci"},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "log_bin": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        rows = run("SELECT DEFAULT_CHARACTER_SET_NAME AS cs, DEFAULT_COLLATION_NAME AS co "  # noqa: S608 (quoted)
                   f"FROM information_schema.SCHEMATA WHERE SCHEMA_NAME={quote(p['name'])}")
        sql = ""
        if p["state"] == "absent":
            if rows:
                sql = f"DROP DATABASE {ident(p['name'])}"
        elif not rows:
            sql = f"CREATE DATABASE {ident(p['name'])} CHARACTER SET {p['encoding']} COLLATE {p['collation']}"
        elif (rows[0]["cs"], rows[0]["co"]) != (p["encoding"], p["collation"]):
            sql = f"ALTER DATABASE {ident(p['name'])} CHARACTER SET {p['encoding']} COLLATE {p['collation']}"
        if sql and not module.check_mode:
            run(sql, log_bin=p["log_bin"])
    except SqlError as exc:
        module.fail_json(msg=f"database {p['name']}: {exc}")
    module.exit_json(changed=bool(sql), statement=sql)


if __name__ == "__main__":
    main()
