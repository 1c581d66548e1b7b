"""The one door to a Zabbix API: where it is, who we are, retries, version check, call counts.

Everything else in `monitoring` talks to Zabbix through `ZabbixClient.call`, so the sync can
promise (and the benchmark can prove) how many requests a plan costs, and every failure of
the transport or the API reaches the user as an `HcopsError` naming the URL and the method.

Retries: a request that never reached the server (connection refused, unreachable, DNS) is
retried with exponential backoff for any method. A request that did reach it but got no
usable answer (a timeout, a dropped connection, an HTTP 5xx, a truncated body) is retried only
for read methods (`*.get`, `apiinfo.version`, `sla.getsli`): a write may have been applied, so
it raises `WriteOutcomeUnknown` and the caller re-reads instead of re-sending (see
`monitoring.apply`). Zabbix runs each API request in one database transaction, so a create
that was applied was applied whole.

The transport is our own small JSON-RPC client on `http.client` rather than `zabbix_utils`:
that library folds every transport failure, an HTTP 500 and its PHP cause included, into one
"Unable to connect" error, and lets a truncated body escape as a bare exception, which is
exactly what this module must tell apart.

TLS: an `https` URL is verified against the region CA (`<state>/<region>/pki/ca.crt`, which the
playbooks use to sign the frontend's certificate) or `--ca-file`/`HCOPS_ZABBIX_CA`; a
certificate that does not verify is refused, never retried and never ignored.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra.state import SecretStore, region_state_dir
from inventories.errors import HcopsError
from inventories.model import Region
from inventories.schema import Zabbix

log = logging.getLogger("hcops.monitoring")

SUPPORTED_MAJOR = ((6, 0),)
"""Zabbix releases this sync is written and tested against (the LTS the lab deploys)."""

TOKEN_SECRET = "zabbix-api-token"  # noqa: S105 (a secret name, not a secret)
SYNC_TOKEN_SECRET = "zabbix-sync-token"  # noqa: S105 (monitoring.apiuser's dedicated user)
READ_SUFFIXES = (".get", ".version", ".getsli", ".checkAuthentication")


@dataclass(frozen=True)
class Connection:
    """Where the API is and how to log in; `source` says where these came from (for errors)."""

    url: str
    token: str | None = None
    user: str | None = None
    password: str | None = None
    source: str = "options"
    timeout: float = 30.0
    retries: int = 4
    backoff: float = 0.5
    ca_file: str | None = None
    # The deploy token, tried when the sync user's stored token is refused: a Zabbix rebuilt from
    # scratch (a new lab) knows no token an earlier one issued; apply then issues a new one.
    fallback_token: str | None = None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise HcopsError(f"{name}={raw!r} is not a number", f"set {name} to a number or unset it") from None


def default_url(region: Region) -> str:
    """The region's own Zabbix frontend, as the model places it."""
    for name, svc in region.services.items():
        if isinstance(svc, Zabbix):
            addr = region.service_address(name, svc.server)
            scheme = "https" if svc.frontend_tls else "http"
            return f"{scheme}://{addr}:{svc.frontend_port}/api_jsonrpc.php"
    raise HcopsError(f"region {region.name!r} has no zabbix service to sync with",
                     "add a `kind: zabbix` service to the region, or pass --url/HCOPS_ZABBIX_URL")


def region_ca_file(region: str) -> Path:
    """The region CA's certificate, as `infra.deploy_pki.RegionPKI` keeps it."""
    return region_state_dir(region) / "pki" / "ca.crt"


def _ca_for(region: Region, url: str, ca_file: str | None) -> str | None:
    chosen = ca_file or os.environ.get("HCOPS_ZABBIX_CA")
    if chosen:
        if not Path(chosen).is_file():
            raise HcopsError(f"CA file {chosen} does not exist",
                             "pass --ca-file (or HCOPS_ZABBIX_CA) naming the region CA's PEM certificate")
        return chosen
    if url.startswith("https://") and region_ca_file(region.name).is_file():
        return str(region_ca_file(region.name))
    return None  # https against the system trust store, or plain http


def resolve_connection(region: Region, url: str | None = None, token: str | None = None,
                       timeout: float | None = None, retries: int | None = None, *,
                       ca_file: str | None = None) -> Connection:
    """Options first, then the environment, then the region's own server and stored token."""
    env = os.environ
    conn_timeout = timeout if timeout is not None else _env_float("HCOPS_ZABBIX_TIMEOUT", 30.0)
    conn_retries = retries if retries is not None else int(_env_float("HCOPS_ZABBIX_RETRIES", 4))
    backoff = _env_float("HCOPS_ZABBIX_BACKOFF", 0.5)
    the_url = url or env.get("HCOPS_ZABBIX_URL") or default_url(region)
    common = {"timeout": conn_timeout, "retries": max(conn_retries, 0), "backoff": backoff,
              "ca_file": _ca_for(region, the_url, ca_file)}
    url_source = "--url" if url else ("HCOPS_ZABBIX_URL" if env.get("HCOPS_ZABBIX_URL") else "the region model")
    if token or env.get("HCOPS_ZABBIX_TOKEN"):
        return Connection(the_url, token=token or env["HCOPS_ZABBIX_TOKEN"],
                          source=f"{url_source}, token from {'--token' if token else 'HCOPS_ZABBIX_TOKEN'}",
                          **common)  # type: ignore[arg-type]
    if env.get("HCOPS_ZABBIX_USER"):
        if not env.get("HCOPS_ZABBIX_PASSWORD"):
            raise HcopsError("HCOPS_ZABBIX_USER is set but HCOPS_ZABBIX_PASSWORD is not",
                             "set both, or use an API token (--token / HCOPS_ZABBIX_TOKEN)")
        return Connection(the_url, user=env["HCOPS_ZABBIX_USER"], password=env["HCOPS_ZABBIX_PASSWORD"],
                          source=f"{url_source}, user from HCOPS_ZABBIX_USER", **common)  # type: ignore[arg-type]
    store = SecretStore(region.name)
    if store.exists(SYNC_TOKEN_SECRET):  # the sync's own least-privilege user (monitoring.apiuser)
        fallback = store.get(TOKEN_SECRET, "token") if store.exists(TOKEN_SECRET) else None
        return Connection(the_url, token=store.get(SYNC_TOKEN_SECRET, "token"),
                          source=f"{url_source}, the sync user's token from the region's secret store",
                          fallback_token=fallback, **common)  # type: ignore[arg-type]
    if store.exists(TOKEN_SECRET):
        return Connection(the_url, token=store.get(TOKEN_SECRET, "token"),
                          source=f"{url_source}, token from the region's secret store", **common)  # type: ignore[arg-type]
    raise HcopsError(
        f"no Zabbix API credentials for region {region.name!r}",
        f"pass --token or set HCOPS_ZABBIX_TOKEN (or HCOPS_ZABBIX_USER and HCOPS_ZABBIX_PASSWORD); "
        f"deploying the zabbix_server role stores one as secret {TOKEN_SECRET!r}",
    )


def parse_version(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.split(".")[:3] if p.isdigit()]
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


def check_version(text: str, url: str) -> tuple[int, int, int]:
    """Refuse a Zabbix whose API this sync does not speak, naming both versions."""
    version = parse_version(text)
    if version[:2] not in SUPPORTED_MAJOR:
        supported = ", ".join(f"{a}.{b}" for a, b in SUPPORTED_MAJOR)
        raise HcopsError(f"Zabbix {text} at {url} is not supported (hcops supports Zabbix {supported} LTS)",
                         f"point hcops at a Zabbix {supported} server, or upgrade/downgrade the server")
    return version




class WriteOutcomeUnknown(HcopsError):
    """A write reached the server but no usable answer came back: it may or may not have run."""


class _NotSent(Exception):
    """The request never left: no connection was made (safe to retry any method)."""


class _NoAnswer(Exception):
    """The request was sent, but no complete answer came back."""


_PHP_CAUSE = re.compile(r"(PHP )?(Fatal error|Allowed memory size|Maximum execution time)[^\n]*")


def _server_cause(status: int, body: bytes) -> str:
    """The reason a frontend gives for a 5xx, as far as its body says (PHP's fatal error, mostly)."""
    text = re.sub(r"<[^>]+>", "", body.decode("utf-8", errors="replace"))
    match = _PHP_CAUSE.search(text)
    if match:
        return " ".join(match.group(0).split())[:300]
    return " ".join(text.split())[:200] or f"HTTP {status} with no detail in the answer"


class Transport:
    """One JSON-RPC POST per call over a fresh connection, each failure told apart (see module doc)."""

    def __init__(self, url: str, timeout: float, ca_file: str | None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HcopsError(f"{url!r} is not an http(s) URL of a Zabbix API",
                             "use http(s)://<server>[:port]/api_jsonrpc.php")
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self.context: ssl.SSLContext | None = None
        if self.https:
            self.context = ssl.create_default_context(cafile=ca_file)
            self.context.minimum_version = ssl.TLSVersion.TLSv1_2

    def post(self, body: bytes) -> tuple[int, bytes]:
        conn: http.client.HTTPConnection
        if self.https:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            try:
                conn.connect()
            except ssl.SSLCertVerificationError:
                raise
            except OSError as exc:
                raise _NotSent(exc) from exc
            try:
                conn.request("POST", self.path, body=body, headers={
                    "Content-Type": "application/json-rpc", "Accept": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                raise _NoAnswer(exc) from exc
            return resp.status, data
        finally:
            conn.close()


@dataclass
class ZabbixClient:
    """A connected API with request counting; build it with `ZabbixClient.connect`."""

    conn: Connection
    transport: Transport
    version: tuple[int, int, int]
    calls: Counter[str] = field(default_factory=Counter)
    sleep: Any = time.sleep
    auth: str | None = None
    session_login: bool = False
    """True when we logged in with a password: `close()` then logs the session out."""

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @classmethod
    def connect(cls, conn: Connection) -> ZabbixClient:
        """Check the version (one unauthenticated call), then log in and prove the credentials."""
        client = cls(conn, Transport(conn.url, conn.timeout, conn.ca_file), (0, 0, 0))
        version_text = str(client._send("apiinfo.version", {}, auth=False))
        client.version = check_version(version_text, conn.url)
        if conn.token:
            # A token is not checked by using it; ask once so a bad token fails here, clearly.
            try:
                client.auth = client._check_token(conn.token)
            except HcopsError:
                if not conn.fallback_token:
                    raise
                log.warning("the sync user's stored token is not valid on %s (a rebuilt Zabbix?); "
                            "using the deploy token, and the next apply issues a new one", conn.url)
                client.auth = client._check_token(conn.fallback_token)
        else:
            client.auth = str(client._send("user.login", {"username": conn.user, "password": conn.password},
                                           auth=False))
            client.session_login = True
        log.debug("connected to Zabbix %s at %s", version_text, conn.url)
        return client

    def _check_token(self, token: str) -> str:
        answer = self._send("user.checkAuthentication", {"token": token}, auth=False)
        if not isinstance(answer, dict) or not answer.get("userid"):
            raise HcopsError(f"the Zabbix API at {self.conn.url} refused the token ({self.conn.source})",
                             "create a new API token (Users > API tokens) and pass it with --token")
        return token

    def close(self) -> None:
        """End a password session (a token needs no logout); safe to call twice."""
        if self.session_login and self.auth:
            try:
                self._send("user.logout", [], auth=True)
            except HcopsError as exc:  # the work is done; say so, do not fail on the way out
                log.warning("Zabbix logout failed: %s", exc.message)
            self.session_login = False
        self.auth = None

    def __enter__(self) -> ZabbixClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def token_user(self, token: str) -> str | None:
        """The user id a token logs in as, or None (Zabbix wants this call without auth)."""
        try:
            answer = self._send("user.checkAuthentication", {"token": token}, auth=False)
        except HcopsError:
            return None
        return str(answer["userid"]) if isinstance(answer, dict) and answer.get("userid") else None

    def call(self, method: str, params: Any) -> Any:
        """One API request; an API error becomes an HcopsError naming the method."""
        return self._send(method, params, auth=True)

    def _send(self, method: str, params: Any, auth: bool) -> Any:
        reads = method.endswith(READ_SUFFIXES)
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
        if auth:
            body["auth"] = self.auth
        payload = json.dumps(body).encode()
        attempt = 0
        while True:
            self.calls[method] += 1
            try:
                return self._once(method, payload)
            except _Retryable as exc:
                if exc.sent and not reads:
                    raise WriteOutcomeUnknown(
                        f"{exc.describe(self.conn.url)} during {method}: the write may or may not have been applied",
                        exc.hint(self.conn) + "; the next plan reads what Zabbix holds, so rerun plan/apply") from None
                if attempt >= self.conn.retries:
                    raise exc.final(self.conn, method, attempt + 1) from None
                delay = self.conn.backoff * (2 ** attempt)
                log.warning("Zabbix API at %s %s (%s); retry %d/%d in %.1f s", self.conn.url, exc.short,
                            method, attempt + 1, self.conn.retries, delay)
                self.sleep(delay)
                attempt += 1

    def _once(self, method: str, payload: bytes) -> Any:
        try:
            status, data = self.transport.post(payload)
        except ssl.SSLCertVerificationError as exc:
            raise HcopsError(
                f"the TLS certificate of {self.conn.url} did not verify ({exc.verify_message}; CA: "
                f"{self.conn.ca_file or 'system trust store'})",
                "pass --ca-file with the region CA (the playbooks sign the frontend with "
                "<state>/<region>/pki/ca.crt), or fix the frontend's certificate") from None
        except ssl.SSLError as exc:
            raise HcopsError(f"TLS with {self.conn.url} failed: {exc}",
                             "check that the URL's port serves https (or use http://)") from None
        except _NotSent as exc:
            raise _Retryable(False, exc.args[0]) from None
        except _NoAnswer as exc:
            raise _Retryable(True, exc.args[0]) from None
        if status >= 500:
            raise _Retryable(True, None, status=status, cause=_server_cause(status, data))
        if status >= 400:
            raise HcopsError(f"{self.conn.url} did not answer as a Zabbix API ({method}): HTTP {status}",
                             f"check the URL (from {self.conn.source}); it ends in /api_jsonrpc.php")
        try:
            answer = json.loads(data)
        except ValueError:
            if data.lstrip()[:1] in (b"{", b"["):
                raise _Retryable(True, None, truncated=len(data)) from None
            raise HcopsError(f"{self.conn.url} did not answer as a Zabbix API ({method}): not JSON "
                             f"({data[:80]!r})",
                             f"check the URL (from {self.conn.source}); it ends in /api_jsonrpc.php") from None
        if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
            raise HcopsError(f"{self.conn.url} answered {method} with no JSON-RPC result",
                             f"check the URL (from {self.conn.source}); it ends in /api_jsonrpc.php")
        if "error" in answer:
            err = answer["error"] or {}
            message = f"{err.get('message', '')} {err.get('data', '')}".strip() or str(err)
            lowered = message.lower()
            if "not authorized" in lowered or "session terminated" in lowered or "incorrect user" in lowered:
                raise HcopsError(f"the Zabbix API at {self.conn.url} refused the credentials "
                                 f"({self.conn.source}): {message}",
                                 "create a new API token and pass it with --token, or check the "
                                 "user and password")
            raise HcopsError(f"Zabbix API error in {method}: {message}",
                             "fix the cause named above and rerun; objects applied before it are kept")
        return answer["result"]


class _Retryable(Exception):
    """A transport outcome that a read may retry; `sent` says whether the server got the request."""

    def __init__(self, sent: bool, exc: BaseException | None, *, status: int | None = None,
                 cause: str = "", truncated: int | None = None) -> None:
        super().__init__(str(exc))
        self.sent = sent
        self.exc = exc
        self.status = status
        self.cause = cause
        self.truncated = truncated

    @property
    def cut_short(self) -> bool:
        return self.truncated is not None or isinstance(self.exc, http.client.IncompleteRead)

    @property
    def timed_out(self) -> bool:
        return self.exc is not None and _is_timeout(self.exc)

    @property
    def short(self) -> str:
        if self.status:
            return f"answered HTTP {self.status}"
        if self.cut_short:
            return "sent a truncated answer"
        return "timed out" if self.timed_out else ("dropped the connection" if self.sent else "unreachable")

    def describe(self, url: str) -> str:
        if self.status:
            return f"the Zabbix API at {url} failed with a server error (HTTP {self.status}: {self.cause})"
        if self.truncated is not None:
            return f"the Zabbix API at {url} sent a truncated answer ({self.truncated} bytes of JSON)"
        if isinstance(self.exc, http.client.IncompleteRead):
            got, more = len(self.exc.partial), self.exc.expected
            return f"the Zabbix API at {url} sent a truncated answer ({got} bytes, {more} more announced)"
        if self.timed_out:
            return f"the Zabbix API at {url} did not answer in time ({self.exc})"
        return f"the Zabbix API at {url} dropped the connection ({self.exc})"

    def hint(self, conn: Connection) -> str:
        if self.status and "memory" in self.cause.lower():
            return ("the frontend's PHP ran out of memory: raise zabbix_server_php_memory_limit in the "
                    "zabbix_server role, or lower HCOPS_ZABBIX_BATCH")
        if self.status:
            return "read the frontend's PHP and web server logs for the cause"
        if self.cut_short:
            return "a proxy or the frontend cut the answer short: check their limits and logs"
        return f"check that the Zabbix frontend runs and the URL is right (from {conn.source})"

    def final(self, conn: Connection, method: str, attempts: int) -> HcopsError:
        plural = "s" if attempts != 1 else ""
        if self.sent:
            return HcopsError(f"{self.describe(conn.url)} ({method}, {attempts} attempt{plural})",
                              self.hint(conn) + "; raise --timeout or HCOPS_ZABBIX_RETRIES for a slow server")
        return _unreachable(conn, method, self.exc or OSError("no connection"), attempts)


def _is_timeout(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, (TimeoutError, socket.timeout)) or "timed out" in text


def _unreachable(conn: Connection, method: str, exc: BaseException, attempts: int = 1) -> HcopsError:
    kind = "did not answer in time" if _is_timeout(exc) else "is unreachable"
    return HcopsError(
        f"the Zabbix API at {conn.url} {kind} ({method}, {attempts} attempt{'s' if attempts != 1 else ''}): {exc}",
        f"check that the Zabbix frontend runs and the URL is right (from {conn.source}); "
        "raise --timeout or HCOPS_ZABBIX_RETRIES for a slow server",
    )
