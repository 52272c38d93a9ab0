"""``harness alert``: keep one GitHub issue in step with the scheduled (and dispatched) runs.

A run fails when anything in its reports fails or could not tell (harness/report/aggregate_model.py): an
image's report.json (a tier cell, a replaced pre-installed package, an install over budget, a check
that crashed), a missing report, the browser smoke test (smoke.json), the preflight's predicted
corruption or failed install (preflight.json). Then:

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
``aggregate.Subject``: an image's part is a tier the notebook publishes or declares, or, for a
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
import sys
from pathlib import Path

from harness.alert.decide import ALERT_LABEL, ALERT_TITLE, sync_issue
from harness.alert.github import GitHubError, GitHubIssues
from harness.alert.texts import read_appendix
from harness.alert.webhook import WEBHOOK_ENV, post_webhook, webhook_text
from harness.cli.aggregate import add_report_arguments
from harness.core.errors import HarnessError
from harness.core.secrets import redact
from harness.report.github import run_url_from_env
from harness.report.readers import load_run


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
        reports = load_run(args.report, args.expect, dict(args.skipped))
        if not repo:
            raise HarnessError("no repository to alert: pass --repo OWNER/NAME or set GITHUB_REPOSITORY")
        client = GitHubIssues(repo, env.get("GITHUB_TOKEN", ""), env.get("GITHUB_API_URL") or None)
        outcome = sync_issue(reports, client, run_url, args.title, args.label, read_appendix(args.append),
                             args.author)
        if args.json:
            issue = ({"number": outcome.issue.number, "url": outcome.issue.html_url, "state": outcome.issue.state}
                     if outcome.issue else None)
            print(json.dumps({"action": outcome.action, "issue": issue, "message": redact(outcome.message),
                              "run_verdict": reports.status}))
        else:
            print(redact(f"alert: {outcome.message}"))
        if webhook and outcome.action != "none":
            post_webhook(webhook, webhook_text(outcome, run_url))
            print("alert: webhook notified")
    except GitHubError as exc:
        print(redact(f"alert: {exc} (the run's reports are kept as they are)"), file=sys.stderr)
        return 2
    except HarnessError as exc:
        print(redact(f"alert: {exc}"), file=sys.stderr)
        return 2
    return 0
