"""What the alert writes into the issue: the body it opens it with and its comments (failing, green
but narrower than the issue, green and closing), each starting with the marker, redacted and
clipped to GitHub's limit; and the appendix put under the report (``--append``)."""

from __future__ import annotations

from pathlib import Path

from harness.alert.marker import render_marker
from harness.core.secrets import redact
from harness.report.aggregate_markdown import describe_subjects, render_markdown
from harness.report.aggregate_model import RunReports, Subject, covered_subjects, failing_subjects

MAX_BODY_CHARS = 60_000          # GitHub refuses issue and comment bodies over 65,536 characters


def _clip(text: str, limit: int = MAX_BODY_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 200].rstrip() + "\n\n... (cut: the full evidence is in the run's report artifacts)\n"


def _with_marker(marker: str, text: str) -> str:
    """The marker first, then the text clipped to what is left of GitHub's limit (the marker is never cut)."""
    return marker + "\n" + _clip(redact(text), MAX_BODY_CHARS - len(marker) - 1)


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
