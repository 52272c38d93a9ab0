"""Colab's runtime-assignment API, as Google's own client (``google-colab-cli`` 0.7.5) speaks it.

Only three exchanges, standard library only (no google-auth, no requests):

* **assign** a runtime: ``GET {domain}/tun/m/assign?nbh=..&variant=..&accelerator=..&authuser=0``
  answers either the runtime already assigned to that notebook hash (``{"endpoint",
  "runtimeProxyInfo": {"token", "tokenExpiresInSeconds", "url"}}``) or an XSRF token
  (``{"acc", "nbh", "token", "variant"}``) that a ``POST`` of the same URL with the header
  ``X-Goog-Colab-Token`` turns into the assignment (``{"accelerator", "endpoint",
  "runtimeProxyInfo", "variant"}``); 412 means too many runtimes are assigned already.
  (colab_cli/client.py: ``Client.assign``, ``_build_assign_url``, ``_get_assignment``,
  ``_post_assignment``; the models ``GetAssignmentResponse``, ``Assignment``,
  ``PostAssignmentResponse``, ``RuntimeProxyInfo``; ``uuid_to_web_safe_base64`` for ``nbh``.)
* **release** it: ``GET {domain}/tun/m/unassign/{endpoint}`` answers ``{"token"}``, a ``POST`` of the
  same URL with ``X-Goog-Colab-Token`` releases (colab_cli/client.py: ``Client.unassign``).
* **compute units**: ``GET {domain}/tun/m/ccu-info`` answers ``{"currentBalance",
  "consumptionRateHourly", "assignmentsCount"}`` (colab_cli/consumption.py: ``CcuInfo``).

Every request carries ``Accept: application/json``, ``X-Colab-Client-Agent: colab-cli``,
``authuser=0`` (requests to the Colab domain) and ``Authorization: Bearer <access token>`` (what
google-auth's ``AuthorizedSession`` adds); every answer may start with the XSSI prefix ``)]}'\\n``
(colab_cli/client.py: ``Client._issue_request``, ``XSSI_PREFIX``). The CPU runtime is
``variant=DEFAULT&accelerator=NONE``, a GPU ``variant=GPU&accelerator=T4|L4|A100|H100``
(colab_cli/commands/session.py: ``resolve_runtime_options``).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

from harness.execution.colab_auth import AccessToken

DOMAIN = "https://colab.research.google.com"
# Where the API is (a stand-in runtime's double in the tests; Google's otherwise).
DOMAIN_VARIABLE = "COLAB_CI_COLAB_DOMAIN"
TUN = "/tun/m"
XSSI_PREFIX = ")]}'\n"
CLIENT_AGENT = {"X-Colab-Client-Agent": "colab-cli"}
XSRF_HEADER = "X-Goog-Colab-Token"
GPUS = ("T4", "L4", "A100", "H100")
REQUEST_TIMEOUT_S = 120.0   # an assignment can take a minute (colab-cli: COLAB_CLI_REQUEST_TIMEOUT)


class ColabApiError(Exception):
    """An API call failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Assignment:
    """One assigned runtime: where its Jupyter server is and the token its proxy wants."""

    endpoint: str
    url: str              # the runtime's proxy URL: a Jupyter server (REST + kernel websockets)
    proxy_token: str
    accelerator: str      # "NONE" for a CPU runtime
    expires_in_s: int


def web_safe_hash(value: uuid.UUID) -> str:
    """colab_cli/client.py ``uuid_to_web_safe_base64``: the notebook hash ``nbh``, as Colab wants it."""
    text = str(value)
    return text.replace("-", "_") + "." * (44 - len(text))


class ColabApi:
    def __init__(self, access: AccessToken, domain: str | None = None) -> None:
        self.access = access
        self.domain = (domain or os.environ.get(DOMAIN_VARIABLE) or DOMAIN).rstrip("/")

    # ---- the three exchanges
    def assign(self, gpu: str | None = None) -> Assignment:
        variant, accelerator = ("GPU", gpu) if gpu else ("DEFAULT", "NONE")
        query = {"nbh": web_safe_hash(uuid.uuid4()), "variant": variant, "accelerator": accelerator}
        url = f"{self.domain}{TUN}/assign?{urllib.parse.urlencode(query)}"
        first = self._call("GET", url)
        if "runtimeProxyInfo" not in first:     # not assigned yet: the answer is the XSRF token to POST with
            try:
                first = self._call("POST", url, {XSRF_HEADER: _field(first, "token")})
            except ColabApiError as exc:
                if exc.status == 412:
                    raise ColabApiError("Colab refused: too many runtimes are assigned to this account "
                                        "(release one: `colab sessions`, `colab stop`)", 412) from None
                if exc.status == 400 and gpu:
                    raise ColabApiError(f"Colab refused the accelerator {gpu} (no quota or entitlement on this "
                                        "account: Colab Pro or compute units)", 400) from None
                raise
        info = _field(first, "runtimeProxyInfo")
        return Assignment(endpoint=str(_field(first, "endpoint")), url=str(_field(info, "url")),
                          proxy_token=str(_field(info, "token")), accelerator=str(first.get("accelerator", accelerator)),
                          expires_in_s=int(info.get("tokenExpiresInSeconds", 0) or 0))

    def release(self, endpoint: str) -> None:
        url = f"{self.domain}{TUN}/unassign/{urllib.parse.quote(endpoint, safe='')}"
        xsrf = _field(self._call("GET", url), "token")
        self._call("POST", url, {XSRF_HEADER: str(xsrf)})

    def compute_units(self) -> float | None:
        """The account's compute-unit balance, or None where the API does not say."""
        try:
            answer = self._call("GET", f"{self.domain}{TUN}/ccu-info")
            return float(answer["currentBalance"])
        except (ColabApiError, KeyError, TypeError, ValueError):
            return None

    # ---- one request
    def _call(self, method: str, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qsl(parts.query) + [("authuser", "0")]
        url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
        request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None, headers={
            "Accept": "application/json", **CLIENT_AGENT, **(headers or {}),
            "Authorization": f"Bearer {self.access.get()}"})
        where = f"{method} {parts.path}"
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:  # noqa: S310 - https (or the test's double)
                body = response.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as exc:
            raise ColabApiError(f"{where}: HTTP {exc.code} {exc.reason}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ColabApiError(f"{where}: no answer ({getattr(exc, 'reason', exc)})") from None
        if body.startswith(XSSI_PREFIX):
            body = body[len(XSSI_PREFIX):]
        if not body.strip():
            return {}
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            raise ColabApiError(f"{where}: the answer is not JSON") from None
        if not isinstance(data, dict):
            raise ColabApiError(f"{where}: the answer is not a JSON object")
        return data


def _field(data: dict[str, Any], name: str) -> Any:
    if not isinstance(data, dict) or name not in data:
        raise ColabApiError(f"Colab's answer has no {name!r} (the API changed? google-colab-cli 0.7.5's shapes "
                            "are what colab-ci speaks)")
    return data[name]
