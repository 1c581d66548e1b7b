"""Orthanc's REST API, the few calls hcops needs: store an instance, list what is held, and the
server's identity. Basic auth over HTTP on the service address (the lab's data-room network);
every refusal or unreachable server is an HcopsError that says what to do, never a traceback.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from inventories.errors import HcopsError


class OrthancUnreachable(HcopsError):
    """No answer at all (down, no route): a backup of the tree may still go ahead without the list."""


class OrthancRefused(HcopsError):
    """An HTTP error answer other than 401; `reason` is Orthanc's own (its JSON Message and Details)."""

    def __init__(self, message: str, hint: str, status: int, reason: str) -> None:
        super().__init__(message, hint)
        self.status, self.reason = status, reason


def _reason(body: str) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body[:300]
    if not isinstance(doc, dict) or not doc.get("Message"):
        return body[:300]
    details = str(doc.get("Details") or "")
    return str(doc["Message"]) + (f" ({details[:300]})" if details else "")


USER = "hcops"
"""The account the orthanc role creates (its password: secret `orthanc-<service>`)."""
PAGE = 1000


@dataclass
class Orthanc:
    url: str  # http://host:port, no trailing slash
    user: str
    password: str
    timeout: float = 30.0

    def _request(self, method: str, path: str, body: bytes | None = None,
                 content_type: str = "application/json") -> Any:
        req = urllib.request.Request(self.url.rstrip("/") + path, data=body, method=method)  # noqa: S310
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        if body is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (http(s) URL from the model)
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                raise HcopsError(f"Orthanc at {self.url} refused the credentials of {self.user!r} (HTTP 401)",
                                 "use the password the orthanc role set (secret orthanc-<service> in the region's "
                                 "secret store; `hcops deploy` writes it)") from None
            answer = exc.read().decode(errors="replace").strip()
            raise OrthancRefused(f"Orthanc at {self.url}: {method} {path} answered HTTP {exc.code}: {answer[:300]}",
                                 "see Orthanc's log on its host (journalctl -u orthanc)", exc.code,
                                 _reason(answer)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OrthancUnreachable(f"cannot reach Orthanc at {self.url}: {reason}",
                             "is the PACS host up and Orthanc running (systemctl status orthanc)? "
                             "does a rule let this machine reach its REST port?") from None
        return json.loads(raw) if raw else None

    def system(self) -> dict[str, Any]:
        out = self._request("GET", "/system")
        return out if isinstance(out, dict) else {}

    def store(self, dicom: bytes) -> str:
        """POST /instances: Orthanc's id of the instance; `Success` or `AlreadyStored` both count."""
        out = self._request("POST", "/instances", dicom, "application/dicom")
        if not isinstance(out, dict) or out.get("Status") not in ("Success", "AlreadyStored"):
            raise HcopsError(f"Orthanc at {self.url} did not store an instance: {out}",
                             "check that the file is DICOM Part-10 and Orthanc accepts its SOP class")
        return str(out["ID"])

    def sop_instance_uids(self) -> set[str]:
        """Every SOPInstanceUID Orthanc holds, read page by page."""
        uids: set[str] = set()
        since = 0
        while True:
            page = self._request("GET", f"/instances?expand&since={since}&limit={PAGE}")
            if not isinstance(page, list) or not page:
                return uids
            uids.update(str(i["MainDicomTags"]["SOPInstanceUID"]) for i in page)
            since += len(page)
