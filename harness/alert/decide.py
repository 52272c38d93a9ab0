"""The alert's decision: open, comment on, or close its own GitHub issue to match a run.

* it failed and no alert issue is open: open one, titled ``ALERT_TITLE`` and labelled ``ALERT_LABEL``;
* it failed and the issue is open: comment on it (a repeated failure never opens a second issue);
* it passed and the issue is open: close the issue *only if this run checked everything the issue
  was opened for* (its scope, harness/alert/marker.py); a narrower run comments "green for X, still
  not checked: Y" and leaves it open;
* it passed and no issue is open: nothing to do.

The alert adopts an open issue only when it is its own (``is_own_issue``): its label, its marker
first in the body, opened by the account the token writes as (``alert_author``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from harness.alert.github import ACTIONS_BOT, GitHubIssues, Issue
from harness.alert.marker import issue_scope, read_marker
from harness.alert.texts import failing_comment, green_comment, issue_body, narrower_comment
from harness.core.errors import HarnessError
from harness.report.aggregate_markdown import describe_subjects, headline
from harness.report.aggregate_model import RunReports, covered_subjects

ALERT_TITLE = "colab-ci: notebook checks failing"
ALERT_LABEL = "colab-ci-alert"


@dataclass
class AlertOutcome:
    action: str                  # "opened" | "commented" (still failing) | "kept-open" (green, but narrower
                                 # than the issue) | "closed" | "none"
    issue: Issue | None
    message: str                 # one line for the log



def alert_author(client: GitHubIssues, env: dict[str, str] | None = None) -> str:
    """The login the alert's issues are opened by: the token's account (``GET /user``); for an
    installation token under GitHub Actions, ``github-actions[bot]`` (the GITHUB_TOKEN's author).
    Anything else cannot be told: HarnessError asking for ``--author``."""
    login = client.authenticated_login()
    if login:
        return login
    env = dict(os.environ) if env is None else env
    if env.get("GITHUB_ACTIONS") == "true":
        return ACTIONS_BOT
    raise HarnessError("the token is an installation token (GitHub answers GET /user with 403) outside GitHub "
                       "Actions, so whose issues the alert may adopt cannot be told: pass --author LOGIN (the "
                       "app's bot, e.g. my-app[bot])")


def is_own_issue(issue: Issue, label: str, author: str) -> bool:
    """The alert's own issue: its label, its marker first in the body, opened by ``author``."""
    return (label in issue.labels and issue.author.casefold() == author.casefold()
            and read_marker(issue.body) is not None)


def find_alert_issue(client: GitHubIssues, title: str, label: str, author: str | None = None) -> Issue | None:
    """The open alert issue this alert opened (``is_own_issue``), the one titled ``title`` preferred
    among several, else the oldest; None when there is none (an issue with the same title opened by
    someone else, or without the marker, is never adopted). ``author`` is asked of GitHub
    (``alert_author``) only when a labelled issue carries a marker."""
    marked = [i for i in client.open_issues(label) if label in i.labels and read_marker(i.body) is not None]
    if not marked:
        return None
    author = author or alert_author(client)
    own = [i for i in marked if is_own_issue(i, label, author)]
    return next((i for i in own if i.title == title), own[0] if own else None)


def sync_issue(run: RunReports, client: GitHubIssues, run_url: str = "",
               title: str = ALERT_TITLE, label: str = ALERT_LABEL, appendix: str = "",
               author: str | None = None) -> AlertOutcome:
    """Open, comment on, or close the alert issue to match ``run`` (``appendix``: Markdown put under
    the report when the issue is opened or commented on as failing; ``author``: the login the token
    writes as, asked of GitHub when not given)."""
    issue = find_alert_issue(client, title, label, author)
    summary = headline(run)
    if run.failing and issue is None:
        created = client.create(title, issue_body(run, run_url, appendix), [label])
        note = "" if label in created.labels else f" (GitHub dropped the label {label!r}: the token cannot set labels)"
        return AlertOutcome("opened", created, f"opened issue #{created.number} {created.html_url}: {summary}{note}")
    if run.failing and issue is not None:
        client.comment(issue.number, failing_comment(run, run_url, appendix))
        return AlertOutcome("commented", issue, f"commented on issue #{issue.number} {issue.html_url}: {summary}")
    if issue is None:
        return AlertOutcome("none", None, f"no open alert issue and nothing failing: {summary}")
    scope = issue_scope(issue, client.comments(issue.number))
    missing = None if scope is None else scope - covered_subjects(run)
    if missing is None or missing:
        client.comment(issue.number, narrower_comment(run, run_url, missing))
        why = ("the issue records no scope" if missing is None
               else f"still not checked: {describe_subjects(missing)}")
        return AlertOutcome("kept-open", issue, f"commented on issue #{issue.number} {issue.html_url}: green, but "
                                                f"{why}; the issue stays open")
    client.comment(issue.number, green_comment(run, run_url))
    closed = client.close(issue.number)
    return AlertOutcome("closed", closed, f"closed issue #{issue.number} {issue.html_url}: {summary}")
