"""``harness alert`` against a local server that speaks GitHub's issues API (tests/harness/fake_github.py).

The reports are hand-written report.json files (tests/harness/alert_reports/): ``failing/`` holds
two images, one failing (numpy replaced by the install cell, Tier 1 raising the '_center'
ImportError), ``green/`` the same two images passing. The CLI runs as a subprocess, so everything
it prints is captured, with a token that must appear nowhere but in the Authorization header.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from harness.alert import ALERT_LABEL, ALERT_TITLE, sync_issue
from harness.github_issues import GitHubError, GitHubIssues
from harness.report.aggregate import load_reports, render_markdown
from tests.harness.fake_github import FORBIDDEN, RATE_LIMITED, SECONDARY_LIMIT, FakeGitHub, Webhook

REPO_ROOT = Path(__file__).resolve().parents[2]
REPORTS = Path(__file__).resolve().parent / "alert_reports"
REPO = "octo-org/colab-ci"
TOKEN = "ghs_fakeTOKENforTHEalertTESTS0123456789abcd"   # looks like an installation token
RUN_URL = "https://github.com/octo-org/colab-ci/actions/runs/987654321"


def _env(fake: FakeGitHub | None, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "COLAB_CI_")) and "proxy" not in k.lower()}
    env.update({"PYTHONPATH": str(REPO_ROOT), "NO_PROXY": "127.0.0.1", "GITHUB_REPOSITORY": REPO})
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


@pytest.fixture()
def reports(tmp_path: Path) -> dict[str, Path]:
    """Copies of the fixtures (the alert must leave them as they are: compared afterwards)."""
    shutil.copytree(REPORTS, tmp_path / "reports")
    return {"failing": tmp_path / "reports" / "failing", "green": tmp_path / "reports" / "green"}


def test_first_failure_opens_second_comments_green_closes(reports):
    before = snapshot(reports["failing"].parent)
    with FakeGitHub(TOKEN, REPO) as github:
        github.add_pull_request(ALERT_TITLE, [ALERT_LABEL])   # a PR with the label: never the alert issue
        github.add_issue("unrelated bug", ["bug"])

        first = alert(reports["failing"], _env(github), "--run-url", RUN_URL)
        assert first.returncode == 0, first.stderr
        opened = [i for i in github.open_issues() if i["title"] == ALERT_TITLE]
        assert len(opened) == 1
        issue = opened[0]
        assert [lab["name"] for lab in issue["labels"]] == [ALERT_LABEL]
        assert f"opened issue #{issue['number']} {issue['html_url']}" in first.stdout
        body = issue["body"]
        # The images x cells table, the evidence, the run link.
        assert "| image | verdict | python | numpy | torch | install | tier1 |" in body
        assert "| colab-2025-10 | ❌ fail | 3.12.12 | 2.0.2 | 2.9.0+cpu | ❌ | ❌ |" in body
        assert "| colab-2025-07 | ✅ pass | 3.11.11 | 1.26.4 | 2.6.0+cpu | ✅ | ✅ |" in body
        assert "replaced numpy 2.0.2 with 2.1.3" in body
        assert "----> 2 from tiers.results import publish" in body        # first traceback lines
        assert RUN_URL in body

        second = alert(reports["failing"], _env(github), "--run-url", RUN_URL + "1")
        assert second.returncode == 0, second.stderr
        assert len([i for i in github.open_issues() if i["title"] == ALERT_TITLE]) == 1, "no second issue"
        assert f"commented on issue #{issue['number']}" in second.stdout
        assert len(github.comments[issue["number"]]) == 1
        comment = github.comments[issue["number"]][0]["body"]
        assert comment.startswith("Still failing.") and RUN_URL + "1" in comment and "colab-2025-10" in comment

        green = alert(reports["green"], _env(github), "--run-url", RUN_URL + "2")
        assert green.returncode == 0, green.stderr
        assert f"closed issue #{issue['number']}" in green.stdout
        assert github.issues[issue["number"]]["state"] == "closed"
        assert github.issues[issue["number"]]["state_reason"] == "completed"
        assert github.comments[issue["number"]][-1]["body"].startswith("Green again in " + RUN_URL + "2")

        quiet = alert(reports["green"], _env(github))
        assert quiet.returncode == 0 and "nothing failing" in quiet.stdout
        again = alert(reports["failing"], _env(github))
        assert "opened issue" in again.stdout, "after closing, a new failure opens a new issue"

        # The real request shapes: methods, paths, headers, JSON bodies.
        methods = [(r.method, r.path) for r in github.requests]
        n = issue["number"]
        assert ("POST", f"/repos/{REPO}/issues") in methods
        assert ("POST", f"/repos/{REPO}/issues/{n}/comments") in methods
        assert ("PATCH", f"/repos/{REPO}/issues/{n}") in methods
        for request in github.requests:
            assert request.headers["authorization"] == f"Bearer {TOKEN}"
            assert request.headers["accept"] == "application/vnd.github+json"
            assert request.headers["x-github-api-version"] == "2022-11-28"
            if request.method == "GET":
                assert request.query["state"] == ["open"]
        create = next(r for r in github.requests if r.method == "POST" and r.path.endswith("/issues"))
        assert set(create.body) == {"title", "body", "labels"} and create.body["labels"] == [ALERT_LABEL]
        assert create.headers["content-type"] == "application/json"
        close = next(r for r in github.requests if r.method == "PATCH")
        assert close.body == {"state": "closed", "state_reason": "completed"}
        listing = next(r for r in github.requests if r.method == "GET")
        assert listing.query["labels"] == [ALERT_LABEL]

    assert snapshot(reports["failing"].parent) == before, "the alert must not touch the reports"
    for done in (first, second, green, quiet, again):
        assert TOKEN not in done.stdout + done.stderr


def test_an_image_without_a_report_keeps_the_issue_open(reports):
    # A green run in which one image's job died before writing its report must not close the issue.
    with FakeGitHub(TOKEN, REPO) as github:
        issue = github.add_issue(ALERT_TITLE, [ALERT_LABEL])
        done = alert(reports["green"], _env(github), "--expect", "colab-2025-07", "colab-2025-10", "colab-runtime")
        assert done.returncode == 0, done.stderr
        assert f"commented on issue #{issue['number']}" in done.stdout and "(colab-runtime)" in done.stdout
        assert github.issues[issue["number"]]["state"] == "open"
        comment = github.comments[issue["number"]][0]["body"]
        assert "| colab-runtime | ❌ fail |" in comment and "no report.json" in comment
        done = alert(reports["green"], _env(github), "--expect", "colab-2025-07", "colab-2025-10")
        assert "closed issue" in done.stdout


def test_one_report_json_and_a_single_run_directory(reports):
    single = reports["failing"] / "colab-2025-10" / "report.json"
    with FakeGitHub(TOKEN, REPO) as github:
        done = alert(single, _env(github))
        assert done.returncode == 0, done.stderr
        assert "1 of 1 image(s) failing (colab-2025-10)" in done.stdout
        done = alert(single.parent, _env(github))
        assert "commented on issue #1" in done.stdout


def test_an_open_issue_that_lost_its_label_is_found_by_title(reports):
    with FakeGitHub(TOKEN, REPO) as github:
        old = github.add_issue(ALERT_TITLE, [])
        done = alert(reports["failing"], _env(github))
        assert done.returncode == 0 and f"commented on issue #{old['number']}" in done.stdout
        assert len(github.open_issues()) == 1


def test_token_is_absent_from_everything_written(reports, tmp_path):
    # The token also leaked into a report (a cell echoed it): the issue body must not carry it.
    leaky = reports["failing"] / "colab-2025-10" / "report.json"
    data = json.loads(leaky.read_text())
    data["findings"][1]["message"] += f" (GITHUB_TOKEN={TOKEN})"
    leaky.write_text(json.dumps(data))
    with FakeGitHub(TOKEN, REPO) as github, Webhook() as hook:
        done = alert(reports["failing"], _env(github), "--webhook", hook.url)
        assert done.returncode == 0, done.stderr
        sent = [r.body for r in github.requests if r.body is not None] + hook.posts
        assert sent and TOKEN not in json.dumps(sent)
        assert "***" in github.open_issues()[0]["body"]
    assert TOKEN not in done.stdout + done.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != leaky:
            assert TOKEN.encode() not in path.read_bytes(), path


def test_webhook_gets_slack_compatible_text(reports):
    with FakeGitHub(TOKEN, REPO) as github, Webhook() as hook:
        done = alert(reports["failing"], _env(github, COLAB_CI_ALERT_WEBHOOK=hook.url), "--run-url", RUN_URL)
        assert done.returncode == 0, done.stderr
        assert "webhook notified" in done.stdout
        assert hook.url not in done.stdout + done.stderr
        alert(reports["green"], _env(github, COLAB_CI_ALERT_WEBHOOK=hook.url), "--run-url", RUN_URL)
    assert [set(p) for p in hook.posts] == [{"text"}, {"text"}]
    assert "1 of 2 image(s) failing" in hook.posts[0]["text"] and RUN_URL in hook.posts[0]["text"]
    assert "green again" in hook.posts[1]["text"]


def test_missing_token(reports):
    done = alert(reports["failing"], _env(None, token=None))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "GITHUB_TOKEN is not set" in lines[0] and "issues: write" in lines[0]


def test_rejected_token_401(reports):
    with FakeGitHub("ghs_theRIGHTtoken000000000000000000000000", REPO) as github:
        done = alert(reports["failing"], _env(github))
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
def test_rate_limit_and_forbidden(reports, canned, expected):
    before = snapshot(reports["failing"].parent)
    with FakeGitHub(TOKEN, REPO) as github:
        github.fail_with = canned
        done = alert(reports["failing"], _env(github))
    assert done.returncode == 2
    assert expected in done.stderr
    assert "the run's reports are kept as they are" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert snapshot(reports["failing"].parent) == before


def test_unreachable_api_and_no_reports(reports, tmp_path):
    done = alert(reports["failing"], _env(None, GITHUB_API_URL="http://127.0.0.1:9"))
    assert done.returncode == 2 and "could not reach GitHub's API at http://127.0.0.1:9" in done.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    done = alert(empty, _env(None))
    assert done.returncode == 2 and "no report.json under" in done.stderr


def test_repository_from_flag_or_environment(reports):
    with FakeGitHub(TOKEN, "someone/else") as github:
        env = _env(github)
        done = alert(reports["failing"], env, "--repo", "someone/else")
        assert done.returncode == 0, done.stderr
        env.pop("GITHUB_REPOSITORY")
        done = alert(reports["failing"], env)
        assert done.returncode == 2 and "pass --repo OWNER/NAME or set GITHUB_REPOSITORY" in done.stderr


def test_run_url_built_from_actions_variables(reports):
    with FakeGitHub(TOKEN, REPO) as github:
        env = _env(github, GITHUB_SERVER_URL="https://github.com", GITHUB_RUN_ID="424242")
        done = alert(reports["failing"], env)
        assert done.returncode == 0, done.stderr
        assert f"https://github.com/{REPO}/actions/runs/424242" in github.open_issues()[0]["body"]


def test_client_repr_and_errors_never_show_the_token():
    client = GitHubIssues(REPO, TOKEN, "http://127.0.0.1:9")
    assert TOKEN not in repr(client)
    with pytest.raises(GitHubError) as caught:
        client.open_issues("x")
    assert TOKEN not in str(caught.value)


def test_body_is_cut_under_githubs_limit(reports):
    loaded = load_reports(reports["failing"])
    loaded[1].findings[1].message = "x" * 70_000
    with FakeGitHub(TOKEN, REPO) as github:
        outcome = sync_issue(loaded, GitHubIssues(REPO, TOKEN, github.url))
        assert outcome.action == "opened"
        assert len(github.open_issues()[0]["body"]) <= 60_000


def test_aggregate_verb_writes_the_step_summary(reports, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    done = subprocess.run([sys.executable, "-m", "harness", "aggregate", "--report", str(reports["failing"])],
                          cwd=REPO_ROOT, env=_env(None, GITHUB_STEP_SUMMARY=str(summary)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n## colab-ci: 1 of 2 image(s) failing")
    assert done.stdout in text
    green = subprocess.run([sys.executable, "-m", "harness", "aggregate", "--report", str(reports["green"])],
                           cwd=REPO_ROOT, env=_env(None), capture_output=True, text=True, timeout=60)
    assert green.returncode == 0 and "all 2 image(s) pass" in green.stdout
    assert render_markdown(load_reports(reports["green"])).count("✅ pass") == 2


@pytest.mark.network
def test_real_github_api(reports):
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
    opened = alert(reports["failing"], env, "--title", title, "--label", "colab-ci-alert-test")
    assert opened.returncode == 0, opened.stderr
    commented = alert(reports["failing"], env, "--title", title, "--label", "colab-ci-alert-test")
    assert "commented on issue" in commented.stdout, commented.stderr
    closed = alert(reports["green"], env, "--title", title, "--label", "colab-ci-alert-test")
    assert "closed issue" in closed.stdout, closed.stderr
    for done in (opened, commented, closed):
        assert token not in done.stdout + done.stderr
