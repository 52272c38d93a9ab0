"""A double of Colab's runtime-assignment API (and Google's token endpoint), for the --on colab tests.

It speaks the shapes google-colab-cli 0.7.5 sends and reads (colab_cli/client.py ``Client.assign``,
``Client.unassign``, ``get_consumption_user_info``; the answers with the XSSI prefix ``)]}'\\n``),
and the OAuth refresh grant google-auth sends to ``token_uri``. The runtime it hands out is a real
Jupyter server the test started (url + token): only assignment and release are stood in for.
Every request is recorded (``calls``), so a test can show that the runtime was released.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

XSSI = ")]}'\n"
ACCESS_TOKEN = "ya29.fake-access-token-for-tests"
REFRESH_TOKEN = "1//fake-refresh-token-for-tests"
CLIENT_SECRET = "GOCSPX-fake-client-secret"
ASSIGN_XSRF = "xsrf-assign-123456"
UNASSIGN_XSRF = "xsrf-unassign-654321"
ENDPOINT = "gpu-t4-s-fake1234"


@dataclass
class FakeColab:
    runtime_url: str
    runtime_token: str
    accelerator: str = "NONE"
    balance: float = 100.0
    calls: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def token_file(self) -> str:
        """The content of ~/.config/colab-cli/token.json as google-auth's Credentials.to_json() writes it."""
        return json.dumps({"token": "ya29.stale", "refresh_token": REFRESH_TOKEN, "token_uri": f"{self.url}/token",
                           "client_id": "764086051850-fake.apps.googleusercontent.com", "client_secret": CLIENT_SECRET,
                           "scopes": ["https://www.googleapis.com/auth/colaboratory"], "universe_domain": "googleapis.com",
                           "account": "", "expiry": "2020-01-01T00:00:00Z"})

    def released(self) -> bool:
        return any(c["method"] == "POST" and c["path"] == f"/tun/m/unassign/{ENDPOINT}" for c in self.calls)

    def assigned(self) -> bool:
        return any(c["method"] == "POST" and c["path"] == "/tun/m/assign" for c in self.calls)

    def __enter__(self) -> "FakeColab":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any, xssi: bool = True) -> None:
                text = (XSSI if xssi else "") + json.dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(text.encode())

            def _handle(self, method: str) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                fake.calls.append({"method": method, "path": parts.path, "query": query,
                                   "headers": dict(self.headers.items()), "body": body})
                if parts.path == "/token" and method == "POST":
                    form = dict(urllib.parse.parse_qsl(body))
                    if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != REFRESH_TOKEN:
                        return self._answer(400, {"error": "invalid_grant"}, xssi=False)
                    return self._answer(200, {"access_token": ACCESS_TOKEN, "expires_in": 3599,
                                              "token_type": "Bearer"}, xssi=False)
                if self.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
                    return self._answer(401, {"error": "unauthenticated"})
                if self.headers.get("X-Colab-Client-Agent") != "colab-cli" or query.get("authuser") != "0":
                    return self._answer(400, {"error": "not colab-cli's request"})
                if parts.path == "/tun/m/assign":
                    if method == "GET":   # GetAssignmentResponse: nothing assigned yet to this nbh
                        return self._answer(200, {"acc": query.get("accelerator", ""), "nbh": query.get("nbh", ""),
                                                  "token": ASSIGN_XSRF, "variant": query.get("variant", "DEFAULT")})
                    if self.headers.get("X-Goog-Colab-Token") != ASSIGN_XSRF:
                        return self._answer(403, {"error": "xsrf"})
                    return self._answer(200, {   # PostAssignmentResponse
                        "accelerator": query.get("accelerator", fake.accelerator), "endpoint": ENDPOINT,
                        "runtimeProxyInfo": {"token": fake.runtime_token, "tokenExpiresInSeconds": 3600,
                                             "url": fake.runtime_url},
                        "variant": 1 if query.get("variant") == "GPU" else 0})
                if parts.path == f"/tun/m/unassign/{ENDPOINT}":
                    if method == "GET":
                        return self._answer(200, {"token": UNASSIGN_XSRF})
                    if self.headers.get("X-Goog-Colab-Token") != UNASSIGN_XSRF:
                        return self._answer(403, {"error": "xsrf"})
                    return self._answer(200, {})
                if parts.path == "/tun/m/ccu-info":
                    fake.balance -= 0.25
                    return self._answer(200, {"currentBalance": fake.balance, "consumptionRateHourly": 1.5,
                                              "assignmentsCount": 1})
                return self._answer(404, {"error": "not found"})

            def do_GET(self) -> None:  # noqa: N802 - http.server's names
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
