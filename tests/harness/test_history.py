"""``colab-ci history``: the outlier rule (pure), the judged history (pure), reading a series of runs
(fail closed), keeping it (``--store`` / ``--previous``), and a dozen real runs with a slowed install.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness.checks import CheckOptions, run_checks
from harness.history import render, trends
from harness.history.outliers import Rule, judge, judge_series
from harness.history.series import HistoryError, ImagePoint, Run, read_run
from harness.report import write_reports
from tests.harness.browser_pages import chromium, open_page
from tests.harness.conftest import run_cli
from tests.harness.real_runs import INSTALL_CELL, build_wheel, make_history_notebook, record_run, wheel_server
from tests.harness.recorded_runs import load_record

# -- the outlier rule ----------------------------------------------------------------------------------

STEADY = [2.0, 2.2, 1.9, 2.1, 2.0, 1.8, 2.3, 2.0, 2.1, 1.9, 2.0]   # eleven ordinary install times


def test_with_enough_runs_an_outlier_is_above_mean_plus_three_sigma() -> None:
    slow = judge(STEADY + [2.0, 2.1, 14.0, 1.9], 30.0)
    assert slow.method == "sigma" and slow.history == 15 and slow.outlier
    assert slow.limit == pytest.approx(slow.reference + 3 * slow.spread)       # σ is large here: 3σ > margin
    within = judge(STEADY + [2.0, 2.1, 14.0, 1.9], slow.limit - 0.01)
    assert not within.outlier


def test_identical_past_timings_do_not_make_jitter_an_outlier() -> None:
    """σ = 0: the margin (the install check's 5 s) is the least a value must exceed the mean by."""
    flat = [3.0] * 10
    assert not judge(flat, 7.9).outlier and judge(flat, 8.1).outlier
    assert judge(flat, 8.1).describe() == ("limit 8.0 s: mean 3.0 s + the 5 s margin (3σ is only 0.00 s) "
                                           "over 10 earlier runs")


def test_with_few_runs_the_baseline_rule_judges_against_the_median() -> None:
    few = [2.0, 2.4, 1.8]
    assert [judge(few, v).outlier for v in (6.9, 7.1)] == [False, True]        # median 2.0: needs +5 s ...
    assert judge([20.0, 22.0], 31.0).outlier is False                        # ... and x1.5 (limit 31.5)
    assert judge([20.0, 22.0], 31.6).method == "baseline" and judge([20.0, 22.0], 31.6).outlier
    assert judge([], 100.0).method == "none" and not judge([], 100.0).outlier
    assert not judge(STEADY, 0.1).outlier                                       # faster is never an outlier


def test_each_run_is_judged_against_the_runs_before_it_within_the_window() -> None:
    values = [*STEADY[:5], 9.0, *STEADY[5:], None, 8.0]
    judged = judge_series(values, Rule(min_runs=8), window=12)
    assert judged[0].method == "none" and judged[5].method == "baseline" and judged[5].outlier
    assert judged[-2] is None and judged[-1].method == "sigma" and judged[-1].history == 11
    assert [i for i, j in enumerate(judged) if j and j.outlier] == [5]   # the earlier 9 s widened the band for 8 s
    assert judge(STEADY, 8.0).outlier                                       # which it would not be without it
    assert judge_series([1.0, 1.0, 50.0], window=2)[2].history == 1
    with pytest.raises(ValueError, match="min_runs must be at least 2"):
        Rule(min_runs=1)


# -- the judged history (pure) -----------------------------------------------------------------------

def _point(image: str, day: int, install: float | None, verdict: str = "pass", tier1: str = "pass") -> ImagePoint:
    when = datetime(2026, 1, 1, 5, 17, tzinfo=timezone.utc) + timedelta(days=30 * day)
    return ImagePoint(image, Path(f"run{day}/{image}/report.json"), when, verdict,
                      {} if install is None else {"cell 2 [install]": install}, 15.0 + day % 3, {"tier1": tier1})


def _runs(series: dict[str, list[float | None]], **verdicts: list[str]) -> list[Run]:
    days = max(len(v) for v in series.values())
    runs = []
    for day in range(days):
        run = Run(f"run{day}", Path(f"run{day}"))
        for image, values in series.items():
            if day < len(values):
                verdict = verdicts.get(image.replace("-", "_"), ["pass"] * days)[day]
                run.images[image] = _point(image, day, values[day], verdict, "fail" if verdict == "fail" else "pass")
        runs.append(run)
    return runs


def test_the_newest_runs_outlier_decides_and_earlier_ones_are_only_shown() -> None:
    runs = _runs({"img-a": [*STEADY, 25.0], "img-b": [*STEADY[:5], 30.0, *STEADY[5:]]},
                 img_b=["pass"] * 5 + ["fail"] + ["pass"] * 6)
    history = trends.build(runs, Rule(), window=12)
    assert [(image, t.name) for image, t in history.outliers()] == [("img-a", "cell 2 [install]")]
    assert history.exit_code == 1 and history.verdict == "outlier"
    b = next(h for h in history.images if h.image == "img-b")
    assert (b.passed, b.counted) == (11, 12) and b.tiers["tier1"][5] == "fail"
    assert [i for i, j in enumerate(b.trends[0].judgements) if j and j.outlier] == [5]
    markdown = render.render_markdown(history)
    assert f"- img-b, cell 2 [install]: {render.x_labels(history)[5]} (30.0 s)" in markdown   # earlier outlier, listed
    assert re.search(r"\| img-a \| cell 2 \[install\] \| `[▁-█]{11}█` \| 25.0 s \|.*❌ outlier \|", markdown)
    assert markdown.count("```mermaid\nxychart-beta") == 2


def test_the_window_keeps_the_last_runs_and_images_gone_from_the_newest_run_are_noted() -> None:
    runs = _runs({"old-image": [2.0] * 5, "new-image": [2.0] * 14})
    history = trends.build(runs, Rule(), window=6)
    assert len(history.runs) == 6 and [h.image for h in history.images] == ["new-image"]
    history = trends.build(_runs({"old-image": [2.0] * 5, "new-image": [2.0] * 6}), Rule(), window=12)
    assert "Not in the newest run (not judged): old-image." in history.notes and history.exit_code == 0
    assert trends.build([], Rule()).exit_code == 2                                  # no run at all: could not judge
    assert trends.build(_runs({"a": [2.0]}), Rule()).exit_code == 0
    assert trends.build(_runs({"a": [2.0, 3.0]}), Rule(), problems=["x"]).exit_code == 2


# -- reading a series (fail closed) -----------------------------------------------------------------

def _write_run(folder: Path, name: str = "clean_run", **changes) -> Path:
    record = load_record(name)
    for key, value in changes.items():
        setattr(record, key, value)
    write_reports(record, run_checks(record, None, CheckOptions()), folder, env={})
    return folder / "report.json"


def _edit(report: Path, edit) -> None:
    data = json.loads(report.read_text(encoding="utf-8"))
    edit(data)
    report.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(report_schema_version=99), "field 'report_schema_version': 99 is not one of [2]"),
    (lambda d: d["record"].update(started_at="last tuesday"),
     "field 'record.started_at' is 'last tuesday', not an ISO 8601 time"),
    (lambda d: d["record"]["installs"][1].update(duration_s="slow"),
     "field 'record.installs[1].duration_s': 'slow' is not of type 'number'"),
    (lambda d: d.update(verdict="maybe"), "field 'verdict': 'maybe' is not one of"),
    (lambda d: d.pop("record"), "field '(top level)': 'record' is a required property"),
])
def test_an_unusable_report_names_its_file_and_field(tmp_path: Path, edit, message: str) -> None:
    report = _write_run(tmp_path / "run" / "img")
    _edit(report, edit)
    with pytest.raises(HistoryError) as caught:
        read_run(tmp_path / "run")
    assert str(report) in str(caught.value) and message in str(caught.value)


def test_a_missing_or_unreadable_report_exits_2_and_is_never_skipped(tmp_path: Path) -> None:
    _write_run(tmp_path / "january" / "img", started_at="2026-01-01T05:17:00+00:00")
    _write_run(tmp_path / "february" / "img", started_at="2026-02-01T05:17:00+00:00")
    (tmp_path / "march" / "img").mkdir(parents=True)                            # the job died: no report
    (tmp_path / "april" / "img").mkdir(parents=True)
    (tmp_path / "april" / "img" / "report.json").write_text("{not json", encoding="utf-8")
    done = run_cli("history", *(str(tmp_path / m) for m in ("january", "february", "march", "april")),
                   "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"history: could not read: {tmp_path / 'march'} holds no report.json" in done.stderr
    assert f"{tmp_path / 'april' / 'img' / 'report.json'}: not JSON (" in done.stderr
    markdown = (tmp_path / "out" / "history.md").read_text(encoding="utf-8")
    assert markdown.startswith("## colab-ci history: ❓ could not read the history (2 runs")
    assert "holds no report.json" in markdown and ": not JSON (" in markdown
    assert json.loads((tmp_path / "out" / "history.json").read_text(encoding="utf-8"))["exit_code"] == 2
    nothing = run_cli("history", "--out", str(tmp_path / "out"))
    assert nothing.returncode == 2
    assert nothing.stderr.strip() == "history: error: name at least one RUN_DIR or --previous DIR."


def test_store_keeps_reports_only_and_previous_reads_them_back_once(tmp_path: Path) -> None:
    january = tmp_path / "artifacts-jan"
    _write_run(january / "2025-11-24-13d109b-cpu", started_at="2026-01-01T05:17:03+00:00")
    _write_run(january / "colab-runtime", started_at="2026-01-01T05:19:00+00:00")
    (january / "smoke").mkdir()
    (january / "smoke" / "smoke.json").write_text("{}", encoding="utf-8")            # not a run's report: ignored
    branch = tmp_path / "history-branch" / "runs"
    first = run_cli("history", str(january), "--store", str(branch), "--out", str(tmp_path / "o1"))
    assert first.returncode == 0, first.stdout + first.stderr
    stored = sorted(p.relative_to(branch).as_posix() for p in branch.rglob("*") if p.is_file())
    assert stored == ["2026-01-01T051703Z/2025-11-24-13d109b-cpu/report.json",
                      "2026-01-01T051703Z/colab-runtime/report.json"]
    february = tmp_path / "artifacts-feb"
    _write_run(february / "2025-11-24-13d109b-cpu", started_at="2026-02-01T05:17:00+00:00")
    again = run_cli("history", str(january), str(february), "--previous", str(branch), "--store", str(branch),
                    "--out", str(tmp_path / "o2"))
    assert again.returncode == 0, again.stdout + again.stderr
    data = json.loads((tmp_path / "o2" / "history.json").read_text(encoding="utf-8"))
    assert [r["name"] for r in data["runs"]] == ["2026-01-01T051703Z", "artifacts-feb"]   # January once
    assert any("holds the same reports as" in note and "counted once" in note for note in data["notes"])
    assert sorted(p.name for p in branch.iterdir()) == ["2026-01-01T051703Z", "2026-02-01T051700Z"]


def test_secrets_never_reach_the_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "hist-secret-4567"
    report = _write_run(tmp_path / "run" / "img", started_at="2026-01-01T05:17:00+00:00")
    _edit(report, lambda d: d["record"]["installs"][0].update(cell_tag=f"install {secret}"))
    monkeypatch.setenv("COLAB_CI_TEST_TOKEN", secret)
    import argparse

    from harness.cli.history import add_arguments, run as history_run

    parser = argparse.ArgumentParser()
    add_arguments(parser)   # the verb's own parser: a Namespace built by hand drifts from it
    args = parser.parse_args([str(tmp_path / "run"), "--out", str(tmp_path / "out"), "--last", "12",
                              "--store", str(tmp_path / "kept"), "--summary", str(tmp_path / "summary.md")])
    assert history_run(args) == 0
    for path in [*(tmp_path / "out").iterdir(), tmp_path / "summary.md", *(tmp_path / "kept").rglob("*.json")]:
        text = path.read_text(encoding="utf-8")
        assert secret not in text, path
    assert "install ***" in (tmp_path / "out" / "history.md").read_text(encoding="utf-8")


# -- a dozen real runs --------------------------------------------------------------------------------

DELAYS = {5: 8.0, 11: 16.0}   # run index -> seconds the wheel server waits: two installs really slowed
BROKEN = {8: "gradient_flow"}  # run index -> the tier test that fails in that run


@pytest.fixture(scope="module")
def dozen_runs(target_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Twelve real runs of the tiny notebook (tests/harness/real_runs.py), one after another, each
    written by the real checks and writer into its own folder. Runs 6 and 12 download their wheel
    from a server that waits 8 s and 16 s (a real, slower install); run 9 has a failing tier test.
    Nothing is edited afterwards: times, dates and statuses are the runs' own."""
    root = tmp_path_factory.mktemp("history")
    notebook = make_history_notebook(root / "tiny.ipynb")
    folders = []
    with wheel_server(build_wheel(root / "wheel")) as base:
        for i in range(12):
            folder = root / f"run-{i + 1:02d}"
            record_run(notebook, folder, target_venv, base, delay_s=DELAYS.get(i, 0.0), broken_test=BROKEN.get(i, ""))
            folders.append(folder)
    return folders


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_history_of_a_dozen_real_runs_flags_the_slowed_install(dozen_runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "history"
    done = run_cli("history", *map(str, dozen_runs), "--out", str(out), "--summary", str(tmp_path / "summary.md"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"tiny: {INSTALL_CELL} took" in done.stdout and "in the newest run, above its limit" in done.stdout
    data = json.loads((out / "history.json").read_text(encoding="utf-8"))
    [outlier] = data["outliers"]
    assert (outlier["image"], outlier["timing"], outlier["method"], outlier["earlier_runs"]) == \
        ("tiny", INSTALL_CELL, "sigma", 11)
    assert outlier["value_s"] > 16 > outlier["limit_s"]
    assert [r["name"] for r in data["runs"]] == [f.name for f in dozen_runs]   # in time order
    markdown = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert markdown == (out / "history.md").read_text(encoding="utf-8")
    trend = r"`[▁-█]{5}[▅-█][▁-█]{5}█`"   # run 6 high, run 12 the highest
    assert re.search(rf"\| tiny \| {re.escape(INSTALL_CELL)} \| {trend} \|.*❌ outlier \|", markdown)
    assert f"- tiny, {INSTALL_CELL}: " in markdown                             # run 6, an outlier when it ran
    assert "| tiny | 11/12 | ✅✅✅✅✅✅✅✅❌✅✅✅ | ✅✅✅✅✅✅✅✅❌✅✅✅ |" in markdown
    assert "```mermaid\nxychart-beta\n" in markdown and "  bar [" in markdown and "  line [" in markdown

    without_the_slow_one = run_cli("history", *map(str, dozen_runs[:11]), "--out", str(tmp_path / "eleven"))
    assert without_the_slow_one.returncode == 0, without_the_slow_one.stdout + without_the_slow_one.stderr
    assert "no timing outlier" in without_the_slow_one.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_history_html_in_chromium_draws_the_trend_and_rings_the_slow_runs(dozen_runs: list[Path],
                                                                         tmp_path: Path) -> None:
    out = tmp_path / "history"
    assert run_cli("history", *map(str, dozen_runs), "--out", str(out)).returncode == 1
    with chromium() as page:
        facts = open_page(page, out / "history.html", tmp_path / "history-html.png")
    assert facts.verdict.startswith("colab-ci history: timing outlier (12 runs") and facts.verdict_top < 100
    install = next(c for c in facts.charts if c["title"] == f"{INSTALL_CELL}: seconds")
    assert install["visible"] and install["points"] == [12] and install["outliers"] == 2   # runs 6 and 12
    tier1 = next(c for c in facts.charts if c["title"] == f"{trends.TIER1_TIME}: seconds")
    assert tier1["points"] == [12] and tier1["outliers"] == 0
    statuses = next(c for c in facts.charts if c["title"] == "Verdicts and tier statuses per run")
    assert statuses["squares"] == 24                                             # verdict and tier1, 12 runs each
    assert "11 of the 12 runs with this image passed (92%)." in facts.text
    assert facts.broken == [] and facts.external == [] and facts.outside == []


def test_a_copied_run_folder_is_one_run(tmp_path: Path) -> None:
    _write_run(tmp_path / "a" / "img", started_at="2026-01-01T05:17:00+00:00")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    done = run_cli("history", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "out"))
    assert done.returncode == 0 and "(1 run, newest" in done.stdout
    assert "counted once" in (tmp_path / "out" / "history.md").read_text(encoding="utf-8")


def test_history_is_a_verb_of_the_cli() -> None:
    done = run_cli("history", "--help")
    assert done.returncode == 0 and "--previous DIR" in done.stdout and "--store DIR" in done.stdout
    assert "Trends over past runs" in done.stdout
    bad = run_cli("history", "x", "--last", "1")
    assert bad.returncode == 2 and "'1' must be at least 2" in bad.stderr
