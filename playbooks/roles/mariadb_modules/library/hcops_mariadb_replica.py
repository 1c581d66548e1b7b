#!/usr/bin/python
"""Ansible module: this MariaDB server replicates from a primary with GTID over verified TLS.

Reconfigures only when the running configuration differs (primary, user, TLS, GTID mode) or the
replica cannot authenticate; starts stopped threads; fails loudly when the SQL thread stopped on
an error (a broken replica needs a rebuild or a drill, not a silent restart).
"""

from __future__ import annotations

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.hcops_mariadb import SqlError, quote, run

DOCUMENTATION = r"""
module: hcops_mariadb_replica
short_description: Replicate from a primary with GTID (slave_pos) over TLS
options:
  primary_host: {description: primary address, required: true, type: str}
  primary_port: {description: primary port, type: int, default: 3306}
  user: {description: replication user, required: true, type: str}
  password: {description: replication password (never logged), required: true, type: str, no_log: true}
  ssl_ca: {description: CA file that signed the primary's certificate, required: true, type: str}
  connect_retry: {description: seconds between reconnects, type: int, default: 5}
  wait_seconds: {description: how long to wait for both threads to run, type: int, default: 60}
"""

AUTH_ERRORS = {"1045", "1236"}  # access denied; cannot read the binlog position asked for


def _status() -> dict[str, str] | None:
    rows = run("SHOW SLAVE STATUS")
    return rows[0] if rows else None


def _matches(st: dict[str, str], p: dict[str, object]) -> bool:
    return (st.get("Master_Host") == p["primary_host"] and st.get("Master_Port") == str(p["primary_port"])
            and st.get("Master_User") == p["user"] and st.get("Using_Gtid") == "Slave_Pos"
            and st.get("Master_SSL_Allowed") == "Yes" and st.get("Master_SSL_CA_File") == p["ssl_ca"]
            and st.get("Master_SSL_Verify_Server_Cert") == "Yes"
            and st.get("Last_IO_Errno", "0") not in AUTH_ERRORS)


def _running(st: dict[str, str] | None) -> bool:
    return bool(st) and st.get("Slave_IO_Running") == "Yes" and st.get("Slave_SQL_Running") == "Yes"  # type: ignore[union-attr]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "primary_host": {"type": "str", "required": True},
            "primary_port": {"type": "int", "default": 3306},
            "user": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "ssl_ca": {"type": "str", "required": True},
            "connect_retry": {"type": "int", "default": 5},
            "wait_seconds": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    p = module.params
    action = "none"
    try:
        st = _status()
        if st and _matches(st, p):
            if st.get("Slave_SQL_Running") != "Yes" and st.get("Last_SQL_Errno", "0") != "0":
                module.fail_json(msg=f"replication SQL thread stopped: {st.get('Last_SQL_Error')}",
                                 hint="rebuild the replica from a backup or run a drill; deploy does not skip events")
            if not _running(st):
                action = "start"
        else:
            action = "configure"
        if action != "none" and not module.check_mode:
            sql = []
            if action == "configure":
                sql += ["STOP SLAVE",
                        f"CHANGE MASTER TO MASTER_HOST={quote(p['primary_host'])}, "
                        f"MASTER_PORT={int(p['primary_port'])}, "
                        f"MASTER_USER={quote(p['user'])}, MASTER_PASSWORD={quote(p['password'])}, "
                        f"MASTER_SSL=1, MASTER_SSL_CA={quote(p['ssl_ca'])}, MASTER_SSL_VERIFY_SERVER_CERT=1, "
                        f"MASTER_CONNECT_RETRY={int(p['connect_retry'])}, MASTER_USE_GTID=slave_pos"]
            sql.append("START SLAVE")
            run(";\n".join(sql) + ";")
            deadline = time.monotonic() + p["wait_seconds"]
            st = _status()
            while not _running(st) and time.monotonic() < deadline:
                time.sleep(1)
                st = _status()
            if not _running(st):
                module.fail_json(msg="replication did not start: IO: "
                                 f"{(st or {}).get('Last_IO_Error')} SQL: {(st or {}).get('Last_SQL_Error')}")
    except SqlError as exc:
        module.fail_json(msg=f"replication: {exc}")
    module.exit_json(changed=action != "none", action=action,
                     gtid_io_pos=(st or {}).get("Gtid_IO_Pos"),
                     seconds_behind=(st or {}).get("Seconds_Behind_Master"))


if __name__ == "__main__":
    main()
