"""The GitHub REST calls the alert needs, over urllib: list, open, comment on, read comments of, close an issue.

Endpoints (REST API version 2022-11-28):

* ``GET   /repos/{owner}/{repo}/issues?labels=L&state=open&per_page=100`` -> 200, a list of issues.
  The issues endpoints also return pull requests; those carry a ``pull_request`` key and are skipped.
* ``POST  /repos/{owner}/{repo}/issues`` ``{"title", "body", "labels"}`` -> 201, the issue.
* ``GET   /repos/{owner}/{repo}/issues/{number}/comments?per_page=100`` -> 200, a list of comments,
  oldest first (ascending id).
* ``POST  /repos/{owner}/{repo}/issues/{number}/comments`` ``{"body"}`` -> 201, the comment.
* ``PATCH /repos/{owner}/{repo}/issues/{number}`` ``{"state": "closed", "state_reason": "completed"}`` -> 200.
* ``GET   /user`` -> 200, the token's own account (``login``), for a personal or OAuth token. An
  installation token (GitHub Actions' ``GITHUB_TOKEN``, a GitHub App's) gets 403 "Resource not
  accessible by integration": it has no user; what it writes is authored by its app's bot
  (``github-actions[bot]`` for the ``GITHUB_TOKEN``), which the caller has to know.

Lists are paginated: a response with more pages carries a ``Link`` header whose ``rel="next"`` URL is
requested next (GitHub writes it as ``/repositories/{id}/...``). That URL is followed only when it
lies under the API base, since the token goes with it; more than ``MAX_PAGES`` pages is an error
rather than a silently truncated list.

Every request sends ``Authorization: Bearer <token>``, ``Accept: application/vnd.github+json`` and
``X-GitHub-Api-Version: 2022-11-28``. The API base is ``GITHUB_API_URL`` (GitHub Actions sets it;
GitHub Enterprise Server has its own), else https://api.github.com.

Failures become ``GitHubError`` (a HarnessError, exit 2) with one sentence: a rejected token
(401), a token without the permission (403), an exhausted rate limit (403/429 with
``x-ratelimit-remaining: 0``, or a ``retry-after``), an unknown repository (404), an unreachable
API. The token is never part of any message, and never written anywhere.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.core.errors import HarnessError

DEFAULT_API_URL = "https://api.github.com"
ACTIONS_BOT = "github-actions[bot]"          # the author of what GitHub Actions' GITHUB_TOKEN writes
NO_USER_FOR_INTEGRATION = "Resource not accessible by integration"
API_VERSION = "2022-11-28"
PER_PAGE = 100
MAX_PAGES = 10
TIMEOUT_S = 30.0


class GitHubError(HarnessError):
    """GitHub refused or could not be reached; ``str(error)`` is one sentence without the token."""

    def __init__(self, message: str, status: int | None = None, github_message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.github_message = github_message      # GitHub's own "message" field, when it sent one


def _login(data: Mapping[str, Any]) -> str:
    user = data.get("user")
    return str(user.get("login", "")) if isinstance(user, dict) else ""


@dataclass
class Issue:
    number: int
    title: str
    html_url: str
    state: str
    labels: list[str]
    body: str = ""
    author: str = ""                 # the login that opened it

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Issue":
        labels = [lab["name"] if isinstance(lab, dict) else str(lab) for lab in data.get("labels", [])]
        return cls(int(data["number"]), str(data.get("title", "")), str(data.get("html_url", "")),
                   str(data.get("state", "")), labels, str(data.get("body") or ""), _login(data))


@dataclass
class Comment:
    id: int
    body: str
    author: str                      # the login that wrote it
    html_url: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Comment":
        return cls(int(data["id"]), str(data.get("body") or ""), _login(data), str(data.get("html_url", "")))


_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,<]*)*)")


def next_page_url(link_header: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header (RFC 8288; a URL may hold commas), or None on the last page."""
    for match in _LINK.finditer(link_header or ""):
        for param in match.group(2).split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "rel" and "next" in value.strip().strip('"').split():
                return match.group(1)
    return None


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    value = headers.get(name)
    return None if value is None else str(value)


def github_message(body: str) -> str:
    """The ``message`` field of GitHub's JSON error body; '' when there is none."""
    try:
        return str(json.loads(body).get("message", "")).strip()
    except (ValueError, AttributeError):
        return ""


def describe_http_error(status: int, headers: Any, body: str, what: str, repo: str) -> str:
    """One sentence for a failed GitHub response (shared with tests that read these messages)."""
    message = github_message(body)
    remaining = _header(headers, "x-ratelimit-remaining")
    retry_after = _header(headers, "retry-after")
    if status in (403, 429) and (remaining == "0" or retry_after is not None or "rate limit" in message.lower()):
        if retry_after is not None:
            wait = f"retry after {retry_after} s"
        else:
            reset = _header(headers, "x-ratelimit-reset")
            wait = (f"the limit resets at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(int(reset)))}"
                    if reset and reset.isdigit() else "wait for the limit to reset")
        return f"GitHub's API rate limit is exhausted ({status} on {what}): {wait}, then run the alert again"
    if status == 401:
        return (f"GitHub rejected the token (401 {message or 'Bad credentials'}) on {what}: check that "
                f"GITHUB_TOKEN is a valid, unexpired token")
    if status == 403:
        return (f"GitHub refused {what} (403 {message or 'Forbidden'}): the token needs the issues: write "
                f"permission on {repo}")
    if status == 404:
        return (f"GitHub answered 404 to {what}: the repository {repo} does not exist or the token cannot "
                f"see it")
    if status == 410:
        return f"GitHub answered 410 to {what}: issues are disabled on {repo}"
    return f"GitHub answered {status} to {what}" + (f": {message}" if message else "")


class GitHubIssues:
    """Issues of one repository, through the REST API."""

    def __init__(self, repo: str, token: str, api_url: str | None = None, timeout_s: float = TIMEOUT_S) -> None:
        owner_name = repo.strip().strip("/")
        if owner_name.count("/") != 1 or not all(owner_name.split("/")):
            raise GitHubError(f"repository {repo!r} is not of the form OWNER/NAME")
        if not token:
            raise GitHubError("GITHUB_TOKEN is not set: the alert needs a token with issues: write "
                              f"on {owner_name} to open, comment on or close its issue")
        self.repo = owner_name
        self._token = token
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.timeout_s = timeout_s

    def __repr__(self) -> str:  # never show the token, even in a debugger or a traceback
        return f"GitHubIssues(repo={self.repo!r}, api_url={self.api_url!r})"

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None,
                 query: Mapping[str, Any] | None = None, expect: tuple[int, ...] = (200,)) -> Any:
        return self._send(method, self._url(path, query), f"{method} /repos/{self.repo}/{path.lstrip('/')}",
                          body, expect)[0]

    def _url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        url = f"{self.api_url}/repos/{self.repo}/{path.lstrip('/')}"
        return url + ("?" + urllib.parse.urlencode(query) if query else "")

    def _send(self, method: str, url: str, what: str, body: Mapping[str, Any] | None = None,
              expect: tuple[int, ...] = (200,)) -> tuple[Any, Any]:
        """One request to ``url`` (always under ``api_url``): the parsed JSON answer and the headers."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "colab-ci-alert",
            **({"Content-Type": "application/json"} if data is not None else {}),
        })
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                status, headers = response.status, response.headers
                text = response.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", errors="replace") if exc.fp is not None else ""
            raise GitHubError(describe_http_error(exc.code, exc.headers, text, what, self.repo), exc.code,
                              github_message(text)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GitHubError(f"could not reach GitHub's API at {self.api_url} for {what}: {reason}") from None
        if status not in expect:
            raise GitHubError(f"GitHub answered {status} to {what}, expected {' or '.join(map(str, expect))}", status)
        try:
            return (json.loads(text) if text.strip() else None), headers
        except ValueError:
            raise GitHubError(f"GitHub's answer to {what} is not JSON") from None

    def _pages(self, path: str, query: Mapping[str, Any]) -> list[Any]:
        """Every item of a paginated list, following the ``Link: <...>; rel="next"`` headers."""
        what = f"GET /repos/{self.repo}/{path}"
        url: str | None = self._url(path, query)
        items: list[Any] = []
        for _page in range(MAX_PAGES):
            if url is None:
                return items
            if not url.startswith(self.api_url + "/"):
                raise GitHubError(f"GitHub's next-page link for {what} points outside {self.api_url}; it was not "
                                  f"followed (the token is sent only to the API)")
            page, headers = self._send("GET", url, what)
            if not isinstance(page, list):
                raise GitHubError(f"GitHub's answer to {what} is not a list")
            items += page
            url = next_page_url(_header(headers, "link"))
        if url is None:
            return items
        raise GitHubError(f"{what} has more than {MAX_PAGES * PER_PAGE} items; the alert reads at most {MAX_PAGES} "
                          f"pages")

    def authenticated_login(self) -> str | None:
        """The login of the token's account (``GET /user``); None for an installation token, which
        GitHub answers 403 "Resource not accessible by integration" (any other refusal is raised)."""
        try:
            data, _headers = self._send("GET", f"{self.api_url}/user", "GET /user")
        except GitHubError as exc:
            if exc.status == 403 and exc.github_message == NO_USER_FOR_INTEGRATION:
                return None
            raise
        login = data.get("login") if isinstance(data, dict) else None
        if not isinstance(login, str) or not login:
            raise GitHubError("GitHub's answer to GET /user has no login")
        return login

    def open_issues(self, label: str | None = None) -> list[Issue]:
        """Open issues (pull requests skipped), with ``label`` when given, oldest first."""
        query: dict[str, Any] = {"state": "open", "per_page": PER_PAGE}
        if label:
            query["labels"] = label
        items = self._pages("issues", query)
        issues = [Issue.from_json(i) for i in items if isinstance(i, dict) and "pull_request" not in i]
        return sorted(issues, key=lambda i: i.number)

    def comments(self, number: int) -> list[Comment]:
        """Every comment on issue ``number``, oldest first."""
        items = self._pages(f"issues/{number}/comments", {"per_page": PER_PAGE})
        return sorted((Comment.from_json(c) for c in items if isinstance(c, dict)), key=lambda c: c.id)

    def create(self, title: str, body: str, labels: list[str]) -> Issue:
        return Issue.from_json(self._request("POST", "issues", {"title": title, "body": body, "labels": labels},
                                             expect=(201,)))

    def comment(self, number: int, body: str) -> str:
        """Comment on issue ``number``; returns the comment's URL."""
        data = self._request("POST", f"issues/{number}/comments", {"body": body}, expect=(201,))
        return str(data.get("html_url", "")) if isinstance(data, dict) else ""

    def close(self, number: int) -> Issue:
        return Issue.from_json(self._request("PATCH", f"issues/{number}",
                                             {"state": "closed", "state_reason": "completed"}))
