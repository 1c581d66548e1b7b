#!/usr/bin/python
"""Ansible module: what mysql_secure_installation does, idempotently: no anonymous accounts, no
root account reachable from other hosts, no test database (and no grants on test_%)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.hcops_mariadb import SqlError, quote, run

DOCUMENTATION = r"""
module: hcops_mariadb_harden
short_description: Remove anonymous users, remote root and the test database
options:
  log_bin: {description: write the change to the binary log (false on replicas), type: bool, default: true}
"""

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def main() -> None:
    module = AnsibleModule(argument_spec={"log_bin": {"type": "bool", "default": True}},
                           supports_check_mode=True)
    removed: list[str] = []
    statements: list[str] = []
    try:
        for row in run("SELECT User AS u, Host AS h FROM mysql.user WHERE User='' OR "  # noqa: S608
                       f"(User='root' AND Host NOT IN ({', '.join(quote(h) for h in LOCAL_HOSTS)}))"):
            removed.append(f"account '{row['u']}'@'{row['h']}'")
            statements.append(f"DROP USER {quote(row['u'])}@{quote(row['h'])}")
        if run("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='test'"):
            removed.append("database test")
            statements.append("DROP DATABASE test")
        if run("SELECT Db FROM mysql.db WHERE Db='test' OR Db='test\\\\_%'"):
            removed.append("grants on test databases")
            statements.append("DELETE FROM mysql.db WHERE Db='test' OR Db='test\\\\_%'")
            statements.append("FLUSH PRIVILEGES")
        if statements and not module.check_mode:
            run(";\n".join(statements) + ";", log_bin=module.params["log_bin"])
    except SqlError as exc:
        module.fail_json(msg=f"hardening: {exc}")
    module.exit_json(changed=bool(removed), removed=removed)


if __name__ == "__main__":
    main()
