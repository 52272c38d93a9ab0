"""``harness alert``: keep one GitHub issue in step with the latest scheduled run.

* The run failed (any image's report has a ``fail`` finding or a failing verdict: a tier cell
  failed, a corruption or install check failed) and no alert issue is open: open one, titled
  ``ALERT_TITLE`` and labelled ``ALERT_LABEL``.
* It failed and the issue is open: comment on it (a repeated failure never opens a second issue).
* It passed and the issue is open: comment that it is green again and close the issue.
* It passed and no issue is open: nothing to do.

The issue is found by its label (and, should the label have been dropped, by its exact title).
The body holds the failing images x cells table, the evidence (versions, first traceback lines)
and the link to the run. Optionally the same news goes to a Slack-compatible webhook
(``{"text": ...}``).

The token comes from ``GITHUB_TOKEN`` only, is sent only in the Authorization header, and is
never printed or written; everything sent is passed through the reports' redaction as well. The
alert only reads the reports: it never writes into the report directory. Exit codes: 0 the issue
(and webhook) is up to date, whatever the run's verdict; 2 the alert could not be delivered
(missing token, rejected token, rate limit, no reports): one sentence on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.github_issues import GitHubError, GitHubIssues, Issue
from harness.report.aggregate import ImageReport, load_reports, render_markdown, run_url_from_env

ALERT_TITLE = "colab-ci: notebook checks failing"
ALERT_LABEL = "colab-ci-alert"
WEBHOOK_ENV = "COLAB_CI_ALERT_WEBHOOK"
MAX_BODY_CHARS = 60_000          # GitHub refuses issue and comment bodies over 65,536 characters
WEBHOOK_TIMEOUT_S = 15.0


@dataclass
class AlertOutcome:
    action: str                  # "opened" | "commented" | "closed" | "none"
    issue: Issue | None
    message: str                 # one line for the log


def _redact(text: str) -> str:
    from harness.report import redact

    return redact(text)


def _clip(text: str, limit: int = MAX_BODY_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 200].rstrip() + "\n\n... (cut: the full evidence is in the run's report artifacts)\n"


def issue_body(reports: list[ImageReport], run_url: str) -> str:
    intro = ("The scheduled colab-ci run found failing notebook checks. This issue is kept up to date by "
             "`harness alert`: each failing run comments here, and the first green run closes it.\n\n")
    return _clip(_redact(intro + render_markdown(reports, run_url, title="colab-ci")))


def failing_comment(reports: list[ImageReport], run_url: str) -> str:
    return _clip(_redact("Still failing.\n\n" + render_markdown(reports, run_url, title="colab-ci")))


def green_comment(reports: list[ImageReport], run_url: str) -> str:
    images = ", ".join(r.image for r in reports)
    where = f" in {run_url}" if run_url else ""
    return _redact(f"Green again{where}: every image passes ({images}). Closing.\n")


def _headline(reports: list[ImageReport]) -> str:
    failing = [r.image for r in reports if r.failing]
    if failing:
        return f"{len(failing)} of {len(reports)} image(s) failing ({', '.join(failing)})"
    return f"all {len(reports)} image(s) pass"


def find_alert_issue(client: GitHubIssues, title: str, label: str) -> Issue | None:
    """The open alert issue: by label (the title preferred among several), else by exact title."""
    labelled = client.open_issues(label)
    if labelled:
        return next((i for i in labelled if i.title == title), labelled[0])
    return next((i for i in client.open_issues() if i.title == title), None)


def sync_issue(reports: list[ImageReport], client: GitHubIssues, run_url: str = "",
               title: str = ALERT_TITLE, label: str = ALERT_LABEL) -> AlertOutcome:
    """Open, comment on, or close the alert issue to match ``reports``."""
    failing = any(r.failing for r in reports)
    issue = find_alert_issue(client, title, label)
    headline = _headline(reports)
    if failing and issue is None:
        created = client.create(title, issue_body(reports, run_url), [label])
        note = "" if label in created.labels else f" (GitHub dropped the label {label!r}: the token cannot set labels)"
        return AlertOutcome("opened", created, f"opened issue #{created.number} {created.html_url}: {headline}{note}")
    if failing and issue is not None:
        client.comment(issue.number, failing_comment(reports, run_url))
        return AlertOutcome("commented", issue, f"commented on issue #{issue.number} {issue.html_url}: {headline}")
    if issue is not None:
        client.comment(issue.number, green_comment(reports, run_url))
        closed = client.close(issue.number)
        return AlertOutcome("closed", closed, f"closed issue #{issue.number} {issue.html_url}: {headline}")
    return AlertOutcome("none", None, f"no open alert issue and nothing failing: {headline}")


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
    parser.add_argument("--report", type=Path, required=True, metavar="DIR",
                        help="a report.json, or a directory of per-image directories holding one each")
    parser.add_argument("--expect", nargs="*", default=[], metavar="IMAGE",
                        help="images that must have a report; one without counts as failing (so a run "
                             "that died never closes the issue)")
    parser.add_argument("--repo", default=None, metavar="OWNER/NAME",
                        help="repository whose issue is kept (default: $GITHUB_REPOSITORY)")
    parser.add_argument("--run-url", default=None,
                        help="link to the run (default: $GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID)")
    parser.add_argument("--webhook", default=None,
                        help=f"also post to this Slack-compatible webhook (default: ${WEBHOOK_ENV} when set)")
    parser.add_argument("--title", default=ALERT_TITLE, help="the alert issue's title (default: %(default)r)")
    parser.add_argument("--label", default=ALERT_LABEL, help="the alert issue's label (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """The ``alert`` verb: 0 delivered (whatever the verdict), 2 could not deliver."""
    env = os.environ
    repo = args.repo or env.get("GITHUB_REPOSITORY", "")
    run_url = args.run_url if args.run_url is not None else run_url_from_env(dict(env))
    webhook = args.webhook or env.get(WEBHOOK_ENV, "")
    try:
        reports = load_reports(args.report, args.expect)
        if not repo:
            raise HarnessError("no repository to alert: pass --repo OWNER/NAME or set GITHUB_REPOSITORY")
        client = GitHubIssues(repo, env.get("GITHUB_TOKEN", ""), env.get("GITHUB_API_URL") or None)
        outcome = sync_issue(reports, client, run_url, args.title, args.label)
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
