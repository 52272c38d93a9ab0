"""``harness alert``: keep one GitHub issue in step with the scheduled (and dispatched) runs.

A run fails when anything in its reports fails or could not tell
(harness/report/aggregate_model.py): an image's report.json (a tier cell, a replaced pre-installed
package, an install over budget, a check that crashed), a missing report, the browser smoke test
(smoke.json), the preflight's predicted corruption or failed install (preflight.json). Then:

* it failed and no alert issue is open: open one, titled ``ALERT_TITLE`` and labelled ``ALERT_LABEL``;
* it failed and the issue is open: comment on it (a repeated failure never opens a second issue);
* it passed and the issue is open: close the issue *only if this run checked everything the issue
  was opened for* (every image at every tier, or at every failing cell for a notebook without tiers,
  the smoke modes, the preflight images that failed, in
  this issue's opening run and every failing run since); a narrower run (a ``workflow_dispatch`` of
  one image, or of Tier 1 only) comments "green for X, still not checked: Y" and leaves it open;
* it passed and no issue is open: nothing to do.

What the issue was opened for is kept in the issue itself, machine-readable, so no state lives
anywhere else: the body and every comment the alert writes start with a hidden marker

    <!-- colab-ci-alert {"marker_version": 1, "event": "opened", "run": URL,
                         "failing": [["image", NAME, "tier1"], ["image", NAME, "cell 4 [train]"],
                                     ["smoke", "local", ""], ...],
                         "covered": [...]} -->

(``event``: ``opened`` | ``failing`` | ``green-partial`` | ``closed``; subjects are
``aggregate_model.Subject``: an image's part is a tier the notebook publishes or declares, or, for a
notebook without tiers, a cell). The issue's scope is the union of ``failing`` over the body's marker and the
markers of comments written by the issue's author (the alert's own identity; markers in anyone
else's comments are ignored, and only a marker that starts the text counts, so quoted notebook
output cannot forge one). A marker that names no readable subject gives no known scope: such an
issue is never closed by the alert; it says so, and a person closes it.

The alert adopts an open issue only when it is its own: it carries the alert's label, its body
starts with the marker above, and it was opened by the account the token belongs to (``GET /user``;
for an installation token, which has no user, ``github-actions[bot]`` under GitHub Actions, or
``--author``). An issue with the same title opened by a person, or without the marker, is left
alone and a new one is opened. Among several of its own, the one with the alert's title (else the
oldest) is kept up to date. The body holds the failing images x cells table, the smoke and
preflight verdicts, the evidence and the link to the run. Optionally the same news goes to a Slack-compatible webhook (``{"text": ...}``).

The token comes from ``GITHUB_TOKEN`` only, is sent only in the Authorization header, and is
never printed or written; everything sent is passed through the reports' redaction as well. The
alert only reads the reports: it never writes into the report folder. Exit codes: 0 the issue
(and webhook) is up to date, whatever the run's verdict; 2 the alert could not be delivered
(missing token, rejected token, rate limit, no reports): one sentence on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.alert.github import ACTIONS_BOT, Comment, GitHubError, GitHubIssues, Issue
from harness.cli.aggregate import add_report_arguments   # until the alert verb's parsing moves to harness/cli/
from harness.core.errors import HarnessError
from harness.report.aggregate_markdown import describe_subjects, headline, render_markdown
from harness.report.aggregate_model import RunReports, Subject, covered_subjects, failing_subjects
from harness.report.github import run_url_from_env
from harness.report.readers import load_run

ALERT_TITLE = "colab-ci: notebook checks failing"
ALERT_LABEL = "colab-ci-alert"
WEBHOOK_ENV = "COLAB_CI_ALERT_WEBHOOK"
MAX_BODY_CHARS = 60_000          # GitHub refuses issue and comment bodies over 65,536 characters
WEBHOOK_TIMEOUT_S = 15.0
MARKER_VERSION = 1
_MARKER = re.compile(r"<!-- colab-ci-alert (\{.*?\}) -->")


@dataclass
class AlertOutcome:
    action: str                  # "opened" | "commented" (still failing) | "kept-open" (green, but narrower
                                 # than the issue) | "closed" | "none"
    issue: Issue | None
    message: str                 # one line for the log


def _redact(text: str) -> str:
    from harness.report import redact

    return redact(text)


def _clip(text: str, limit: int = MAX_BODY_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 200].rstrip() + "\n\n... (cut: the full evidence is in the run's report artifacts)\n"


# -- the marker: what the issue is for, in the issue ----------------------------------------------

def render_marker(event: str, run_url: str, failing: set[Subject], covered: set[Subject]) -> str:
    """The hidden first line of the body and of each comment (see the module docstring)."""
    from harness.report import redact_data

    data = redact_data({"marker_version": MARKER_VERSION, "event": event, "run": run_url,
                        "failing": [s.to_json() for s in sorted(failing)],
                        "covered": [s.to_json() for s in sorted(covered)]})
    # ">" only occurs inside JSON strings; escaped, no value can end the HTML comment early.
    return "<!-- colab-ci-alert " + json.dumps(data, separators=(",", ":")).replace(">", "\\u003e") + " -->"


def read_marker(text: str) -> dict[str, Any] | None:
    """The marker a body or comment starts with, or None (none, malformed, another version). Only the
    start counts: the rendered report below it quotes notebook output, which must not be able to
    speak for the alert."""
    match = _MARKER.match((text or "").lstrip())
    if match is None:
        return None
    try:
        data = json.loads(match.group(1))
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("marker_version") == MARKER_VERSION else None


def issue_scope(issue: Issue, comments: list[Comment]) -> set[Subject] | None:
    """Everything the issue stands for: ``failing`` of the body's marker and of the markers of the
    comments its author wrote. None when the body has no marker (scope unknown)."""
    opened = read_marker(issue.body)
    if opened is None:
        return None
    markers = [opened] + [m for c in comments if c.author == issue.author and (m := read_marker(c.body))]
    scope: set[Subject] = set()
    for marker in markers:
        for item in marker.get("failing") or []:
            try:
                scope.add(Subject.from_json(item))
            except ValueError:
                continue
    return scope or None   # a marker that names nothing readable is no scope: never close on it


# -- texts ----------------------------------------------------------------------------------------

def _with_marker(marker: str, text: str) -> str:
    """The marker first, then the text clipped to what is left of GitHub's limit (the marker is never cut)."""
    return marker + "\n" + _clip(_redact(text), MAX_BODY_CHARS - len(marker) - 1)


def issue_body(run: RunReports, run_url: str, appendix: str = "") -> str:
    intro = ("A colab-ci run found failing notebook checks. This issue is kept up to date by `harness alert`: "
             "each failing run comments here, and the first green run that checks everything this issue "
             "was opened for closes it.\n\n")
    marker = render_marker("opened", run_url, failing_subjects(run), covered_subjects(run))
    return _with_marker(marker, intro + render_markdown(run, run_url, title="colab-ci") + appendix)


def failing_comment(run: RunReports, run_url: str, appendix: str = "") -> str:
    marker = render_marker("failing", run_url, failing_subjects(run), covered_subjects(run))
    return _with_marker(marker, "Still failing.\n\n" + render_markdown(run, run_url, title="colab-ci") + appendix)


def read_appendix(path: Path | None) -> str:
    """Markdown to put under the report in the issue (``--append``: the history's trends); a missing
    file is one line saying so, never a failed alert."""
    if path is None:
        return ""
    try:
        return "\n\n" + path.read_text(encoding="utf-8").strip() + "\n"
    except OSError as exc:
        return f"\n\n(no trends this time: {path} could not be read: {exc.strerror or exc})\n"


def green_comment(run: RunReports, run_url: str) -> str:
    covered = covered_subjects(run)
    where = f" in {run_url}" if run_url else ""
    marker = render_marker("closed", run_url, set(), covered)
    return _with_marker(marker, f"Green again{where}: every check passes, and this run checked everything this "
                                f"issue was opened for ({describe_subjects(covered, brief=True)}). Closing.\n")


def narrower_comment(run: RunReports, run_url: str, missing: set[Subject] | None) -> str:
    covered = covered_subjects(run)
    where = f" in {run_url}" if run_url else ""
    marker = render_marker("green-partial", run_url, set(), covered)
    if missing is None:
        text = (f"Green{where} for {describe_subjects(covered, brief=True)}. This issue's colab-ci record names "
                f"nothing this colab-ci can check, so the alert leaves it open: close it by hand if this run covers "
                f"it.\n")
    else:
        text = (f"Green{where} for {describe_subjects(covered, brief=True)}; still not checked: {describe_subjects(missing)}. "
                f"The issue stays open until one run checks everything it was opened for (the monthly "
                f"schedule does, or a workflow_dispatch of those images and tiers).\n")
    return _with_marker(marker, text)


# -- the issue ------------------------------------------------------------------------------------

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


def post_webhook(url: str, text: str, timeout_s: float = WEBHOOK_TIMEOUT_S) -> None:
    """POST ``{"text": text}`` (Slack's incoming-webhook shape, which most chat tools accept)."""
    request = urllib.request.Request(url, data=json.dumps({"text": _redact(text)}).encode("utf-8"),
                                     method="POST", headers={"Content-Type": "application/json",
                                                             "User-Agent": "colab-ci-alert"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise HarnessError(f"the webhook answered {exc.code}; the issue was updated, the chat message was not sent") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HarnessError(f"the webhook could not be reached ({reason}); the issue was updated, the chat "
                           f"message was not sent") from None


def webhook_text(outcome: AlertOutcome, run_url: str) -> str:
    run = f" Run: {run_url}" if run_url else ""
    if outcome.action == "closed":
        return f"colab-ci is green again; closed {outcome.issue.html_url if outcome.issue else 'the alert issue'}.{run}"
    return f"colab-ci: {outcome.message}.{run}"


# -- CLI ------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_report_arguments(parser, "counts as failing (so a run that died never closes the issue)")
    parser.add_argument("--repo", default=None, metavar="OWNER/NAME",
                        help="repository whose issue is kept (default: $GITHUB_REPOSITORY)")
    parser.add_argument("--run-url", default=None,
                        help="link to the run (default: $GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID)")
    parser.add_argument("--webhook", default=None,
                        help=f"also post to this Slack-compatible webhook (default: ${WEBHOOK_ENV} when set)")
    parser.add_argument("--title", default=ALERT_TITLE, help="the alert issue's title (default: %(default)r)")
    parser.add_argument("--label", default=ALERT_LABEL, help="the alert issue's label (default: %(default)s)")
    parser.add_argument("--author", default=None, metavar="LOGIN",
                        help="the account the token writes as, whose labelled, marked issue the alert adopts "
                             "(default: GET /user's login; github-actions[bot] for GitHub Actions' GITHUB_TOKEN)")
    parser.add_argument("--json", action="store_true",
                        help="print what was done as JSON (action, issue, message) instead of a line")
    parser.add_argument("--append", type=Path, default=None, metavar="FILE",
                        help="Markdown put under the report in the issue and its failing comments "
                             "(e.g. the trends of `colab-ci history`: history.md)")


def run(args: argparse.Namespace) -> int:
    """The ``alert`` verb: 0 delivered (whatever the verdict), 2 could not deliver."""
    env = os.environ
    repo = args.repo or env.get("GITHUB_REPOSITORY", "")
    run_url = args.run_url if args.run_url is not None else run_url_from_env(dict(env))
    webhook = args.webhook or env.get(WEBHOOK_ENV, "")
    try:
        reports = load_run(args.report, args.expect)
        if not repo:
            raise HarnessError("no repository to alert: pass --repo OWNER/NAME or set GITHUB_REPOSITORY")
        client = GitHubIssues(repo, env.get("GITHUB_TOKEN", ""), env.get("GITHUB_API_URL") or None)
        outcome = sync_issue(reports, client, run_url, args.title, args.label, read_appendix(args.append),
                             args.author)
        if args.json:
            issue = ({"number": outcome.issue.number, "url": outcome.issue.html_url, "state": outcome.issue.state}
                     if outcome.issue else None)
            print(json.dumps({"action": outcome.action, "issue": issue, "message": _redact(outcome.message),
                              "run_verdict": reports.status}))
        else:
            print(_redact(f"alert: {outcome.message}"))
        if webhook and outcome.action != "none":
            post_webhook(webhook, webhook_text(outcome, run_url))
            print("alert: webhook notified")
    except GitHubError as exc:
        print(_redact(f"alert: {exc} (the run's reports are kept as they are)"), file=sys.stderr)
        return 2
    except HarnessError as exc:
        print(_redact(f"alert: {exc}"), file=sys.stderr)
        return 2
    return 0
