#!/usr/bin/python
"""Ansible module: drop the MariaDB accounts hcops created that the model no longer declares.

Only accounts recorded in `hcops_meta.accounts` (by hcops_mariadb_user) are dropped: an account a
DBA made by hand is never touched, but it is named in `unmanaged` (and a warning) so that a
review sees it. System accounts (root, mysql, mariadb.sys, PUBLIC) are neither.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.hcops_mariadb import SqlError, quote, run, tracked_accounts

DOCUMENTATION = r"""
module: hcops_mariadb_prune
short_description: Drop hcops-created MariaDB accounts the model no longer declares
options:
  keep: {description: "accounts the model declares, as user@host", type: list, elements: str, required: true}
  log_bin: {description: write the change to the binary log (false on replicas), type: bool, default: true}
"""

SYSTEM = {"root", "mysql", "mariadb.sys", "PUBLIC", ""}


def parse_keep(entries: list[str]) -> set[tuple[str, str]]:
    """`user@host` strings as (user, host); the host part may itself hold no `@`, the user may."""
    bad = [a for a in entries if "@" not in a or not a.rsplit("@", 1)[0] or not a.rsplit("@", 1)[1]]
    if bad:
        raise ValueError(f"keep: every entry must be user@host, not {', '.join(map(repr, bad))}")
    return {(u, h) for u, h in (a.rsplit("@", 1) for a in entries)}


def main() -> None:
    module = AnsibleModule(
        argument_spec={"keep": {"type": "list", "elements": "str", "required": True},
                       "log_bin": {"type": "bool", "default": True}},
        supports_check_mode=True,
    )
    try:
        keep = parse_keep(module.params["keep"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    try:
        tracked = tracked_accounts()
        drop = sorted(tracked - keep)
        statements = []
        for user, host in drop:
            statements += [f"DROP USER IF EXISTS {quote(user)}@{quote(host)}",
                           f"DELETE FROM hcops_meta.accounts WHERE user={quote(user)} AND host={quote(host)}"]  # noqa: S608
        if statements and not module.check_mode:
            run(";\n".join(statements) + ";", log_bin=module.params["log_bin"])
        rows = run("SELECT User AS user, Host AS host FROM mysql.user WHERE is_role='N'")
    except SqlError as exc:
        module.fail_json(msg=f"pruning accounts: {exc}")
    unmanaged = sorted(f"{r['user']}@{r['host']}" for r in rows
                       if r["user"] not in SYSTEM and (r["user"], r["host"]) not in tracked | keep)
    for acct in unmanaged:
        module.warn(f"account {acct} was not made by hcops and is not in the model: review it")
    module.exit_json(changed=bool(drop), dropped=[f"{u}@{h}" for u, h in drop], unmanaged=unmanaged)


if __name__ == "__main__":
    main()
