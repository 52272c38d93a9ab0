"""Credentials for Colab's API, in the forms CI can hold (docs/colab.md).

Looked for in this order:

1. ``COLAB_CLI_TOKEN``: the content of the token file ``colab`` (google-colab-cli) writes after its
   OAuth sign-in, ``~/.config/colab-cli/token.json`` (colab_cli/auth.py ``TOKEN_CONFIG_PATH``; the
   JSON of google-auth's ``Credentials.to_json()``: ``token``, ``refresh_token``, ``token_uri``,
   ``client_id``, ``client_secret``, ``scopes``, ``expiry``). It is written to a private temporary
   file (mode 0600) for the run and read from there, never passed in argv;
2. that token file itself, on a workstation where ``colab`` signed in;
3. Application Default Credentials (colab_cli/auth.py ``_get_adc_credentials``): the file named by
   ``GOOGLE_APPLICATION_CREDENTIALS`` or gcloud's ``application_default_credentials.json``; an
   ``authorized_user`` file is refreshed here, any other kind through google-auth when installed.

Every secret value met (refresh token, client secret, access token, the runtime's proxy token) is
registered with ``harness.core.secrets`` so no report, log or notebook can carry it.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.core.secrets import register_secrets
from harness.execution.colab_errors import NotChecked

TOKEN_VARIABLE = "COLAB_CLI_TOKEN"
TOKEN_FILE = Path("~/.config/colab-cli/token.json")
ADC_FILE = Path("~/.config/gcloud/application_default_credentials.json")
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
# colab_cli/auth.py PUBLIC_SCOPES: what the token must have been minted with (docs/colab.md).
SCOPES = ("openid", "https://www.googleapis.com/auth/userinfo.profile",
          "https://www.googleapis.com/auth/userinfo.email", "https://www.googleapis.com/auth/cloud-platform",
          "https://www.googleapis.com/auth/colaboratory", "https://www.googleapis.com/auth/drive.file")
REFRESH_MARGIN_S = 120


class NoCredentials(NotChecked):
    """No usable credentials: the message says what was looked for (the column is "not checked")."""


def keep_secret(*values: str | None) -> None:
    """Register values as secrets (redacted from everything the harness writes)."""
    for value in values:
        if value:
            register_secrets(["_COLAB_CI_SECRET"], env={"_COLAB_CI_SECRET": value})


@dataclass
class AccessToken:
    """An OAuth access token, refreshed when it is about to expire (thread-safe)."""

    refresh: Callable[[], tuple[str, float]]    # -> (access token, seconds it lives)
    source: str                                  # "COLAB_CLI_TOKEN", "token file", "ADC (...)": for the report
    _token: str = ""
    _expires: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> str:
        with self._lock:
            if not self._token or time.monotonic() > self._expires - REFRESH_MARGIN_S:
                self._token, lives = self.refresh()
                self._expires = time.monotonic() + lives
                keep_secret(self._token)
            return self._token


def find_credentials(env: dict[str, str] | None = None, home: Path | None = None) -> AccessToken:
    """The first credentials found (module docstring); ``NoCredentials`` saying what was tried."""
    env = dict(os.environ if env is None else env)
    home = home or Path(env.get("HOME") or Path.home())
    if env.get(TOKEN_VARIABLE, "").strip():
        keep_secret(env[TOKEN_VARIABLE])
        return _from_user_info(_read_private_copy(env[TOKEN_VARIABLE]), TOKEN_VARIABLE)
    token_file = home / TOKEN_FILE.relative_to("~")
    if token_file.is_file():
        return _from_user_info(_read_json(token_file, "the colab CLI's token file"), f"token file {token_file}")
    adc = Path(env["GOOGLE_APPLICATION_CREDENTIALS"]) if env.get("GOOGLE_APPLICATION_CREDENTIALS") else \
        home / ADC_FILE.relative_to("~")
    if adc.is_file():
        info = _read_json(adc, "the Application Default Credentials file")
        if info.get("type") == "authorized_user":
            return _from_user_info(info, f"ADC ({adc})")
        return _from_google_auth(f"ADC ({adc}, {info.get('type', '?')})")
    raise NoCredentials(f"no Colab credentials: ${TOKEN_VARIABLE} is unset, there is no {token_file}, and no "
                        f"Application Default Credentials ({adc}); see docs/colab.md")


def _read_private_copy(content: str) -> dict[str, Any]:
    """``COLAB_CLI_TOKEN``'s content, through a private file (0600, removed at once): the one form in
    which token files are read, and never an argument of any process."""
    fd, name = tempfile.mkstemp(prefix="colab-ci-token-", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        return _read_json(Path(name), f"${TOKEN_VARIABLE}")
    finally:
        Path(name).unlink(missing_ok=True)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise NoCredentials(f"{what} is not readable JSON (expected the content of "
                            f"~/.config/colab-cli/token.json; see docs/colab.md)") from None
    if not isinstance(data, dict):
        raise NoCredentials(f"{what} is not a JSON object (see docs/colab.md)")
    return data


def _from_user_info(info: dict[str, Any], source: str) -> AccessToken:
    missing = [k for k in ("refresh_token", "client_id", "client_secret") if not info.get(k)]
    if missing:
        raise NoCredentials(f"{source} has no {', '.join(missing)} (mint it again with `colab` on a workstation; "
                            "see docs/colab.md)")
    keep_secret(info.get("refresh_token"), info.get("client_secret"), info.get("token"))
    token_uri = str(info.get("token_uri") or GOOGLE_TOKEN_URI)

    def refresh() -> tuple[str, float]:
        # google-auth's refresh grant (google/oauth2/_client.py refresh_grant), form-encoded.
        body = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": info["refresh_token"],
                                       "client_id": info["client_id"], "client_secret": info["client_secret"]}).encode()
        request = urllib.request.Request(token_uri, data=body, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the token file's token_uri
                answer = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise NoCredentials(f"{source} was refused by {token_uri} (HTTP {exc.code}: revoked or expired? mint "
                                "it again; see docs/colab.md)") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise NoCredentials(f"{source} could not be refreshed at {token_uri} ({exc})") from None
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise NoCredentials(f"{token_uri} answered without an access_token")
        return str(answer["access_token"]), float(answer.get("expires_in") or 3600)

    return AccessToken(refresh, source)


def _from_google_auth(source: str) -> AccessToken:
    try:
        import google.auth
        import google.auth.transport.requests
    except ImportError:
        raise NoCredentials(f"{source}: this kind of credentials needs google-auth (pip install google-auth), "
                            "or use COLAB_CLI_TOKEN (docs/colab.md)") from None
    try:
        creds, _ = google.auth.default(scopes=list(SCOPES))
    except Exception as exc:  # noqa: BLE001 - google-auth raises several kinds
        raise NoCredentials(f"{source}: {type(exc).__name__}: {exc}") from None

    def refresh() -> tuple[str, float]:
        creds.refresh(google.auth.transport.requests.Request())
        return str(creds.token), 3000.0

    return AccessToken(refresh, source)
