"""Alerts that reach people: the model's `oncall:` section as Zabbix media types, a role, user
groups, users and one trigger action with escalation steps.

- media types `hcops/<region>/webhook` (JavaScript posting one JSON document per alert to the
  gateway hospitals use for SMS, WeChat Work or DingTalk) and `hcops/<region>/email`;
- role `hcops/<region>/oncall` (a User role: frontend off, API off) for every paged person;
- a user group per on-call group, `hcops/<region>/oncall/<group>`, with read rights on the
  region's host group (Zabbix sends a message only to users who may read the host);
- a user per person, `hcops-<region>-<person>`, with their media, active for the severities
  the model pages;
- action `hcops/<region>/page`: problems of the region's hosts at a paged severity; step N of
  the escalation pages its groups after `after_minutes` (steps are one minute long), later steps
  only while nobody has acknowledged; recovery goes to everyone who was paged.
"""

from __future__ import annotations

from collections.abc import Iterable

from inventories.model import Region
from monitoring.objects import Obj, group_prefix, sla_prefix

WEBHOOK_SCRIPT = """\
var p = JSON.parse(value);
var req = new HttpRequest();
req.addHeader('Content-Type: application/json');
var body = JSON.stringify({to: p.to, subject: p.subject, message: p.message, event_id: p.event_id,
  event_value: p.event_value, severity: p.severity, host: p.host, trigger: p.trigger});
req.post(p.url, body);
var status = req.getStatus();
if (status < 200 || status >= 300) { throw 'gateway answered HTTP ' + status; }
return 'OK';
"""
"""Posted once per alert; a non-2xx answer fails the alert so Zabbix retries and shows it."""

WEBHOOK_PARAMS = (("event_id", "{EVENT.ID}"), ("event_value", "{EVENT.VALUE}"), ("host", "{HOST.NAME}"),
                  ("message", "{ALERT.MESSAGE}"), ("severity", "{EVENT.SEVERITY}"), ("subject", "{ALERT.SUBJECT}"),
                  ("to", "{ALERT.SENDTO}"), ("trigger", "{TRIGGER.NAME}"))
MESSAGES = (
    ("0", "0", "Problem: {EVENT.NAME} on {HOST.NAME}",
     "{EVENT.SEVERITY} since {EVENT.TIME} {EVENT.DATE} on {HOST.NAME}: {EVENT.NAME} (event {EVENT.ID})"),
    ("0", "1", "Resolved: {EVENT.NAME} on {HOST.NAME}",
     "Resolved at {EVENT.RECOVERY.TIME} after {EVENT.DURATION}: {EVENT.NAME} on {HOST.NAME} (event {EVENT.ID})"),
    ("0", "2", "Updated: {EVENT.NAME} on {HOST.NAME}", "{USER.FULLNAME} {EVENT.UPDATE.ACTION}: {EVENT.UPDATE.MESSAGE}"),
)
SEVERITY_BITS = {"information": 2, "warning": 4, "average": 8, "high": 16, "disaster": 32}
SEVERITY_CODE = {"information": "1", "warning": "2", "average": "3", "high": "4", "disaster": "5"}
GUI_DISABLED = "3"
PERM_READ = "2"
COND_HOSTGROUP, COND_SEVERITY, COND_ACK, COND_SUPPRESSED = "0", "4", "14", "16"
OP_EQUAL, OP_GE, OP_NO = "0", "5", "11"
RECOVERY_NOTIFY_ALL = "11"


def webhook_name(region: str) -> str:
    return f"{sla_prefix(region)}webhook"


def email_name(region: str) -> str:
    return f"{sla_prefix(region)}email"


def oncall_role(region: str) -> str:
    return f"{sla_prefix(region)}oncall"


def usergroup_name(region: str, group: str) -> str:
    return f"{sla_prefix(region)}oncall/{group}"


def username(region: str, person: str) -> str:
    return f"hcops-{region}-{person}"


def action_name(region: str) -> str:
    return f"{sla_prefix(region)}page"


def alerting_objects(region: Region) -> Iterable[Obj]:
    oncall = region.spec.oncall
    if not oncall.groups:
        return
    name = region.name
    if oncall.webhook:
        yield Obj("mediatype", webhook_name(name), {
            "name": webhook_name(name), "type": "4", "status": "0", "script": WEBHOOK_SCRIPT,
            "smtp_server": "", "smtp_port": "25", "smtp_email": "", "smtp_helo": "", "timeout": "10s",
            "description": "managed-by: hcops. Pages the on-call gateway (SMS / IM) with one JSON POST per alert.",
            "parameters": tuple(sorted((*WEBHOOK_PARAMS, ("url", oncall.webhook.url)))),
            "message_templates": MESSAGES,
        })
    if oncall.email:
        mail = oncall.email
        yield Obj("mediatype", email_name(name), {
            "name": email_name(name), "type": "0", "status": "0", "script": "",
            "smtp_server": mail.smtp_server, "smtp_port": str(mail.smtp_port), "smtp_email": mail.from_address,
            "smtp_helo": mail.from_address.split("@", 1)[1], "timeout": "30s",
            "description": "managed-by: hcops. Pages on-call staff by email.",
            "parameters": (), "message_templates": MESSAGES,
        })
    yield Obj("role", oncall_role(name), {
        "name": oncall_role(name), "type": "1", "ui.default_access": "0", "api.access": "0", "api.mode": "0",
        "api": (), "actions.default_access": "0",
    })
    for group in oncall.groups:
        yield Obj("usergroup", usergroup_name(name, group), {
            "name": usergroup_name(name, group), "gui_access": GUI_DISABLED, "users_status": "0",
            "rights": ((group_prefix(name), PERM_READ),),
        })
    bits = sum(SEVERITY_BITS[s] for s in oncall.page_severities)
    for person_key, person in oncall.people.items():
        groups = tuple(sorted(usergroup_name(name, g) for g, spec in oncall.groups.items()
                              if person_key in spec.members))
        if not groups:
            continue  # declared but in no group: nobody pages them
        medias = []
        if person.phone and oncall.webhook:
            medias.append((webhook_name(name), person.phone, str(bits), "0"))
        if person.email and oncall.email:
            medias.append((email_name(name), person.email, str(bits), "0"))
        first, _, last = person.name.partition(" ")
        yield Obj("user", username(name, person_key), {
            "username": username(name, person_key), "name": first, "surname": last,
            "role": oncall_role(name), "groups": groups, "medias": tuple(sorted(medias)),
        })
    if not oncall.escalation:
        return
    lowest = min(oncall.page_severities, key=lambda s: SEVERITY_BITS[s])
    steps = []
    for step in oncall.escalation:
        number = step.after_minutes + 1  # one-minute steps: step N starts N-1 minutes in
        steps.append((number, number, tuple(sorted(usergroup_name(name, g) for g in step.notify)),
                      step.after_minutes > 0))
    yield Obj("action", action_name(name), {
        "name": action_name(name), "status": "0", "esc_period": "1m",
        "conditions": tuple(sorted(((COND_HOSTGROUP, OP_EQUAL, group_prefix(name)),
                                    (COND_SEVERITY, OP_GE, SEVERITY_CODE[lowest]),
                                    (COND_SUPPRESSED, OP_NO, "")))),
        "steps": tuple(sorted(steps)),
        "recovery": (RECOVERY_NOTIFY_ALL,),
    })
