"""A local stand-in for GitHub's issues REST API (http.server on 127.0.0.1, in a thread).

It answers the requests ``harness alert`` makes the way api.github.com does (version 2022-11-28):

* ``GET   /repos/{o}/{r}/issues?state=open&labels=L&per_page=N&page=P`` -> 200 and a JSON list of
  issue objects; pull requests are in it too, with a ``pull_request`` key, as on GitHub;
* ``POST  /repos/{o}/{r}/issues`` ``{"title", "body", "labels"}`` -> 201 and the new issue;
* ``POST  /repos/{o}/{r}/issues/{n}/comments`` ``{"body"}`` -> 201 and the comment;
* ``PATCH /repos/{o}/{r}/issues/{n}`` ``{"state": "closed", ...}`` -> 200 and the issue.

Requests without ``Authorization: Bearer <token>`` get GitHub's 401 (``Bad credentials``); a
missing ``Accept: application/vnd.github+json`` or ``X-GitHub-Api-Version`` header, or a body that
is not JSON, get 400 (GitHub itself is more lenient; the test is stricter). ``fail_with`` makes
every request answer a canned error instead (a 403 rate limit with ``x-ratelimit-remaining: 0``,
a 429 with ``retry-after``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Canned:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


RATE_LIMITED = Canned(403, {"message": "API rate limit exceeded for installation ID 1234.",
                            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                            "status": "403"},
                      {"x-ratelimit-limit": "1000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "1000",
                       "x-ratelimit-reset": "1764500000", "x-ratelimit-resource": "core"})
SECONDARY_LIMIT = Canned(429, {"message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                                          "before you try again.", "status": "429"}, {"retry-after": "60"})
FORBIDDEN = Canned(403, {"message": "Resource not accessible by integration",
                         "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue",
                         "status": "403"}, {"x-ratelimit-remaining": "4999"})


class FakeGitHub:
    def __init__(self, token: str, repo: str = "octo-org/colab-ci") -> None:
        self.token = token
        self.repo = repo
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.requests: list[Recorded] = []
        self.fail_with: Canned | None = None
        self._next = 1
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeGitHub":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- data ---------------------------------------------------------------------------------------

    def add_pull_request(self, title: str, labels: list[str]) -> dict[str, Any]:
        issue = self._new_issue(title, "a pull request", labels)
        issue["pull_request"] = {"url": f"{self.url}/repos/{self.repo}/pulls/{issue['number']}",
                                 "html_url": f"https://github.com/{self.repo}/pull/{issue['number']}"}
        return issue

    def add_issue(self, title: str, labels: list[str], body: str = "") -> dict[str, Any]:
        return self._new_issue(title, body, labels)

    def _new_issue(self, title: str, body: str, labels: list[str]) -> dict[str, Any]:
        number = self._next
        self._next += 1
        issue = {
            "id": 1000 + number, "node_id": f"I_kwDO{number}", "number": number, "title": title, "body": body,
            "state": "open", "state_reason": None, "locked": False, "comments": 0,
            "url": f"{self.url}/repos/{self.repo}/issues/{number}",
            "html_url": f"https://github.com/{self.repo}/issues/{number}",
            "comments_url": f"{self.url}/repos/{self.repo}/issues/{number}/comments",
            "labels": [{"id": 1, "name": name, "color": "d73a4a", "default": False} for name in labels],
            "user": {"login": "github-actions[bot]", "type": "Bot"},
            "created_at": "2026-11-01T05:30:00Z", "updated_at": "2026-11-01T05:30:00Z", "closed_at": None,
        }
        self.issues[number] = issue
        self.comments[number] = []
        return issue

    def open_issues(self) -> list[dict[str, Any]]:
        return [i for i in self.issues.values() if i["state"] == "open" and "pull_request" not in i]

    # -- HTTP ---------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep the test output clean
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = ValueError
                fake.requests.append(Recorded(method, split.path, parse_qs(split.query),
                                              {k.lower(): v for k, v in self.headers.items()}, body))
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._send(401, {"message": "Bad credentials",
                                            "documentation_url": "https://docs.github.com/rest", "status": "401"})
                if self.headers.get("Accept") != "application/vnd.github+json" or \
                        self.headers.get("X-GitHub-Api-Version") != "2022-11-28":
                    return self._send(400, {"message": "missing Accept or X-GitHub-Api-Version header"})
                if body is ValueError or (raw and "application/json" not in (self.headers.get("Content-Type") or "")):
                    return self._send(400, {"message": "Problems parsing JSON"})
                if fake.fail_with is not None:
                    return self._send(fake.fail_with.status, fake.fail_with.body, fake.fail_with.headers)
                prefix = f"/repos/{fake.repo}/issues"
                if not split.path.startswith(prefix):
                    return self._send(404, {"message": "Not Found", "status": "404"})
                rest = split.path[len(prefix):].strip("/").split("/") if split.path != prefix else []
                query = parse_qs(split.query)
                if method == "GET" and not rest:
                    return self._list(query)
                if method == "POST" and not rest:
                    if not isinstance(body, dict) or not body.get("title"):
                        return self._send(422, {"message": "Validation Failed"})
                    issue = fake._new_issue(body["title"], body.get("body", ""), list(body.get("labels", [])))
                    return self._send(201, issue)
                if not rest or not rest[0].isdigit() or int(rest[0]) not in fake.issues:
                    return self._send(404, {"message": "Not Found", "status": "404"})
                number = int(rest[0])
                issue = fake.issues[number]
                if method == "POST" and rest[1:] == ["comments"]:
                    if not isinstance(body, dict) or not body.get("body"):
                        return self._send(422, {"message": "Validation Failed"})
                    comment = {"id": 5000 + len(fake.comments[number]), "body": body["body"],
                               "html_url": f"{issue['html_url']}#issuecomment-{5000 + len(fake.comments[number])}",
                               "issue_url": issue["url"], "user": {"login": "github-actions[bot]"}}
                    fake.comments[number].append(comment)
                    issue["comments"] += 1
                    return self._send(201, comment)
                if method == "PATCH" and len(rest) == 1:
                    if not isinstance(body, dict):
                        return self._send(422, {"message": "Validation Failed"})
                    if body.get("state") in ("open", "closed"):
                        issue["state"] = body["state"]
                        issue["state_reason"] = body.get("state_reason")
                        issue["closed_at"] = "2026-12-01T05:30:00Z" if body["state"] == "closed" else None
                    return self._send(200, issue)
                return self._send(404, {"message": "Not Found", "status": "404"})

            def _list(self, query: dict[str, list[str]]) -> None:
                state = query.get("state", ["open"])[0]
                labels = [lab for lab in query.get("labels", [""])[0].split(",") if lab]
                per_page = int(query.get("per_page", ["30"])[0])
                page = int(query.get("page", ["1"])[0])
                items = [i for i in fake.issues.values()
                         if (state == "all" or i["state"] == state)
                         and all(lab in {x["name"] for x in i["labels"]} for lab in labels)]
                items.sort(key=lambda i: -i["number"])          # GitHub's default: newest first
                self._send(200, items[(page - 1) * per_page: page * per_page])

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

        return Handler


class Webhook:
    """A Slack-style incoming webhook: records each POSTed JSON body, answers 200 "ok"."""

    def __init__(self, status: int = 200) -> None:
        self.posts: list[Any] = []
        self.status = status
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                hook.posts.append(json.loads(self.rfile.read(length) or b"null"))
                self.send_response(hook.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/services/T000/B000/XXXX"

    def __enter__(self) -> "Webhook":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
