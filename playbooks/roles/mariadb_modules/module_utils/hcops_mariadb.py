"""Talk to the local MariaDB server as root through its unix socket, with the `mariadb` client.

Why the CLI and not a Python driver: Debian's MariaDB root authenticates by unix_socket, the
client is always installed with the server, and no extra package is needed on the host. SQL goes
through stdin, so passwords never appear in a process list.
"""

from __future__ import annotations

import subprocess

CLIENT = ["mariadb", "--batch", "--raw", "--protocol=socket"]


class SqlError(Exception):
    pass


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def ident(name: str) -> str:
    return "`" + str(name).replace("`", "``") + "`"


def run(sql: str, log_bin: bool = True) -> list[dict[str, str]]:
    """Run statements; return the rows of the last result set as dicts."""
    if not log_bin:
        sql = "SET SESSION sql_log_bin=0;\n" + sql
    proc = subprocess.run(CLIENT, input=sql, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SqlError(proc.stderr.strip() or f"mariadb exited with {proc.returncode}")
    lines = proc.stdout.splitlines()
    if not lines:
        return []
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:]]


# The accounts hcops created, so that one the model drops can be told from one a DBA made by hand.
TRACK_SCHEMA = (
    "CREATE DATABASE IF NOT EXISTS hcops_meta",
    "CREATE TABLE IF NOT EXISTS hcops_meta.accounts (user VARCHAR(128) NOT NULL, host VARCHAR(255) NOT NULL, "
    "PRIMARY KEY (user, host)) ENGINE=InnoDB",
)


def tracked_accounts() -> set[tuple[str, str]]:
    exists = run("SELECT COUNT(*) AS n FROM information_schema.tables "
                 "WHERE table_schema='hcops_meta' AND table_name='accounts'")
    if not exists or exists[0]["n"] == "0":
        return set()
    return {(r["user"], r["host"]) for r in run("SELECT user, host FROM hcops_meta.accounts")}


def is_tracked(user: str, host: str) -> bool:
    return (user, host) in tracked_accounts()
