"""Oracle role: templates render as the installer expects; on a lab host the prerequisites are
applied and a run without media stops with a message saying what to provide. (Oracle Database
itself needs Oracle Linux or RHEL, so the install is not run here.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.deploy import run_deploy
from tests.fixtures.deploy import Deploys, playbooks_busy
from tests.fixtures.lab import Lab

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def test_oracle_templates_render(tmp_path: Path) -> None:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "playbooks" / "ansible.cfg"))
    proc = subprocess.run([PLAYBOOK, "-i", "localhost,", str(HERE / "oracle_render.yml"), "-e", f"out_dir={tmp_path}",
                           "-e", "oracle_apply_sysctl=false"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rsp = dict(line.split("=", 1) for line in (tmp_path / "db_install.rsp").read_text().splitlines()
               if "=" in line and not line.startswith("#"))
    assert rsp["oracle.install.option"] == "INSTALL_DB_SWONLY"
    assert rsp["ORACLE_HOME"] == "/u01/app/oracle/product/19.0.0/dbhome_1"
    assert rsp["ORACLE_BASE"] == "/u01/app/oracle"
    assert rsp["INVENTORY_LOCATION"] == "/u01/app/oraInventory"
    assert rsp["oracle.install.db.OSDBA_GROUP"] == "dba"
    sysctl = (tmp_path / "97-oracle.conf").read_text()
    assert "kernel.sem = 250 32000 100 128" in sysctl and "fs.aio-max-nr = 1048576" in sysctl
    assert "oracle hard nofile 65536" in (tmp_path / "oracle-limits.conf").read_text()


@pytest.mark.lab
@pytest.mark.slow
def test_oracle_prerequisites_on_a_lab_host_and_clear_failure_without_media(deployed: Deploys, lab: Lab) -> None:
    playbook = HERE / "oracle_prereq.yml"
    try:
        with playbooks_busy():
            lines: list[str] = []
            refused = run_deploy(lab.region, playbook=playbook, echo=lines.append,
                                 extra_vars=["oracle_test_host=backup1"])
            assert refused.exit_code() == 1
            assert "supported on Oracle Linux and RHEL only" in "\n".join(lines)

            lines = []
            result = run_deploy(lab.region, playbook=playbook, echo=lines.append,
                                extra_vars=["oracle_test_host=backup1", "oracle_allow_unsupported_os=true"])
        out = "\n".join(lines)
        assert result.exit_code() == 1 and result.recap["backup1"].failed == 1
        assert "No Oracle installation media" in out and "oracle_media_dir" in out
        probe = lab.run("backup1", "id oracle; cat /etc/security/limits.d/90-oracle.conf; "
                        "grep -c = /etc/sysctl.d/97-oracle.conf; stat -c '%U:%G %a' /u01/app/oraInventory; "
                        "grep ^ORACLE_HOME= /u01/stage/db_install.rsp").stdout
        assert "uid=54321(oracle) gid=54321(oinstall)" in probe and "(dba)" in probe and "(racdba)" in probe
        assert "oracle soft nproc 16384" in probe
        assert "oracle:oinstall 770" in probe
        assert "ORACLE_HOME=/u01/app/oracle/product/19.0.0/dbhome_1" in probe
    finally:
        lab.run("backup1", "userdel -r oracle 2>/dev/null; for g in oinstall dba oper backupdba dgdba kmdba racdba; "
                "do groupdel $g 2>/dev/null; done; rm -rf /u01 /etc/sysctl.d/97-oracle.conf "
                "/etc/security/limits.d/90-oracle.conf; true", check=False)
