"""``harness alert`` against a local server that speaks GitHub's issues API (tests/harness/fake_github.py).

Each workflow run's merged artifacts are built at test time from real runs (tests/harness/alert_runs.py):
per-image ``report.json`` from recorded executions judged by the real checks and written by the real
writer, ``smoke/smoke.json`` from recorded real smoke runs, ``preflight/`` from the real preflight.
The CLI runs as a subprocess, so everything it prints is captured, with a token that must appear
nowhere but in the Authorization header.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from harness.alert.decide import ALERT_LABEL, ALERT_TITLE, sync_issue
from harness.alert.github import GitHubError, GitHubIssues
from harness.alert.marker import read_marker
from harness.report.readers import load_run
from tests.harness.alert_runs import (
    CRASHED_CHECK,
    FAILING,
    GREEN,
    NO_TIERS_FAILS,
    NO_TIERS_PASSES,
    TIER1_ONLY,
)
from tests.harness.fake_github import (
    BOT,
    FORBIDDEN,
    RATE_LIMITED,
    REPOSITORY_ID,
    SECONDARY_LIMIT,
    FakeGitHub,
    Webhook,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
REPO = "octo-org/colab-ci"
TOKEN = "ghs_fakeTOKENforTHEalertTESTS0123456789abcd"   # looks like an installation token
RUN_URL = "https://github.com/octo-org/colab-ci/actions/runs/987654321"
A, B = "2025-11-24-13d109b-cpu", "2026-08-19-a724079-cpu"
ALL_TIERS = ("tier1", "tier2", "tier3")


def _env(fake: FakeGitHub | None, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "COLAB_CI_")) and "proxy" not in k.lower()}
    # As in the workflow's alert job: under GitHub Actions, with its GITHUB_TOKEN (the fake's default account).
    env.update({"PYTHONPATH": str(REPO_ROOT), "NO_PROXY": "127.0.0.1", "GITHUB_REPOSITORY": REPO,
                "GITHUB_ACTIONS": "true"})
    if fake is not None:
        env["GITHUB_API_URL"] = fake.url
    if token is not None:
        env["GITHUB_TOKEN"] = token
    env.update(extra)
    return env


def alert(reports: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "alert", "--report", str(reports), *args],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def marker_of(text: str) -> dict:
    marker = read_marker(text)
    assert marker is not None, text[:300]
    return marker


def image_subjects(image: str, tiers: tuple[str, ...] = ALL_TIERS) -> list[list[str]]:
    return [["image", image, tier] for tier in tiers]


def alert_issues(github: FakeGitHub) -> list[dict]:
    return [i for i in github.open_issues() if i["title"] == ALERT_TITLE]


# -- open, comment, close -------------------------------------------------------------------------

def test_first_failure_opens_second_comments_green_closes(runs):
    failing = runs("failing", {A: FAILING, B: GREEN})
    green = runs("green", {A: GREEN, B: GREEN})
    before = snapshot(failing)
    with FakeGitHub(TOKEN, REPO) as github:
        github.add_pull_request(ALERT_TITLE, [ALERT_LABEL])   # a PR with the label: never the alert issue
        github.add_issue("unrelated bug", ["bug"])

        first = alert(failing, _env(github), "--run-url", RUN_URL)
        assert first.returncode == 0, first.stderr
        [issue] = alert_issues(github)
        assert [lab["name"] for lab in issue["labels"]] == [ALERT_LABEL]
        assert f"opened issue #{issue['number']} {issue['html_url']}" in first.stdout
        body = issue["body"]
        # The images x cells table, the other checks, the evidence, the run link.
        assert "| image | verdict | python | numpy | torch | install | model | tier1 |" in body
        assert f"| {A} | ❌ fail | 3.11.7 | 2.0.2 | absent | ❌ | ❌ | ❌ |" in body
        assert f"| {B} | ✅ pass | 3.11.7 | 2.4.6 | 2.13.0+cpu | ✅ | ✅ | ✅ |" in body
        assert "| smoke (local) | ✅ pass | Tier 1 summary in the page: tier1: PASS (12 table rows) |" in body
        assert "| preflight: tiny-image | ✅ ok |" in body
        assert "upgraded numpy 2.0.2 -> 2.1.3 on disk while the kernel had numpy 2.0.2" in body
        assert "----> 1 np.char.center(np.array(['a']), 5)" in body        # first traceback lines
        assert RUN_URL in body
        # What the issue was opened for, machine-readable, first in the body.
        marker = marker_of(body)
        assert (marker["event"], marker["run"]) == ("opened", RUN_URL)
        assert marker["failing"] == image_subjects(A, ("tier1",))   # the only tier A's notebook publishes
        assert ["image", B, "tier3"] in marker["covered"] and ["smoke", "local", ""] in marker["covered"]

        second = alert(failing, _env(github), "--run-url", RUN_URL + "1")
        assert second.returncode == 0, second.stderr
        assert len(alert_issues(github)) == 1, "no second issue"
        assert f"commented on issue #{issue['number']}" in second.stdout
        [comment] = github.comments[issue["number"]]
        assert marker_of(comment["body"])["event"] == "failing"
        assert "Still failing." in comment["body"] and RUN_URL + "1" in comment["body"] and A in comment["body"]

        closed = alert(green, _env(github), "--run-url", RUN_URL + "2")
        assert closed.returncode == 0, closed.stderr
        assert f"closed issue #{issue['number']}" in closed.stdout
        assert github.issues[issue["number"]]["state"] == "closed"
        assert github.issues[issue["number"]]["state_reason"] == "completed"
        last = github.comments[issue["number"]][-1]["body"]
        assert marker_of(last)["event"] == "closed"
        assert f"Green again in {RUN_URL}2: every check passes, and this run checked everything" in last

        quiet = alert(green, _env(github))
        assert quiet.returncode == 0 and "nothing failing" in quiet.stdout
        again = alert(failing, _env(github))
        assert "opened issue" in again.stdout, "after closing, a new failure opens a new issue"

        # The real request shapes: methods, paths, headers, JSON bodies.
        methods = [(r.method, r.path) for r in github.requests]
        n = issue["number"]
        assert ("POST", f"/repos/{REPO}/issues") in methods
        assert ("POST", f"/repos/{REPO}/issues/{n}/comments") in methods
        assert ("GET", f"/repos/{REPO}/issues/{n}/comments") in methods      # read back before closing
        assert ("PATCH", f"/repos/{REPO}/issues/{n}") in methods
        for request in github.requests:
            assert request.headers["authorization"] == f"Bearer {TOKEN}"
            assert request.headers["accept"] == "application/vnd.github+json"
            assert request.headers["x-github-api-version"] == "2022-11-28"
            if request.method == "GET" and request.path.endswith("/issues"):
                assert request.query["state"] == ["open"] and request.query["per_page"] == ["100"]
        create = next(r for r in github.requests if r.method == "POST" and r.path.endswith("/issues"))
        assert set(create.body) == {"title", "body", "labels"} and create.body["labels"] == [ALERT_LABEL]
        assert create.headers["content-type"] == "application/json"
        close = next(r for r in github.requests if r.method == "PATCH")
        assert close.body == {"state": "closed", "state_reason": "completed"}
        listing = next(r for r in github.requests if r.method == "GET")
        assert listing.query["labels"] == [ALERT_LABEL]

    assert snapshot(failing) == before, "the alert must not touch the reports"
    for done in (first, second, closed, quiet, again):
        assert TOKEN not in done.stdout + done.stderr


# -- smoke and preflight fail the run too ---------------------------------------------------------

def test_a_failing_smoke_alone_opens_the_issue(runs):
    only_smoke = runs("smoke-fails", {A: GREEN, B: GREEN}, smoke="broken_model")
    with FakeGitHub(TOKEN, REPO) as github:
        done = alert(only_smoke, _env(github), "--run-url", RUN_URL)
        assert done.returncode == 0, done.stderr
        assert "opened issue #1" in done.stdout and "all 2 image(s) pass; smoke fails; preflight passes" in done.stdout
        body = github.issues[1]["body"]
        assert marker_of(body)["failing"] == [["smoke", "local", ""]]
        assert "## colab-ci: all 2 image(s) pass; smoke fails; preflight passes" in body
        assert "| smoke (local) | ❌ fail | cell 5 [model] failed: MODEL NOT LOADED" in body
        assert "### smoke test: ❌ fail" in body and "smoke-local-failure.png" in body
        # still failing: a comment, not a second issue; then a passing smoke (and everything else) closes it
        alert(only_smoke, _env(github))
        assert len(alert_issues(github)) == 1 and len(github.comments[1]) == 1
        closed = alert(runs("smoke-passes", {A: GREEN, B: GREEN}), _env(github))
        assert "closed issue #1" in closed.stdout, closed.stdout + closed.stderr


def test_a_predicted_corruption_opens_and_keeps_the_issue(runs):
    corrupts = runs("preflight-corrupts", {A: GREEN, B: GREEN}, preflight="corrupts")
    with FakeGitHub(TOKEN, REPO) as github:
        opened = alert(corrupts, _env(github))
        assert opened.returncode == 0, opened.stderr
        assert "preflight predicts a corruption or a failed install" in opened.stdout
        body = github.issues[1]["body"]
        assert marker_of(body)["failing"] == [["preflight", "tiny-image", ""]]
        assert ("| preflight: tiny-image | ❌ corrupts | requirements: colabci-right: replaces tabulate "
                "0.8.10 -> 0.9.0 |") in body
        assert "chain: colabci-right -> tabulate>=0.9.0 -> tabulate 0.9.0" in body
        kept = alert(corrupts, _env(github))
        assert "commented on issue #1" in kept.stdout and github.issues[1]["state"] == "open"
        closed = alert(runs("preflight-ok", {A: GREEN, B: GREEN}), _env(github))
        assert "closed issue #1" in closed.stdout, closed.stdout + closed.stderr


# -- could not tell is failing ----------------------------------------------------------------------

def test_a_crashed_check_opens_the_issue_as_could_not_tell(runs):
    crashed = runs("crashed", {A: CRASHED_CHECK, B: GREEN})
    with FakeGitHub(TOKEN, REPO) as github:
        done = alert(crashed, _env(github))
        assert done.returncode == 0, done.stderr
        assert "1 of 2 image(s) failing (1 could not tell)" in done.stdout
        body = github.issues[1]["body"]
        assert f"| {A} | ❓ could not tell |" in body
        assert "**install-time** (could not tell) (the run): The install-time check crashed (TypeError" in body
        assert "TypeError: '<=' not supported between instances of 'float' and 'NoneType'" in body   # its traceback
        assert marker_of(body)["failing"] == image_subjects(A)


def test_colab_not_checked_in_the_smoke_test_opens_the_issue(runs):
    unchecked = runs("colab-unreachable", {A: GREEN, B: GREEN}, smoke="colab_unreachable")
    with FakeGitHub(TOKEN, REPO) as github:
        done = alert(unchecked, _env(github))
        assert "opened issue #1" in done.stdout and "smoke could not tell" in done.stdout
        body = github.issues[1]["body"]
        assert "| smoke (colab) | ❓ not checked | not checked: colab.research.google.com is unreachable" in body
        assert marker_of(body)["failing"] == [["smoke", "colab", ""]]


def test_a_preflight_that_could_not_reach_the_index_opens_the_issue(runs):
    unchecked = runs("preflight-unchecked", {A: GREEN, B: GREEN}, preflight="unchecked")
    with FakeGitHub(TOKEN, REPO) as github:
        done = alert(unchecked, _env(github))
        assert "opened issue #1" in done.stdout and "preflight could not check" in done.stdout
        body = github.issues[1]["body"]
        assert "| preflight: tiny-image | ❓ could not check | requirements: colabci-left: could not check: pip could " \
               "not reach the package index (http://127.0.0.1:9/simple/colabci-left/: [Errno 111] Connection refused) |" in body


def test_an_unreadable_report_opens_the_issue_instead_of_being_skipped(runs):
    truncated = runs("truncated", {A: GREEN, B: GREEN})
    report = truncated / A / "report.json"
    report.write_bytes(report.read_bytes()[:500])          # the job was killed while writing it
    with FakeGitHub(TOKEN, REPO) as github:
        done = alert(truncated, _env(github))
        assert done.returncode == 0, done.stderr
        assert "1 of 2 image(s) failing (1 could not tell)" in done.stdout
        body = github.issues[1]["body"]
        assert f"| {A} | ❓ could not tell | ? | ? | ? |" in body
        assert f"* {report}: not JSON (" in body


def test_an_image_without_a_report_keeps_the_issue_open(runs):
    # A green run in which one image's job died before writing its report must not close the issue.
    green = runs("green", {A: GREEN, B: GREEN})
    with FakeGitHub(TOKEN, REPO) as github:
        alert(runs("failing", {A: FAILING, B: GREEN}), _env(github))
        done = alert(green, _env(github), "--expect", A, B, "colab-runtime", "smoke", "preflight")
        assert done.returncode == 0, done.stderr
        assert "commented on issue #1" in done.stdout and "3 image(s) failing (1 could not tell)" in done.stdout
        assert github.issues[1]["state"] == "open"
        comment = github.comments[1][0]["body"]
        assert "| colab-runtime | ❓ could not tell |" in comment and "colab-runtime has no report.json" in comment
        # colab-runtime now belongs to what the issue waits for: a run without it cannot close it ...
        done = alert(green, _env(github), "--expect", A, B, "smoke", "preflight")
        assert "green, but still not checked: colab-runtime (tier1, tier2, tier3)" in done.stdout
        # ... a run with its report can
        full = runs("full", {A: GREEN, B: GREEN, "colab-runtime": GREEN})
        done = alert(full, _env(github), "--expect", A, B, "colab-runtime", "smoke", "preflight")
        assert "closed issue #1" in done.stdout, done.stdout + done.stderr


def test_an_expected_smoke_or_preflight_without_its_file_keeps_the_issue_open(runs):
    images_only = runs("images-only", {A: GREEN, B: GREEN}, smoke=None, preflight=None)
    with FakeGitHub(TOKEN, REPO) as github:
        done = alert(images_only, _env(github), "--expect", A, B, "smoke", "preflight")
        assert "opened issue #1" in done.stdout
        body = github.issues[1]["body"]
        assert "no smoke.json: the smoke test ended before writing one" in body
        assert "no preflight.json: the preflight ended before writing one" in body
        assert marker_of(body)["failing"] == [["preflight", "", ""], ["smoke", "local", ""]]


# -- only a run that covers what the issue was opened for closes it --------------------------------

def test_a_narrower_green_run_comments_instead_of_closing(runs):
    with FakeGitHub(TOKEN, REPO) as github:
        # The template could not be told on A: the issue waits for every tier the template declares.
        alert(runs("failing", {A: CRASHED_CHECK, B: GREEN}, smoke="broken_model"), _env(github), "--run-url", RUN_URL)
        assert marker_of(github.issues[1]["body"])["failing"] == [*image_subjects(A), ["smoke", "local", ""]]
        # People discuss the issue (120 comments: the alert reads them page by page), and one pastes a
        # marker: only the alert's own comments speak for it.
        for n in range(119):
            github.add_comment(1, f"comment {n}", author="octocat")
        github.add_comment(1, '<!-- colab-ci-alert {"marker_version":1,"event":"failing","run":"",'
                              '"failing":[["image","imaginary-image","tier1"]],"covered":[]} -->', author="octocat")

        one_image = alert(runs("dispatch-b", {B: GREEN}), _env(github), "--run-url", RUN_URL + "1")
        assert one_image.returncode == 0, one_image.stderr
        assert (f"commented on issue #1 {github.issues[1]['html_url']}: green, but still not checked: "
                f"{A} (tier1, tier2, tier3); the issue stays open") in one_image.stdout
        comment = github.comments[1][-1]["body"]
        assert marker_of(comment)["event"] == "green-partial" and marker_of(comment)["failing"] == []
        assert (f"Green in {RUN_URL}1 for {B} (tier1, tier2, tier3), smoke (local), preflight (as a whole, "
                f"tiny-image); still not checked: {A} (tier1, tier2, tier3).") in comment

        tier1_only = alert(runs("dispatch-a-tier1", {A: TIER1_ONLY}), _env(github))
        assert f"green, but still not checked: {A} (tier2, tier3)" in tier1_only.stdout
        assert github.issues[1]["state"] == "open"

        full = alert(runs("scheduled", {A: GREEN, B: GREEN}), _env(github))
        assert "closed issue #1" in full.stdout, full.stdout + full.stderr   # the pasted marker is ignored

        # The comments were read through GitHub's pagination: the Link header's next page, by repository id.
        pages = [r for r in github.requests if r.method == "GET" and r.path.endswith("/issues/1/comments")]
        assert f"/repositories/{REPOSITORY_ID}/issues/1/comments" in {r.path for r in pages}
        assert {r.query.get("page", ["1"])[0] for r in pages} == {"1", "2"}


def test_later_failures_widen_what_the_issue_waits_for(runs):
    with FakeGitHub(TOKEN, REPO) as github:
        alert(runs("a-fails", {A: FAILING, B: GREEN}), _env(github))
        alert(runs("b-fails", {A: GREEN, B: FAILING}), _env(github))          # still failing, now B
        assert marker_of(github.comments[1][-1]["body"])["failing"] == image_subjects(B, ("tier1",))
        narrow = alert(runs("dispatch-a", {A: GREEN}), _env(github))
        assert f"still not checked: {B} (tier1)" in narrow.stdout
        assert "closed issue #1" in alert(runs("scheduled", {A: GREEN, B: GREEN}), _env(github)).stdout


def test_an_issue_whose_marker_names_nothing_is_left_for_a_person_to_close(runs):
    with FakeGitHub(TOKEN, REPO) as github:
        github.add_issue(ALERT_TITLE, [ALERT_LABEL], body='<!-- colab-ci-alert {"marker_version":1,"event":"opened",'
                                                          '"run":"","failing":[],"covered":[]} -->\nold')
        done = alert(runs("green", {A: GREEN, B: GREEN}), _env(github))
        assert "green, but the issue records no scope; the issue stays open" in done.stdout
        assert github.issues[1]["state"] == "open"
        assert "record names nothing this colab-ci can check" in github.comments[1][-1]["body"]


# -- the alert adopts only its own issue ------------------------------------------------------------

OWN_MARKER = ('<!-- colab-ci-alert {"marker_version":1,"event":"opened","run":"",'
              '"failing":[["image","2025-11-24-13d109b-cpu","tier1"]],"covered":[]} -->\nearlier run')


@pytest.mark.parametrize(("labels", "body", "author"), [
    ([ALERT_LABEL], OWN_MARKER, "octocat"),                            # the alert's title, label, marker; a person's
    ([ALERT_LABEL], "The notebook fails on Colab, see the run.", BOT),  # the alert's account, no marker
    ([], OWN_MARKER, BOT),                                              # no label
], ids=["someone-else", "no-marker", "no-label"])
def test_an_issue_that_is_not_the_alerts_own_is_not_adopted(runs, labels, body, author):
    with FakeGitHub(TOKEN, REPO) as github:
        foreign = github.add_issue(ALERT_TITLE, labels, body=body, author=author)
        done = alert(runs("failing", {A: FAILING, B: GREEN}), _env(github))
        assert done.returncode == 0, done.stderr
        assert f"opened issue #{foreign['number'] + 1}" in done.stdout
        assert github.comments[foreign["number"]] == [] and foreign["state"] == "open" and foreign["body"] == body
        # a green run leaves the foreign issue alone too, and closes the alert's own
        closed = alert(runs("green", {A: GREEN, B: GREEN}), _env(github))
        assert f"closed issue #{foreign['number'] + 1}" in closed.stdout, closed.stdout + closed.stderr
        assert github.comments[foreign["number"]] == [] and foreign["state"] == "open"


def test_a_marker_whose_json_breaks_its_schema_is_no_marker():
    # harness/core/schemas/alert-marker.schema.json: a field of the wrong type, or another version,
    # and the issue is not the alert's (never adopted, never closed on it).
    assert read_marker(OWN_MARKER)["failing"] == [["image", "2025-11-24-13d109b-cpu", "tier1"]]
    assert read_marker(OWN_MARKER.replace('"failing":[["image","2025-11-24-13d109b-cpu","tier1"]]',
                                          '"failing":"image"')) is None
    assert read_marker(OWN_MARKER.replace('"event":"opened"', '"event":7')) is None
    assert read_marker(OWN_MARKER.replace('"marker_version":1', '"marker_version":2')) is None


def test_the_alerts_own_issue_is_adopted_under_actions_and_with_a_personal_token(runs):
    failing = runs("failing", {A: FAILING, B: GREEN})
    with FakeGitHub(TOKEN, REPO) as github:                  # GITHUB_TOKEN: GET /user is refused, 403
        github.add_issue(ALERT_TITLE, [ALERT_LABEL], body=OWN_MARKER, author="octocat")
        own = github.add_issue(ALERT_TITLE, [ALERT_LABEL], body=OWN_MARKER, author=BOT)
        done = alert(failing, _env(github))
        assert f"commented on issue #{own['number']}" in done.stdout, done.stdout + done.stderr
        assert len(github.open_issues()) == 2
        assert ("GET", "/user") in [(r.method, r.path) for r in github.requests]
        # An installation token outside Actions cannot say who it is: exit 2 unless --author says it.
        outside = {k: v for k, v in _env(github).items() if k != "GITHUB_ACTIONS"}
        unsure = alert(failing, outside)
        assert unsure.returncode == 2 and "pass --author LOGIN" in unsure.stderr
        told = alert(failing, outside, "--author", BOT)
        assert f"commented on issue #{own['number']}" in told.stdout, told.stderr
    with FakeGitHub(TOKEN, REPO, login="octocat") as github:   # a personal token: GET /user says octocat
        github.add_issue(ALERT_TITLE, [ALERT_LABEL], body=OWN_MARKER, author=BOT)
        mine = github.add_issue(ALERT_TITLE, [ALERT_LABEL], body=OWN_MARKER, author="octocat")
        done = alert(failing, _env(github))
        assert f"commented on issue #{mine['number']}" in done.stdout, done.stdout + done.stderr
        assert github.comments[mine["number"]][0]["user"]["login"] == "octocat"


# -- a notebook without tiers ------------------------------------------------------------------------

def test_a_notebook_without_tiers_gets_an_alert_for_its_cells_and_a_green_run_closes_it(runs):
    with FakeGitHub(TOKEN, REPO) as github:
        opened = alert(runs("failing", {A: NO_TIERS_FAILS, B: NO_TIERS_PASSES}), _env(github), "--run-url", RUN_URL)
        assert opened.returncode == 0, opened.stderr
        [issue] = alert_issues(github)
        marker = marker_of(issue["body"])
        assert marker["failing"] == [["image", A, "cell 4 [train]"]]          # its cells, no tier
        assert "cell 4 [train] raised FloatingPointError: loss is nan after 200 steps" in issue["body"]
        narrow = alert(runs("dispatch-b", {B: NO_TIERS_PASSES}), _env(github))
        assert f"still not checked: {A} (cell 4 [train])" in narrow.stdout, narrow.stdout + narrow.stderr
        closed = alert(runs("green", {A: NO_TIERS_PASSES, B: NO_TIERS_PASSES}), _env(github), "--run-url", RUN_URL + "2")
        assert f"closed issue #{issue['number']}" in closed.stdout, closed.stdout + closed.stderr
        assert github.issues[issue["number"]]["state"] == "closed"
        assert f"Green again in {RUN_URL}2: every check passes" in github.comments[issue["number"]][-1]["body"]


def test_a_next_page_link_outside_the_api_is_not_followed():
    with FakeGitHub(TOKEN, REPO) as github:
        issue = github.add_issue(ALERT_TITLE, [ALERT_LABEL])
        for n in range(101):
            github.add_comment(issue["number"], f"comment {n}")
        github.link_base = "http://127.0.0.1:1"          # a Link header naming another host
        with pytest.raises(GitHubError, match="next-page link .* points outside http://127.0.0.1:"):
            GitHubIssues(REPO, TOKEN, github.url).comments(issue["number"])
        assert len([r for r in github.requests if r.path.endswith("/comments")]) == 1


# -- inputs, the token, the webhook -----------------------------------------------------------------

def test_one_report_json_and_a_single_run_folder(runs):
    single = runs("failing", {A: FAILING}, smoke=None, preflight=None) / A / "report.json"
    with FakeGitHub(TOKEN, REPO) as github:
        done = alert(single, _env(github))
        assert done.returncode == 0, done.stderr
        assert "opened issue #1" in done.stdout and "1 of 1 image(s) failing" in done.stdout
        assert f"| {A} | ❌ fail |" in github.issues[1]["body"]
        done = alert(single.parent, _env(github))
        assert "commented on issue #1" in done.stdout



def test_token_is_absent_from_everything_written(runs, tmp_path):
    # The token also leaked into a report (a cell echoed it): the issue body must not carry it.
    failing = runs("failing", {A: FAILING, B: GREEN})
    leaky = failing / A / "report.json"
    data = json.loads(leaky.read_text())
    data["findings"][0]["message"] += f" (GITHUB_TOKEN={TOKEN})"
    leaky.write_text(json.dumps(data))
    with FakeGitHub(TOKEN, REPO) as github, Webhook() as hook:
        done = alert(failing, _env(github), "--webhook", hook.url)
        assert done.returncode == 0, done.stderr
        sent = [r.body for r in github.requests if r.body is not None] + hook.posts
        assert sent and TOKEN not in json.dumps(sent)
        assert "***" in github.open_issues()[0]["body"]
    assert TOKEN not in done.stdout + done.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != leaky:
            assert TOKEN.encode() not in path.read_bytes(), path


def test_webhook_gets_slack_compatible_text(runs):
    failing, green = runs("failing", {A: FAILING, B: GREEN}), runs("green", {A: GREEN, B: GREEN})
    with FakeGitHub(TOKEN, REPO) as github, Webhook() as hook:
        done = alert(failing, _env(github, COLAB_CI_ALERT_WEBHOOK=hook.url), "--run-url", RUN_URL)
        assert done.returncode == 0, done.stderr
        assert "webhook notified" in done.stdout
        assert hook.url not in done.stdout + done.stderr
        alert(green, _env(github, COLAB_CI_ALERT_WEBHOOK=hook.url), "--run-url", RUN_URL)
    assert [set(p) for p in hook.posts] == [{"text"}, {"text"}]
    assert "1 of 2 image(s) failing" in hook.posts[0]["text"] and RUN_URL in hook.posts[0]["text"]
    assert "green again" in hook.posts[1]["text"]


def test_missing_token(runs):
    done = alert(runs("failing", {A: FAILING}), _env(None, token=None))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "GITHUB_TOKEN is not set" in lines[0] and "issues: write" in lines[0]


def test_rejected_token_401(runs):
    with FakeGitHub("ghs_theRIGHTtoken000000000000000000000000", REPO) as github:
        done = alert(runs("failing", {A: FAILING}), _env(github))
    assert done.returncode == 2
    assert "GitHub rejected the token (401 Bad credentials)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert TOKEN not in done.stderr + done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize(("canned", "expected"), [
    (RATE_LIMITED, "GitHub's API rate limit is exhausted (403 on GET /repos/octo-org/colab-ci/issues): "
                   "the limit resets at "),
    (SECONDARY_LIMIT, "GitHub's API rate limit is exhausted (429 on GET /repos/octo-org/colab-ci/issues): "
                      "retry after 60 s"),
    (FORBIDDEN, "GitHub refused GET /repos/octo-org/colab-ci/issues (403 Resource not accessible by "
                "integration): the token needs the issues: write permission on octo-org/colab-ci"),
])
def test_rate_limit_and_forbidden(runs, canned, expected):
    failing = runs("failing", {A: FAILING})
    before = snapshot(failing)
    with FakeGitHub(TOKEN, REPO) as github:
        github.fail_with = canned
        done = alert(failing, _env(github))
    assert done.returncode == 2
    assert expected in done.stderr
    assert "the run's reports are kept as they are" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert snapshot(failing) == before


def test_unreachable_api_and_no_reports(runs, tmp_path):
    done = alert(runs("failing", {A: FAILING}), _env(None, GITHUB_API_URL="http://127.0.0.1:9"))
    assert done.returncode == 2 and "could not reach GitHub's API at http://127.0.0.1:9" in done.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    done = alert(empty, _env(None))
    assert done.returncode == 2 and "no report.json, smoke.json or preflight.json under" in done.stderr


def test_repository_from_flag_or_environment(runs):
    failing = runs("failing", {A: FAILING})
    with FakeGitHub(TOKEN, "someone/else") as github:
        env = _env(github)
        done = alert(failing, env, "--repo", "someone/else")
        assert done.returncode == 0, done.stderr
        env.pop("GITHUB_REPOSITORY")
        done = alert(failing, env)
        assert done.returncode == 2 and "pass --repo OWNER/NAME or set GITHUB_REPOSITORY" in done.stderr


def test_run_url_built_from_actions_variables(runs):
    with FakeGitHub(TOKEN, REPO) as github:
        env = _env(github, GITHUB_SERVER_URL="https://github.com", GITHUB_RUN_ID="424242")
        done = alert(runs("failing", {A: FAILING}), env)
        assert done.returncode == 0, done.stderr
        body = github.open_issues()[0]["body"]
        assert f"https://github.com/{REPO}/actions/runs/424242" in body
        assert marker_of(body)["run"] == f"https://github.com/{REPO}/actions/runs/424242"


def test_client_repr_and_errors_never_show_the_token():
    client = GitHubIssues(REPO, TOKEN, "http://127.0.0.1:9")
    assert TOKEN not in repr(client)
    with pytest.raises(GitHubError) as caught:
        client.open_issues("x")
    assert TOKEN not in str(caught.value)


def test_body_is_cut_under_githubs_limit_and_keeps_its_marker(runs):
    loaded = load_run(runs("failing", {A: FAILING, B: GREEN}))
    failing = next(r for r in loaded.images if r.image == A)
    failing.findings[0].message = "x" * 70_000
    with FakeGitHub(TOKEN, REPO) as github:
        outcome = sync_issue(loaded, GitHubIssues(REPO, TOKEN, github.url))
        assert outcome.action == "opened"
        body = github.open_issues()[0]["body"]
        assert len(body) <= 60_000 and body.rstrip().endswith("(cut: the full evidence is in the run's report artifacts)")
        assert marker_of(body)["failing"] == image_subjects(A, ("tier1",))
        assert github.issues[1]["user"]["login"] == BOT


@pytest.mark.network
def test_real_github_api(runs):
    """Open, comment on and close a real issue: only with GITHUB_TOKEN and COLAB_CI_ALERT_REPO set."""
    token, repo = os.environ.get("GITHUB_TOKEN"), os.environ.get("COLAB_CI_ALERT_REPO")
    if not token or not repo:
        pytest.skip("set GITHUB_TOKEN and COLAB_CI_ALERT_REPO (OWNER/NAME, a repository the token may "
                    "open issues in) to run the alert against the real GitHub API")
    try:
        urllib.request.urlopen("https://api.github.com", timeout=10).close()
    except OSError as exc:
        pytest.skip(f"api.github.com is unreachable from this machine ({exc})")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "GITHUB_REPOSITORY": repo}
    env.pop("GITHUB_API_URL", None)
    title = f"{ALERT_TITLE} (colab-ci test {os.getpid()})"
    failing, narrow, green = (runs("failing", {A: FAILING, B: GREEN}), runs("narrow", {B: GREEN}),
                              runs("green", {A: GREEN, B: GREEN}))
    opened = alert(failing, env, "--title", title, "--label", "colab-ci-alert-test")
    assert opened.returncode == 0, opened.stderr
    commented = alert(failing, env, "--title", title, "--label", "colab-ci-alert-test")
    assert "commented on issue" in commented.stdout, commented.stderr
    kept = alert(narrow, env, "--title", title, "--label", "colab-ci-alert-test")
    assert "the issue stays open" in kept.stdout, kept.stderr
    closed = alert(green, env, "--title", title, "--label", "colab-ci-alert-test")
    assert "closed issue" in closed.stdout, closed.stderr
    for done in (opened, commented, kept, closed):
        assert token not in done.stdout + done.stderr


def test_the_history_trends_go_under_the_report_and_a_missing_file_is_one_line(runs, tmp_path):
    failing = runs("failing", {A: FAILING, B: GREEN})
    trends = tmp_path / "history.md"
    trends.write_text("## Trends\n\n| image | install |\n|---|---|\n| a | ▁▂▇ |\n")
    with FakeGitHub(TOKEN, REPO) as github:
        opened = alert(failing, _env(github), "--append", str(trends))
        assert opened.returncode == 0, opened.stderr
        [issue] = alert_issues(github)
        assert issue["body"].rstrip().endswith("| a | ▁▂▇ |")
        again = alert(failing, _env(github), "--append", str(tmp_path / "missing.md"))
        assert again.returncode == 0, again.stderr
        comment = github.comments[issue["number"]][-1]["body"]
        assert "(no trends this time:" in comment and "missing.md could not be read" in comment


def test_json_says_what_was_done(runs):
    failing = runs("failing", {A: FAILING, B: GREEN})
    with FakeGitHub(TOKEN, REPO) as github:
        done = alert(failing, _env(github), "--json")
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        [issue] = alert_issues(github)
        assert (data["action"], data["issue"]["number"], data["run_verdict"]) == ("opened", issue["number"], "fail")
        assert TOKEN not in done.stdout
