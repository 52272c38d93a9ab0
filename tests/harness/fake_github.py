"""A local stand-in for GitHub's issues REST API (http.server on 127.0.0.1, in a thread).

It answers the requests ``harness alert`` makes the way api.github.com does (version 2022-11-28):

* ``GET   /repos/{o}/{r}/issues?state=open&labels=L&per_page=N&page=P`` -> 200 and a JSON list of
  issue objects, newest first; pull requests are in it too, with a ``pull_request`` key, as on GitHub;
* ``POST  /repos/{o}/{r}/issues`` ``{"title", "body", "labels"}`` -> 201 and the new issue;
* ``GET   /repos/{o}/{r}/issues/{n}/comments?per_page=N&page=P`` -> 200 and a JSON list of comment
  objects, oldest first (ascending id);
* ``POST  /repos/{o}/{r}/issues/{n}/comments`` ``{"body"}`` -> 201 and the comment;
* ``PATCH /repos/{o}/{r}/issues/{n}`` ``{"state": "closed", ...}`` -> 200 and the issue;
* ``GET   /user`` -> 200 and the token's user (``login``, ``id``, ``type``...) for a personal token
  (``login`` not ending in ``[bot]``); for an installation token such as Actions' GITHUB_TOKEN (the
  default, ``BOT``) 403 ``Resource not accessible by integration``, as api.github.com answers it.

Lists are paginated as on GitHub: ``per_page`` (default 30, at most 100) and ``page``, and a ``Link``
header with ``rel="next"``/``"last"`` (and ``"prev"``/``"first"``) whose URLs use the repository's id,
``/repositories/{id}/issues...``, which the server answers too. Issues and comments the alert creates
are written by ``login``, the token's account (default ``BOT``, the login of Actions' GITHUB_TOKEN).

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
from urllib.parse import parse_qs, urlencode, urlsplit


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


BOT = "github-actions[bot]"
REPOSITORY_ID = 1296269


class FakeGitHub:
    def __init__(self, token: str, repo: str = "octo-org/colab-ci", login: str = "") -> None:
        self.token = token
        self.repo = repo
        self.login = login or BOT                 # who the token writes as
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.requests: list[Recorded] = []
        self.fail_with: Canned | None = None
        self.link_base: str | None = None      # where Link headers point (default: this server)
        self._next = 1
        self._next_comment = 5000
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

    def add_issue(self, title: str, labels: list[str], body: str = "", author: str = BOT) -> dict[str, Any]:
        return self._new_issue(title, body, labels, author)

    def add_comment(self, number: int, body: str, author: str = BOT) -> dict[str, Any]:
        """A comment already on issue ``number`` (by a person when ``author`` is not ``BOT``)."""
        return self._new_comment(number, body, author)

    def _new_issue(self, title: str, body: str, labels: list[str], author: str = BOT) -> dict[str, Any]:
        number = self._next
        self._next += 1
        issue = {
            "id": 1000 + number, "node_id": f"I_kwDO{number}", "number": number, "title": title, "body": body,
            "state": "open", "state_reason": None, "locked": False, "comments": 0,
            "url": f"{self.url}/repos/{self.repo}/issues/{number}",
            "repository_url": f"{self.url}/repos/{self.repo}",
            "html_url": f"https://github.com/{self.repo}/issues/{number}",
            "comments_url": f"{self.url}/repos/{self.repo}/issues/{number}/comments",
            "labels": [{"id": 1, "name": name, "color": "d73a4a", "default": False} for name in labels],
            "user": _user(author), "author_association": "NONE" if author == BOT else "OWNER",
            "created_at": "2026-11-01T05:30:00Z", "updated_at": "2026-11-01T05:30:00Z", "closed_at": None,
        }
        self.issues[number] = issue
        self.comments[number] = []
        return issue

    def _new_comment(self, number: int, body: str, author: str = BOT) -> dict[str, Any]:
        issue = self.issues[number]
        comment_id = self._next_comment
        self._next_comment += 1
        comment = {
            "id": comment_id, "node_id": f"IC_kwDO{comment_id}",
            "url": f"{self.url}/repos/{self.repo}/issues/comments/{comment_id}",
            "html_url": f"{issue['html_url']}#issuecomment-{comment_id}", "body": body,
            "user": _user(author), "author_association": "NONE" if author == BOT else "MEMBER",
            "created_at": "2026-12-01T05:30:00Z", "updated_at": "2026-12-01T05:30:00Z",
            "issue_url": issue["url"], "performed_via_github_app": None,
        }
        self.comments[number].append(comment)
        issue["comments"] += 1
        return comment

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
                path = split.path
                if path == "/user" and method == "GET":
                    if fake.login.endswith("[bot]"):       # an installation token has no user
                        return self._send(403, {"message": "Resource not accessible by integration",
                                                "documentation_url": "https://docs.github.com/rest/users/users"
                                                                     "#get-the-authenticated-user",
                                                "status": "403"})
                    return self._send(200, {**_user(fake.login), "name": None, "site_admin": False,
                                            "url": f"{fake.url}/users/{fake.login}",
                                            "created_at": "2020-01-01T00:00:00Z"})
                if path.startswith(f"/repositories/{REPOSITORY_ID}/"):   # the form GitHub's Link headers use
                    path = f"/repos/{fake.repo}/" + path[len(f"/repositories/{REPOSITORY_ID}/"):]
                prefix = f"/repos/{fake.repo}/issues"
                if not path.startswith(prefix):
                    return self._send(404, {"message": "Not Found", "status": "404"})
                rest = path[len(prefix):].strip("/").split("/") if path != prefix else []
                query = parse_qs(split.query)
                if method == "GET" and not rest:
                    return self._list(query)
                if method == "POST" and not rest:
                    if not isinstance(body, dict) or not body.get("title"):
                        return self._send(422, {"message": "Validation Failed"})
                    if len(body.get("body") or "") > 65536:
                        return self._send(422, {"message": "Validation Failed", "errors": [
                            {"resource": "Issue", "code": "custom", "field": "body",
                             "message": "body is too long (maximum is 65536 characters)"}]})
                    issue = fake._new_issue(body["title"], body.get("body", ""), list(body.get("labels", [])),
                                            fake.login)
                    return self._send(201, issue)
                if not rest or not rest[0].isdigit() or int(rest[0]) not in fake.issues:
                    return self._send(404, {"message": "Not Found", "status": "404"})
                number = int(rest[0])
                issue = fake.issues[number]
                if method == "GET" and rest[1:] == ["comments"]:
                    items = sorted(fake.comments[number], key=lambda c: c["id"])   # ascending id, as GitHub
                    return self._page(items, f"issues/{number}/comments", query)
                if method == "POST" and rest[1:] == ["comments"]:
                    if not isinstance(body, dict) or not body.get("body"):
                        return self._send(422, {"message": "Validation Failed"})
                    if len(body["body"]) > 65536:
                        return self._send(422, {"message": "Validation Failed", "errors": [
                            {"resource": "IssueComment", "code": "unprocessable", "field": "data",
                             "message": "Body is too long (maximum is 65536 characters)"}]})
                    return self._send(201, fake._new_comment(number, body["body"], fake.login))
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
                items = [i for i in fake.issues.values()
                         if (state == "all" or i["state"] == state)
                         and all(lab in {x["name"] for x in i["labels"]} for lab in labels)]
                items.sort(key=lambda i: -i["number"])          # GitHub's default: newest first
                self._page(items, "issues", query)

            def _page(self, items: list[dict[str, Any]], path: str, query: dict[str, list[str]]) -> None:
                """One page of ``items``, with GitHub's Link header when there is more than one."""
                per_page = min(int(query.get("per_page", ["30"])[0]), 100)
                page = int(query.get("page", ["1"])[0])
                last = max(1, -(-len(items) // per_page))
                kept = {k: v[0] for k, v in query.items() if k != "page"}

                def link(number: int, rel: str) -> str:
                    target = urlencode({**kept, "page": number})
                    return f'<{fake.link_base or fake.url}/repositories/{REPOSITORY_ID}/{path}?{target}>; rel="{rel}"'

                rels = []
                if page < last:
                    rels += [link(page + 1, "next"), link(last, "last")]
                if page > 1:
                    rels += [link(1, "first"), link(page - 1, "prev")]
                headers = {"Link": ", ".join(rels)} if rels else {}
                self._send(200, items[(page - 1) * per_page: page * per_page], headers)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

        return Handler


def _user(login: str) -> dict[str, Any]:
    bot = login.endswith("[bot]")
    return {"login": login, "id": 41898282 if bot else 583231, "type": "Bot" if bot else "User",
            "html_url": "https://github.com/apps/github-actions" if bot else f"https://github.com/{login}"}


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
