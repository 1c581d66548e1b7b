"""The one door to a Zabbix API: where it is, who we are, retries, version check, call counts.

Everything else in `monitoring` talks to Zabbix through `ZabbixClient.call`, so the sync can
promise (and the benchmark can prove) how many requests a plan costs, and every failure of
the transport or the API reaches the user as an `HcopsError` naming the URL and the method.

Retries: a request that never reached the server (connection refused, unreachable, DNS) is
retried with exponential backoff for any method; a request that timed out is retried only
for read methods (`*.get`, `apiinfo.version`, `sla.getsli`), since a write that timed out may
have been applied, and repeating a create would fail or duplicate.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.error import URLError

from zabbix_utils import ZabbixAPI
from zabbix_utils.exceptions import APIRequestError, ProcessingError

from infra.state import SecretStore
from inventories.errors import HcopsError
from inventories.model import Region
from inventories.schema import Zabbix

log = logging.getLogger("hcops.monitoring")
# zabbix_utils logs request bodies at debug level; a body may carry a PSK. Keep it quiet.
logging.getLogger("zabbix_utils").setLevel(logging.WARNING)

SUPPORTED_MAJOR = ((6, 0),)
"""Zabbix releases this sync is written and tested against (the LTS the lab deploys)."""

TOKEN_SECRET = "zabbix-api-token"  # noqa: S105 (a secret name, not a secret)
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
            return f"http://{addr}:{svc.frontend_port}/api_jsonrpc.php"
    raise HcopsError(f"region {region.name!r} has no zabbix service to sync with",
                     "add a `kind: zabbix` service to the region, or pass --url/HCOPS_ZABBIX_URL")


def resolve_connection(region: Region, url: str | None = None, token: str | None = None,
                       timeout: float | None = None, retries: int | None = None) -> Connection:
    """Options first, then the environment, then the region's own server and stored token."""
    env = os.environ
    conn_timeout = timeout if timeout is not None else _env_float("HCOPS_ZABBIX_TIMEOUT", 30.0)
    conn_retries = retries if retries is not None else int(_env_float("HCOPS_ZABBIX_RETRIES", 4))
    backoff = _env_float("HCOPS_ZABBIX_BACKOFF", 0.5)
    common = {"timeout": conn_timeout, "retries": max(conn_retries, 0), "backoff": backoff}
    the_url = url or env.get("HCOPS_ZABBIX_URL") or default_url(region)
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


@dataclass
class ZabbixClient:
    """A connected API with request counting; build it with `ZabbixClient.connect`."""

    conn: Connection
    api: Any
    version: tuple[int, int, int]
    calls: Counter[str] = field(default_factory=Counter)
    sleep: Any = time.sleep

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @classmethod
    def connect(cls, conn: Connection) -> ZabbixClient:
        """Check the version (one unauthenticated call), then log in and prove the credentials."""
        client = cls(conn, None, (0, 0, 0))
        # zabbix_utils asks `apiinfo.version` while it is constructed: that is our version call.
        client.api = client._retrying("apiinfo.version", True, lambda: ZabbixAPI(
            url=conn.url, skip_version_check=True, timeout=max(round(conn.timeout), 1)))
        client.api.timeout = conn.timeout
        version_text = str(client.api.version)
        client.version = check_version(version_text, conn.url)
        if conn.token:
            client.api.login(token=conn.token)
            # A token is not checked by login(); ask once so a bad token fails here, clearly.
            answer = client._send("user.checkAuthentication", {"token": conn.token}, auth=False)
            if not isinstance(answer, dict) or not answer.get("userid"):
                raise HcopsError(f"the Zabbix API at {conn.url} refused the token ({conn.source})",
                                 "create a new API token (Users > API tokens) and pass it with --token")
        else:
            client._retrying("user.login", False,
                             lambda: client.api.login(user=conn.user, password=conn.password))
        log.debug("connected to Zabbix %s at %s", version_text, conn.url)
        return client

    def call(self, method: str, params: Any) -> Any:
        """One API request; an API error becomes an HcopsError naming the method."""
        return self._send(method, params, auth=True)

    def _send(self, method: str, params: Any, auth: bool) -> Any:
        reads = method.endswith(READ_SUFFIXES)
        return self._retrying(method, reads,
                              lambda: self.api.send_api_request(method, params, auth).get("result"))

    def _retrying(self, method: str, reads: bool, request: Callable[[], Any]) -> Any:
        """Run one request, retrying transport failures with exponential backoff (see module doc)."""
        attempt = 0
        while True:
            self.calls[method] += 1
            try:
                return request()
            except APIRequestError as exc:
                message = _api_message(exc)
                lowered = message.lower()
                if "not authorized" in lowered or "session terminated" in lowered or "incorrect user" in lowered:
                    raise HcopsError(f"the Zabbix API at {self.conn.url} refused the credentials "
                                     f"({self.conn.source}): {message}",
                                     "create a new API token and pass it with --token, or check the "
                                     "user and password") from None
                raise HcopsError(f"Zabbix API error in {method}: {message}",
                                 "fix the cause named above and rerun; objects applied before it are kept") from None
            except (ProcessingError, URLError, OSError) as exc:
                text = str(exc)
                if "parse json" in text.lower() or "HTTP Error 4" in text:
                    raise HcopsError(f"{self.conn.url} did not answer as a Zabbix API ({method}): {text}",
                                     f"check the URL (from {self.conn.source}); it ends in /api_jsonrpc.php") from None
                timed_out = _is_timeout(exc)
                if (timed_out and not reads) or attempt >= self.conn.retries:
                    raise _unreachable(self.conn, method, exc, attempts=attempt + 1) from None
                delay = self.conn.backoff * (2 ** attempt)
                log.warning("Zabbix API at %s %s (%s); retry %d/%d in %.1f s", self.conn.url,
                            "timed out" if timed_out else "unreachable", method, attempt + 1,
                            self.conn.retries, delay)
                self.sleep(delay)
                attempt += 1


def _is_timeout(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, (TimeoutError, socket.timeout)) or "timed out" in text


def _api_message(exc: APIRequestError) -> str:
    message = getattr(exc, "message", "") or ""
    data = getattr(exc, "data", "") or ""
    return f"{message} {data}".strip() or str(exc)


def _unreachable(conn: Connection, method: str, exc: BaseException, attempts: int = 1) -> HcopsError:
    kind = "did not answer in time" if _is_timeout(exc) else "is unreachable"
    return HcopsError(
        f"the Zabbix API at {conn.url} {kind} ({method}, {attempts} attempt{'s' if attempts != 1 else ''}): {exc}",
        f"check that the Zabbix frontend runs and the URL is right (from {conn.source}); "
        "raise --timeout or HCOPS_ZABBIX_RETRIES for a slow server",
    )
