"""The clause table: each row a GB/T 22239-2019 level-3 clause, the control that meets it, where
it is configured, and how to read it back on a host (a shell probe run as root through
pytest-testinfra) or from the model.

A probe prints one line: `PASS <evidence>`, `FAIL <evidence>` or `NA <why not applicable here>`.
Probes are plain POSIX shell so an assessor can rerun any of them by hand (`hcops lab ssh HOST`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from inventories.model import Region

# a host-independent row: (status, evidence) from the model
ModelCheck = Callable[[Region], tuple[str, str]]


@dataclass(frozen=True)
class Clause:
    clause: str
    title: str
    control: str
    where: str
    probe: str = ""                      # shell run on each applicable host
    applies: Callable[[Region, str], bool] = field(default=lambda _r, _h: True)
    model: ModelCheck | None = None      # or: checked once from the model


def _role(*roles: str) -> Callable[[Region, str], bool]:
    return lambda region, host: bool(set(region.host_roles(host)) & set(roles))


def _mysql_hosts(region: Region, host: str) -> bool:
    return any(s.kind == "mysql" and host in region.service_hosts(n) for n, s in region.services.items())


def _nginx_hosts(region: Region, host: str) -> bool:
    return any(s.kind == "nginx" and host in region.service_hosts(n) for n, s in region.services.items())


def _links_encrypted(region: Region) -> tuple[str, str]:
    bad = [n for n, link in region.links.items() if link.encryption == "none"]
    if bad:
        return "FAIL", f"links without encryption: {', '.join(bad)}"
    return "PASS", ", ".join(f"{n}: {link.encryption}" for n, link in region.links.items()) or "no links"


def _rules_named(region: Region) -> tuple[str, str]:
    from inventories.checks import check  # noqa: PLC0415

    problems = [msg for _path, msg, _fix in check(region)]
    if problems:
        return "FAIL", "; ".join(problems[:3])
    return "PASS", f"{len(region.spec.rules)} rules, each from a named source to a named service; model valid"


def _admins_named(region: Region) -> tuple[str, str]:
    if not region.spec.admins:
        return "FAIL", "the model names no administrator (admins:)"
    return "PASS", "admins: " + ", ".join(sorted(region.spec.admins))


CLAUSES: list[Clause] = [
    # ---- 8.1.4.1 identification and authentication
    Clause("8.1.4.1 a", "Unique identity, password complexity and change",
           "pam_pwquality minlen 12, 3 classes; PASS_MAX_DAYS 90; pam_pwhistory remember=5",
           "baseline: pwquality.conf.j2, tasks/main.yml (login.defs), files/pam-configs/pwhistory",
           r"""m=$(sed -n 's/^minlen *= *//p' /etc/security/pwquality.conf); d=$(awk '$1=="PASS_MAX_DAYS"{print $2}' /etc/login.defs)
h=$(grep -c pam_pwhistory.so /etc/pam.d/common-password)
[ "${m:-0}" -ge 12 ] && [ "${d:-99999}" -le 90 ] && [ "$h" -ge 1 ] && echo "PASS minlen=$m PASS_MAX_DAYS=$d pwhistory" || echo "FAIL minlen=$m PASS_MAX_DAYS=$d pwhistory=$h" """),
    Clause("8.1.4.1 b", "Login failure handling and session timeout",
           "pam_faillock deny=5, for passwords and for admins' TOTP codes (sshd, sudo); TMOUT; "
           "sshd ChannelTimeout (idle shells), UnusedConnectionTimeout",
           "baseline: faillock.yml, accounts.yml (TOTP stack), tmout.sh.j2, sshd_hcops.conf.j2",
           r"""f=$(grep -c 'pam_faillock.so preauth' /etc/pam.d/common-auth); t=$(grep -o 'TMOUT=[0-9]*' /etc/profile.d/hcops-tmout.sh | head -1)
o=$(grep -c '^auth \[default=die\] pam_faillock.so authfail' /etc/pam.d/sshd /etc/pam.d/sudo | awk -F: '{s+=$2} END{print s}')
c=$(sshd -T 2>/dev/null | grep -i '^channeltimeout' ); u=$(sshd -T 2>/dev/null | awk 'tolower($1)=="unusedconnectiontimeout"{print $2}')
[ "$f" -ge 1 ] && [ "$o" -ge 2 ] && [ -n "$t" ] && echo "$c" | grep -q 'session:shell' && [ -n "$u" ] && [ "$u" != none ] && echo "PASS faillock (passwords, TOTP in sshd+sudo); $t; $c; unusedconnectiontimeout $u" || echo "FAIL faillock=$f totp_faillock=$o $t [$c] unused=$u" """),
    Clause("8.1.4.1 c", "Remote administration over a protected channel",
           "sshd: keys only, no passwords, modern ciphers/MACs/KEX; host keys checked by the controller",
           "baseline: sshd_hcops.conf.j2; infra/lab/control.py known_hosts; ansible.cfg StrictHostKeyChecking",
           r"""t=$(sshd -T 2>/dev/null); p=$(echo "$t" | awk '$1=="passwordauthentication"{print $2}'); c=$(echo "$t" | awk '$1=="ciphers"{print $2}')
echo "$c" | grep -qi cbc && { echo "FAIL CBC ciphers offered: $c"; exit; }
[ "$p" = no ] && echo "PASS passwordauthentication no; ciphers $c" || echo "FAIL passwordauthentication $p" """),
    Clause("8.1.4.1 d", "Two factors for administrators",
           "named admins: SSH key plus TOTP (pam_oath) for login, TOTP again for sudo",
           "baseline: tasks/accounts.yml (Match Group hcops-admins, /etc/pam.d/sshd and sudo)",
           r"""a=$(getent group hcops-admins | cut -d: -f4 | cut -d, -f1); [ -n "$a" ] || { echo "FAIL no admin in hcops-admins"; exit; }
m=$(sshd -T -C user="$a",host=h,addr=127.0.0.1 2>/dev/null | awk '$1=="authenticationmethods"{print $2}')
o=$(grep -c '^auth \[success=1 default=bad\] pam_oath.so' /etc/pam.d/sshd /etc/pam.d/sudo | awk -F: '{s+=$2} END{print s}')
s=$(stat -c %a /etc/security/users.oath 2>/dev/null)
[ "$m" = "publickey,keyboard-interactive:pam" ] && [ "$o" -ge 2 ] && [ "$s" = 600 ] && echo "PASS $a: authenticationmethods $m; pam_oath in sshd+sudo; seeds 0600" || echo "FAIL $a: methods=$m pam_oath=$o seeds=$s" """),
    # ---- 8.1.4.2 access control
    Clause("8.1.4.2 a", "Accounts assigned to named people", "one account per admin of the model",
           "inventories/*/security.yml admins:; baseline: tasks/accounts.yml", model=_admins_named),
    Clause("8.1.4.2 b", "Default accounts renamed or disabled, no shared account",
           "PermitRootLogin no; root's password locked; no key for root; AllowGroups",
           "baseline: sshd_hcops.conf.j2, tasks/accounts.yml",
           r"""r=$(sshd -T 2>/dev/null | awk '$1=="permitrootlogin"{print $2}'); l=$(passwd -S root | awk '{print $2}')
k=$([ -e /root/.ssh/authorized_keys ] && echo yes || echo no); g=$(sshd -T 2>/dev/null | awk '$1=="allowgroups"{$1="";print}')
[ "$r" = no ] && [ "$l" = L ] && [ "$k" = no ] && [ -n "$g" ] && echo "PASS permitrootlogin no; root locked; no root key; allowgroups$g" || echo "FAIL permitrootlogin=$r root=$l rootkey=$k allowgroups=$g" """),
    Clause("8.1.4.2 c", "No redundant or expired accounts",
           "login accounts are exactly the automation account and the model's admins (others removed)",
           "baseline: tasks/accounts.yml (admins no longer in the model lose their account)",
           r"""have=$(awk -F: '$3>=1000 && $3<60000 && $7 !~ /(nologin|false)$/ {print $1}' /etc/passwd | sort | tr '\n' ' ')
extra=""; for u in $have; do case " $HCOPS_EXPECTED_ACCOUNTS " in *" $u "*) ;; *) extra="$extra $u";; esac; done
[ -z "$extra" ] && echo "PASS login accounts: $have" || echo "FAIL accounts not in the model:$extra" """),
    Clause("8.1.4.2 d", "Least privilege, su closed, sudo for named groups only",
           "sudoers: automation account and %hcops-admins only; su limited to an empty group (pam_wheel)",
           "baseline: tasks/accounts.yml",
           r"""w=$(grep -c '^auth *required *pam_wheel.so use_uid group=hcops-su' /etc/pam.d/su); m=$(getent group hcops-su | cut -d: -f4)
o=$(cat /etc/sudoers /etc/sudoers.d/* 2>/dev/null | grep -vE '^\s*(#|$|Defaults|@include)' | grep -vE "^(root|%sudo|%hcops-admins|$HCOPS_AUTOMATION)\s")
[ "$w" -ge 1 ] && [ -z "$m" ] && [ -z "$o" ] && echo "PASS su: pam_wheel group hcops-su (empty); sudo rules for root, %sudo, %hcops-admins, $HCOPS_AUTOMATION only" || echo "FAIL su=$w members=$m other sudo rules: $o" """),
    # ---- 8.1.4.3 security audit
    Clause("8.1.4.3 a", "Audit of every user, every command run as root",
           "audit rules: execve with euid=0 from any login (b64+b32); sudo log of every command",
           "baseline: hcops.rules.j2, sudoers_logging.j2",
           r"""r=/etc/audit/rules.d/50-hcops.rules; n=$(grep -c 'execve -F euid=0 -F auid!=unset' $r 2>/dev/null); s=$(grep -c 'logfile=' /etc/sudoers.d/50-hcops-logging 2>/dev/null)
[ "${n:-0}" -ge 2 ] && [ "${s:-0}" -ge 1 ] || { echo "FAIL execve rules=$n sudo log=$s"; exit 0; }
if auditctl -s >/dev/null 2>&1; then l=$(auditctl -l | grep -c root-commands); if [ "$l" -ge 2 ] && systemctl -q is-active auditd; then echo "PASS auditd active, $l root-command rules loaded; sudo log"; else echo "FAIL loaded root-command rules: $l"; fi
else echo "NA rules installed ($n execve rules) and sudo logs every command, but the kernel cannot audit from this container (auditctl -s: $(auditctl -s 2>&1 | head -1)); auditd runs where the host has its own kernel"; fi"""),
    Clause("8.1.4.3 b", "Audit coverage: 32-bit calls, modules, mounts, deletes, permissions, denied access",
           "rules with keys modules, mounts, delete, perm-change, access-denied, time-change for b64 and b32",
           "baseline: hcops.rules.j2",
           r"""r=/etc/audit/rules.d/50-hcops.rules; miss=""; for k in modules mounts delete perm-change access-denied time-change identity; do grep -q "k $k" $r || miss="$miss $k"; done
b=$(grep -c 'arch=b32' $r); [ -z "$miss" ] && [ "$b" -ge 6 ] && echo "PASS keys present, $b 32-bit rules" || echo "FAIL missing:$miss b32=$b" """),
    Clause("8.1.4.3 c", "Audit records protected and kept; reliable time",
           "auditd.conf ROTATE 30 x 100 MB, SUSPEND on full disk; /var/log/audit 0700; rules immutable (-e 2); chrony running",
           "baseline: auditd.conf.j2, audit.yml, hcops.rules.j2, chrony.conf.j2",
           r"""a=$(awk -F' = ' '$1=="num_logs"{print $2}' /etc/audit/auditd.conf); d=$(stat -c %a /var/log/audit); e=$(tail -n 3 /etc/audit/rules.d/50-hcops.rules | grep -c '^-e 2')
systemctl -q is-active chrony || { echo "FAIL chrony not running"; exit 0; }
o=$(chronyc -n tracking 2>/dev/null | awk -F': ' '/System time/{print $2}'); src=$(chronyc -n sources 2>/dev/null | awk '/^\^/{print $1, $2}' | head -2 | tr '\n' ' ')
[ "${a:-0}" -ge 10 ] && [ "$d" = 700 ] && [ "$e" = 1 ] && echo "PASS num_logs=$a, audit dir $d, immutable; chrony sources: $src offset ${o:-unknown}" || echo "FAIL num_logs=$a dir=$d immutable=$e" """),
    Clause("8.1.4.3 d", "Central audit log kept at least 6 months",
           "auth, sudo and audit records forwarded over TLS (rsyslog gtls, region CA) to region.log_host, kept there region.log_retention_days",
           "baseline: tasks/logging.yml, rsyslog-hcops.conf.j2; inventories/*/region.yml log_host",
           r"""[ -n "$HCOPS_LOG_HOST" ] || { echo "FAIL region.log_host is not set"; exit 0; }
systemctl -q is-active rsyslog || { echo "FAIL rsyslog not running"; exit 0; }
c=/etc/rsyslog.d/60-hcops.conf
if [ "$(hostname)" = "$HCOPS_LOG_HOST" ]; then r=$(awk '$1=="rotate"{print $2}' /etc/logrotate.d/hcops-central-logs 2>/dev/null); n=$(ls /var/log/hcops-remote 2>/dev/null | wc -l)
  [ "${r:-0}" -ge 180 ] && [ "$n" -ge "$HCOPS_HOST_COUNT" ] && echo "PASS log host: records of $n hosts in /var/log/hcops-remote, kept $r days" || echo "FAIL log host: rotate=$r, hosts received $n of $HCOPS_HOST_COUNT"
else grep -q 'StreamDriverMode="1"' $c && grep -q "StreamDriverPermittedPeers=\"$HCOPS_LOG_HOST\"" $c && echo "PASS auth/sudo/audit records forwarded over TLS to $HCOPS_LOG_HOST (disk-queued)" || echo "FAIL no TLS forwarding to $HCOPS_LOG_HOST in $c"; fi"""),
    # ---- 8.1.4.4 intrusion prevention
    Clause("8.1.4.4 a", "Minimal installation", "unneeded network services removed",
           "baseline: baseline_unwanted_packages",
           r"""p=$(dpkg-query -W -f '${Package} ${Status}\n' telnetd rsh-server nis xinetd avahi-daemon cups rpcbind tftpd-hpa vsftpd snmpd 2>/dev/null | grep ' installed$' | cut -d' ' -f1)
[ -z "$p" ] && echo "PASS none of telnetd rsh-server nis xinetd avahi cups rpcbind tftpd vsftpd snmpd installed" || echo "FAIL installed: $p" """),
    Clause("8.1.4.4 b", "Kernel and network hardening",
           "sysctl (redirects, source routing, syncookies, ptrace, kptr, suid dumps); blocked modules; no core dumps",
           "baseline: tasks/hardening.yml",
           r"""bad=""; na=""
for kv in $(grep -v '^#' /etc/sysctl.d/60-hcops-hardening.conf | tr -d ' '); do k=${kv%%=*}; v=${kv#*=}; h=$(sysctl -n "$k" 2>/dev/null) || continue; [ "$h" = "$v" ] && continue
case "$k" in kernel.*|fs.*) if [ -w "/proc/sys/$(echo "$k" | tr . /)" ]; then bad="$bad $k=$h"; else na="$na $k"; fi;; *) bad="$bad $k=$h";; esac; done
m=$(grep -c '^install .* /bin/false' /etc/modprobe.d/hcops-blocked.conf 2>/dev/null); c=$(grep -c 'hard *core *0' /etc/security/limits.d/10-hcops-core.conf 2>/dev/null); s=$(grep -c 'Storage=none' /etc/systemd/coredump.conf.d/hcops.conf 2>/dev/null)
[ -n "$bad" ] && { echo "FAIL sysctl:$bad"; exit 0; }
[ "${m:-0}" -ge 5 ] && [ "${c:-0}" -ge 1 ] && [ "${s:-0}" = 1 ] || { echo "FAIL modules=$m core=$c coredump=$s"; exit 0; }
[ -z "$na" ] && echo "PASS sysctl in effect; $m modules blocked; core dumps off" || echo "PASS net.* sysctl in effect; $m modules blocked; core dumps off (kernel-wide keys belong to the lab machine's kernel, read-only in a container:$na)" """),
    Clause("8.1.4.4 c", "Scheduled jobs and set-uid files", "cron/at for root only; set-uid removed from chfn, chsh, newgrp, wall",
           "baseline: tasks/hardening.yml",
           r"""a=$(cat /etc/cron.allow 2>/dev/null); s=$(find / -xdev -type f -perm /6000 2>/dev/null | grep -xE '/usr/bin/(chfn|chsh|newgrp|wall|write.ul|expiry)')
[ "$a" = root ] && [ -z "$s" ] && echo "PASS cron.allow=root; set-uid/set-gid files left: $(find / -xdev -type f -perm /6000 2>/dev/null | wc -l)" || echo "FAIL cron.allow=$a set-uid left: $s" """),
    # ---- 8.1.4.7 / 8.1.4.8 data integrity and confidentiality
    Clause("8.1.4.7", "Transmission confidentiality: TLS 1.2+ only for web and database",
           "nginx ssl_protocols TLSv1.2 TLSv1.3 at http level; MariaDB require_secure_transport, TLS 1.2/1.3",
           "nginx_common tasks/main.yml; mysql 60-hcops.cnf.j2",
           r"""out=""; if command -v nginx >/dev/null; then v=$(nginx -T 2>/dev/null | grep -E '^\s*ssl_protocols' | grep -E 'TLSv1(\.1)?( |;)'); [ -n "$v" ] && { echo "FAIL nginx offers old TLS: $v"; exit 0; }; out="nginx TLSv1.2+ only;"; fi
if systemctl -q is-active mariadb 2>/dev/null; then r=$(mariadb -NBe "SELECT @@require_secure_transport, @@tls_version, @@skip_networking" 2>/dev/null)
set -- $r; if [ "$3" = 1 ]; then out="$out MariaDB socket only (skip_networking: no data crosses a network, TLS has nothing to protect)"; elif [ "$1" = 1 ]; then out="$out MariaDB TLS only ($2)"; else echo "FAIL MariaDB: $r"; exit 0; fi; fi
[ -n "$out" ] && echo "PASS $out" || echo "NA no web server or database on this host" """),
    Clause("8.1.4.8", "Stored data confidentiality: database files, binlogs, no password in clear",
           "file_key_management: encrypted binlog, InnoDB tables/redo, temp files; passwords sent as hashes",
           "mysql: tasks/security.yml, 61-hcops-security.cnf.j2; mariadb_modules hcops_mariadb_user",
           r"""r=$(mariadb -NBe "SELECT @@encrypt_binlog, @@innodb_encrypt_tables, @@innodb_encrypt_log" 2>/dev/null); set -- $r
[ "$1" = 1 ] && [ "$2" = ON ] && [ "$3" = 1 ] || { echo "FAIL encrypt_binlog=$1 innodb_encrypt_tables=$2 innodb_encrypt_log=$3"; exit 0; }
n=0; t=0; for f in $(mariadb -NBe 'SHOW BINARY LOGS' | cut -f1); do t=$((t+1)); mysqlbinlog "/var/lib/mysql/$f" 2>/dev/null | grep -q 'The rest of the binlog is encrypted' || n=$((n+1)); done
[ "$n" = 0 ] && echo "PASS binlogs encrypted ($t, none readable offline), InnoDB tables and redo log encrypted" || echo "FAIL binlogs readable offline: $n of $t" """,
           applies=_mysql_hosts),
    Clause("8.1.4.3 e", "Database audit, password checks and lockout",
           "server_audit (CONNECT, DDL, DCL); simple_password_check; max_password_errors",
           "mysql: 61-hcops-security.cnf.j2",
           r"""r=$(mariadb -NBe "SELECT @@server_audit_logging, @@server_audit_events, @@simple_password_check_minimal_length, @@max_password_errors" 2>/dev/null); set -- $r
[ "$1" = 1 ] && [ "${3:-0}" -ge 12 ] && [ "${4:-99}" -le 10 ] && echo "PASS server_audit $2; min length $3; lockout after $4" || echo "FAIL $r" """,
           applies=_mysql_hosts),
    # ---- 8.1.2 / 8.1.3 network and boundary (model rows)
    Clause("8.1.2.2", "Communication transmission encrypted between sites", "dedicated lines over WireGuard/IPsec",
           "inventories/*/region.yml links; collector role", model=_links_encrypted),
    Clause("8.1.3.1", "Boundary: named ports from named sources only", "rules section; model validation",
           "inventories/*/security.yml rules; inventories/checks.py", model=_rules_named),
    # ---- 8.1.5 security management centre
    Clause("8.1.5.4 d", "Central monitoring of every host", "Zabbix agent 2 with PSK on every host",
           "zabbix_agent role",
           r"""systemctl -q is-active zabbix-agent2 && grep -q '^TLSConnect=psk' /etc/zabbix/zabbix_agent2.conf && echo "PASS zabbix-agent2 active, PSK" || echo "FAIL zabbix-agent2 not active with PSK" """),
]
