"""``harness aggregate``: one report from a workflow run's merged artifacts, failing closed.

The run folders are built from real runs (tests/harness/alert_runs.py): per-image ``report.json``
from recorded executions, judged by the real checks and written by the real writer; ``smoke.json``
from recorded real smoke runs; ``preflight.json`` from the real preflight. Exit status 0 everything
passes, 1 something failed, 2 something could not tell (a report says ``error``, cannot be read, is
missing, or there is nothing to read).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report.aggregate_markdown import render_markdown
from harness.report.aggregate_model import Subject, covered_subjects, failing_subjects
from harness.report.readers import load_run
from tests.harness.alert_runs import CRASHED_CHECK, FAILING, GREEN, NO_TIERS_FAILS, NO_TIERS_PASSES, TIER1_ONLY

REPO_ROOT = Path(__file__).resolve().parents[2]
A, B = "2025-11-24-13d109b-cpu", "2026-08-19-a724079-cpu"


def aggregate(report: Path, *args: str, summary: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    if summary is not None:
        env["GITHUB_STEP_SUMMARY"] = str(summary)
    return subprocess.run([sys.executable, "-m", "harness", "aggregate", "--report", str(report), *args],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def truncated(folder: Path) -> Path:
    report = folder / A / "report.json"
    report.write_bytes(report.read_bytes()[:500])        # the job was killed while writing it
    return folder


@pytest.mark.parametrize(("images", "smoke", "preflight", "expect", "code", "headline"), [
    ({A: GREEN, B: GREEN}, "local_pass", "ok", (), 0, "all 2 image(s) pass; smoke passes; preflight passes"),
    ({A: FAILING, B: GREEN}, "local_pass", "ok", (), 1, "1 of 2 image(s) failing; smoke passes; preflight passes"),
    ({A: GREEN, B: GREEN}, "broken_model", "ok", (), 1, "all 2 image(s) pass; smoke fails; preflight passes"),
    ({A: GREEN, B: GREEN}, "local_pass", "corrupts", (), 1,
     "all 2 image(s) pass; smoke passes; preflight predicts a corruption or a failed install"),
    ({A: CRASHED_CHECK, B: FAILING}, "local_pass", "ok", (), 2,
     "2 of 2 image(s) failing (1 could not tell); smoke passes; preflight passes"),
    ({A: GREEN, B: GREEN}, "colab_unreachable", "ok", (), 2, "all 2 image(s) pass; smoke could not tell; preflight passes"),
    ({A: GREEN, B: GREEN}, "local_pass", "unchecked", (), 2, "all 2 image(s) pass; smoke passes; preflight could not check"),
    ({A: GREEN}, "local_pass", "ok", (A, B), 2, "1 of 2 image(s) failing (1 could not tell); smoke passes; preflight passes"),
    ({A: GREEN, B: GREEN}, None, None, (A, B, "smoke", "preflight"), 2,
     "all 2 image(s) pass; smoke could not tell; preflight could not check"),
], ids=["green", "image-fails", "smoke-fails", "preflight-corrupts", "check-crashed", "colab-not-checked",
        "index-unreachable", "report-missing", "smoke-and-preflight-missing"])
def test_exit_status_and_headline(runs, images, smoke, preflight, expect, code, headline):
    folder = runs("run", images, smoke, preflight)
    done = aggregate(folder, *(["--expect", *expect] if expect else []))
    assert done.returncode == code, done.stdout + done.stderr
    assert done.stdout.startswith(f"## colab-ci: {headline}\n")


def test_an_unreadable_report_is_could_not_tell_and_said_on_stderr(runs):
    folder = truncated(runs("run", {A: GREEN, B: GREEN}))
    done = aggregate(folder)
    assert done.returncode == 2
    report = folder / A / "report.json"
    assert f"aggregate: could not tell: {report}: not JSON (" in done.stderr
    assert f"| {A} | ❓ could not tell | ? | ? | ? |" in done.stdout
    assert f"| {B} | ✅ pass |" in done.stdout                      # the rest is still reported


def test_a_report_claiming_pass_over_a_failing_finding_still_fails(runs):
    folder = runs("run", {A: FAILING}, smoke=None, preflight=None)
    report = folder / A / "report.json"
    data = json.loads(report.read_text())
    data.update(verdict="pass", exit_code=0)
    report.write_text(json.dumps(data))
    assert aggregate(folder).returncode == 1


@pytest.mark.parametrize(("kind", "edit", "message"), [
    ("report", lambda d: {**d, "report_schema_version": 1}, "field 'report_schema_version': 1 is not one of [2]"),
    ("report", lambda d: {**d, "verdict": "fine"}, "field 'verdict': 'fine' is not one of ['pass', 'fail', 'error']"),
    ("report", lambda d: {k: v for k, v in d.items() if k != "findings"},
     "field '(top level)': 'findings' is a required property"),
    ("smoke", lambda d: d["results"], "is not of type 'object'"),
    ("smoke", lambda d: {**d, "results": []}, "field 'results': [] should be non-empty"),
    ("smoke", lambda d: {**d, "results": [{**d["results"][0], "ok": "yes"}]},
     "field 'results[0].ok': 'yes' is not of type 'boolean'"),
    ("preflight", lambda d: d["images"], "is a bare list of image verdicts (written by `harness preflight --json`)"),
    ("preflight", lambda d: {**d, "preflight_schema_version": 7}, "has preflight_schema_version 7; this harness reads 1"),
], ids=["report-v1", "report-verdict", "report-no-findings", "smoke-list", "smoke-empty", "smoke-field",
        "preflight-list", "preflight-version"])
def test_a_report_this_harness_cannot_read_names_the_file_and_field(runs, kind, edit, message):
    folder = runs("run", {A: GREEN}, "local_pass", "ok")
    path = {"report": folder / A / "report.json", "smoke": folder / "smoke" / "smoke.json",
            "preflight": folder / "preflight" / "preflight.json"}[kind]
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    done = aggregate(folder)
    assert done.returncode == 2
    [line] = [line for line in done.stderr.splitlines() if line.startswith("aggregate: could not tell: ")]
    assert str(path) in line and message in line


def test_a_preflight_that_says_pass_over_a_corrupting_image_still_fails(runs):
    folder = runs("run", {A: GREEN}, "local_pass", "corrupts")
    path = folder / "preflight" / "preflight.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "verdict": "pass", "exit_code": 0}))
    assert aggregate(folder).returncode == 1


def test_a_section_per_kind_and_what_the_run_checked(runs):
    run = load_run(runs("run", {A: FAILING, B: CRASHED_CHECK}, "broken_model", "corrupts"))
    text = render_markdown(run, "https://example.invalid/run/1")
    assert text.startswith("## colab-ci: 2 of 2 image(s) failing (1 could not tell); smoke fails; preflight predicts")
    assert "Run: https://example.invalid/run/1" in text
    for heading in (f"### {A}: ❌ fail", f"### {B}: ❓ could not tell", "### smoke test: ❌ fail", "### preflight: ❌ fail"):
        assert f"\n{heading}\n" in text
    assert "| check | verdict | detail |" in text and "| preflight: tiny-image | ❌ corrupts |" in text
    assert f"Checked in this run: {A} (tier1), smoke (local), preflight (as a whole, tiny-image)." in text
    assert "tabulate 0.8.10 -> 0.9.0 (CORRUPTS: the notebook imports it)" in text


def _tier_subjects(subjects: set[Subject]) -> set[Subject]:
    return {s for s in subjects if s.part.startswith("tier")}


def test_tiers_covered_come_from_the_tier_cells_results(runs):
    run = load_run(runs("run", {A: FAILING, B: GREEN, "tiers-1": TIER1_ONLY}, None, None))
    by_image = {r.image: r for r in run.images}
    # The template declares tier1-3, switched by ENABLE_TIER2/3: a run with both off expects Tier 1 only.
    assert by_image["tiers-1"].tiers_expected() == {"tier1"} and by_image["tiers-1"].tiers_ran() == {"tier1"}
    assert by_image[B].tiers_expected() == by_image[B].tiers_ran() == {"tier1", "tier2", "tier3"}
    # A notebook that publishes only a tier1 result and declares nothing is expected to publish tier1,
    # not the template's three tiers (the alert used to wait for tier2/3 that it never publishes).
    assert by_image[A].tiers_expected() == {"tier1"} and by_image[A].tiers_ran() == {"tier1"}
    assert failing_subjects(run) == {Subject("image", A, "tier1")}
    assert _tier_subjects(covered_subjects(run)) == (
        {Subject("image", A, "tier1"), Subject("image", "tiers-1", "tier1")}
        | {Subject("image", B, t) for t in ("tier1", "tier2", "tier3")})


def test_a_template_run_that_could_not_tell_waits_for_every_tier_it_declares(runs):
    # The crashed check leaves the template's tier results, but the verdict is error: every declared
    # tier is what the alert waits for, read from the notebook's own metadata, not from the harness.
    run = load_run(runs("run", {A: CRASHED_CHECK}, None, None))
    assert run.images[0].record.declared_tiers == {"tier1": "", "tier2": "ENABLE_TIER2", "tier3": "ENABLE_TIER3"}
    assert failing_subjects(run) == {Subject("image", A, t) for t in ("tier1", "tier2", "tier3")}


def test_a_notebook_without_tiers_is_judged_by_its_cells(runs):
    failing = load_run(runs("failing", {A: NO_TIERS_FAILS, B: NO_TIERS_PASSES}, None, None))
    report = next(r for r in failing.images if r.image == A)
    assert report.tiers_expected() == set() and report.record.tier_outputs() == []
    assert failing_subjects(failing) == {Subject("image", A, "cell 4 [train]")}
    covered = covered_subjects(failing)
    assert Subject("image", B, "cell 4 [train]") in covered and Subject("image", A, "cell 2 [data]") in covered
    assert Subject("image", A, "cell 4 [train]") not in covered
    text = render_markdown(failing)
    assert "**cells** (cell 4 [train]): " in text and "FloatingPointError: loss is nan after 200 steps" in text
    # what ran without failing; many cells are counted, not listed
    assert f"Checked in this run: {A} (cell 1 [parameters], cell 2 [data], cell 3), {B} (5 cells)." in text
    green = load_run(runs("green", {A: NO_TIERS_PASSES, B: NO_TIERS_PASSES}, None, None))
    assert not green.failing and failing_subjects(failing) <= covered_subjects(green)


def test_a_missing_report_waits_for_the_tiers_of_the_others_or_the_whole_image(runs):
    with_tiers = load_run(runs("tiers", {B: GREEN}, None, None), expect=[A, B])
    assert failing_subjects(with_tiers) == {Subject("image", A, t) for t in ("tier1", "tier2", "tier3")}
    without = load_run(runs("no-tiers", {B: NO_TIERS_PASSES}, None, None), expect=[A, B])
    assert failing_subjects(without) == {Subject("image", A, "")}
    assert Subject("image", A, "") in covered_subjects(load_run(runs("later", {A: NO_TIERS_PASSES}, None, None)))


def test_nothing_to_read_is_exit_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = aggregate(empty)
    assert done.returncode == 2 and "no report.json, smoke.json or preflight.json under" in done.stderr
    done = aggregate(tmp_path / "absent")
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_the_step_summary_gets_the_same_text(runs, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    done = aggregate(runs("failing", {A: FAILING, B: GREEN}), summary=summary)
    assert done.returncode == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n## colab-ci: 1 of 2 image(s) failing")
    assert done.stdout in text


def test_json_on_stdout_says_the_same_as_the_markdown(runs):
    folder = runs("mixed", {A: FAILING, B: GREEN})
    done = aggregate(folder, "--json")
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert (data["verdict"], data["exit_code"]) == ("fail", 1)
    assert {i["image"]: i["verdict"] for i in data["images"]} == {A: "fail", B: "pass"}
    assert any("corruption" in failure for failure in next(i for i in data["images"] if i["image"] == A)["failures"])
    assert data["headline"] == "1 of 2 image(s) failing; smoke passes; preflight passes"


COLAB_SKIPPED = "colab=the repository secret COLAB_CLI_TOKEN is not set (docs/colab.md)"


@pytest.mark.timeout(300)
def test_a_part_skipped_on_purpose_is_said_with_its_reason_and_never_counted_as_checked(runs, tmp_path):
    """The monthly Colab column without its secret: the summary and the JSON say it was skipped and
    why; the other parts decide the exit status; it is not among what the run checked."""
    summary = tmp_path / "summary.md"
    folder = runs("green", {A: GREEN, B: GREEN})
    done = aggregate(folder, "--expect", A, B, "smoke", "preflight", "--skipped", COLAB_SKIPPED, summary=summary)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("## colab-ci: all 2 image(s) pass; smoke passes; preflight passes; "
                                  "colab skipped (not checked)\n")
    assert ("⏭️ Not checked in this run: **colab**, skipped: the repository secret COLAB_CLI_TOKEN is not set "
            "(docs/colab.md)") in summary.read_text()
    reports = load_run(folder, (A, B), {"colab": "no secret"})
    assert not any(s.name == "colab" for s in covered_subjects(reports) | failing_subjects(reports))
    data = json.loads(aggregate(folder, "--json", "--skipped", COLAB_SKIPPED).stdout)
    assert data["skipped"] == [{"name": "colab", "reason": COLAB_SKIPPED.split("=", 1)[1]}]
    # a failing image still fails beside it; a skip without its reason is a usage error
    assert aggregate(runs("failing", {A: FAILING, B: GREEN}), "--skipped", COLAB_SKIPPED).returncode == 1
    bad = aggregate(folder, "--skipped", "colab")
    assert bad.returncode == 2 and "--skipped" in bad.stderr


def test_a_retried_runs_earlier_attempt_is_its_history_not_another_image(runs):
    """`run --retries` keeps a retried attempt's reports in OUT/attempt-<n>/ beside the final ones: the
    image is its final attempt (here green), never also an image "A/attempt-1" that failed."""
    from tests.harness.alert_runs import write_image_report

    folder = runs("retried", {A: GREEN, B: GREEN})
    write_image_report(folder / A / "attempt-1", FAILING)
    assert sorted(r.image for r in load_run(folder).images) == [A, B]
    done = aggregate(folder, "--expect", A, B, "smoke", "preflight")
    assert done.returncode == 0, done.stdout + done.stderr
    # a folder that only looks like an attempt (no final report beside it) is still read
    write_image_report(folder / "odd" / "attempt-2", FAILING)
    assert "odd/attempt-2" in {r.image for r in load_run(folder).images}
