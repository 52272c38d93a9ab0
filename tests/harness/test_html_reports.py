"""report.html, executed.html and matrix.html: what they show, that they open offline, and in Chromium.

The fast tests lay out recorded runs (tests/harness/recorded/, real executions) with the real checks
and writer. The browser tests record real runs of a tiny notebook (tests/harness/real_runs.py: a
real kernel, a real pip install from a local server, one of them really slowed) and open the pages
in headless Chromium from file://, as someone who downloaded the artifact would.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest

from harness.checks import CheckOptions, run_checks
from harness.checks.baseline import Baseline
from harness.report.matrix_records import ImageRun, read_report
from harness.report.matrix_reports import write_reports as write_matrix_reports
from harness.core.records import CellError, Finding, RunRecord
from harness.history import render, trends
from harness.history.outliers import Rule
from harness.history.series import ImagePoint, Run
from harness.report import write_reports
from harness.report.templates import render as render_template
from harness.report.charts import Bar, bar_chart, line_chart, nice_ceiling, sparkline
from tests.harness.browser_pages import chromium, open_page
from tests.harness.real_runs import INSTALL_CELL, build_wheel, make_history_notebook, record_run, wheel_server
from tests.harness.recorded_runs import code_cell, load_record, minimal_record

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)|<script|@import|url\(\s*["']?https?:""", re.I)


class _Text(HTMLParser):
    """The text a page shows (style and title left out), blocks separated by a space."""

    BLOCKS = {"td", "th", "tr", "li", "p", "h1", "h2", "h3", "div", "section", "summary", "nav", "br", "svg", "pre"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._skip += tag in ("style", "script", "title")
        if tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script", "title")
        if tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def shown(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join("".join(parser.parts).split())


def _reports(name: str, tmp_path: Path, baseline: Baseline | None = None,
             **changes: object) -> tuple[RunRecord, list[Finding], dict]:
    record = load_record(name)
    for key, value in changes.items():
        setattr(record, key, value)
    findings = run_checks(record, baseline, CheckOptions())
    return record, findings, write_reports(record, findings, tmp_path, env={})


# -- report.html, laid out ---------------------------------------------------------------------------

def test_report_html_shows_verdict_first_then_findings_tiers_installs_cells_and_environment(tmp_path: Path) -> None:
    record, findings, paths = _reports("numpy_upgrade_center", tmp_path)
    page = paths["html"].read_text(encoding="utf-8")
    text = shown(page)
    assert text.startswith("colab-ci: FAIL"), text[:80]
    failing = [f for f in findings if f.severity == "fail"]
    assert failing and all(" ".join(f.message.split()) in text for f in failing)
    assert re.findall(r'<h2 id="([a-z]+)"', page) == ["findings", "charts", "tiers", "installs", "cells", "environment",
                                                      "fidelity"]
    assert "cannot import name '_center'" in text                        # the tier test's message
    assert "numpy 2.0.2 2.1.3 yes, 2.0.2" in text                         # before, after, loaded by the kernel
    assert "2 model error 0.32 s np.char.center(np.array(['a']), 5) ImportError: cannot import name" in text  # cells
    assert f"numpy {record.environment['numpy']}" in text
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart') >= 2   # install and tier charts


def test_report_html_escapes_everything_it_shows(tmp_path: Path) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    record = minimal_record(cells=[code_cell(0, "model", status="error", error=CellError("ValueError", evil))],
                            notebook=f"nb{evil}.ipynb", fidelity=[evil])
    findings = [Finding("cells", "fail", f"cell 0 raised {evil}", cell_index=0, cell_tag="model"),
                Finding("x", "error", "crashed", evidence={"traceback": [evil]})]
    page = write_reports(record, findings, tmp_path, env={})["html"].read_text(encoding="utf-8")
    assert "<script" not in page and "<img" not in page and "onerror=alert(1)>" not in page
    assert shown(page).count('<script>alert("x")</script>') >= 4   # shown as text: message, error, notebook, fidelity


def test_report_matrix_and_history_html_escape_a_script_in_any_name_or_finding(tmp_path: Path) -> None:
    """A cell tag, a finding, an image, a timing or a problem that reads ``<script>...`` is shown as
    text on all three pages (jinja2's autoescape, harness/report/templates/), never run as markup."""
    evil = "<script>alert(1)</script>"
    record = minimal_record(cells=[code_cell(0, f"tag{evil}", status="error", error=CellError("ValueError", evil))])
    findings = [Finding("cells", "fail", f"cell 0 raised {evil}", cell_index=0, cell_tag=f"tag{evil}"),
                Finding(f"check{evil}", "info", f"a note {evil}")]
    report = write_reports(record, findings, tmp_path / "run", env={})["html"].read_text(encoding="utf-8")

    out = tmp_path / "matrix"
    _reports("clean_run", out / "a")
    image = f"image{evil}"
    runs = [_image_run(out / "a", image),
            ImageRun(f"gone{evil}", "3.12", "1.26.4", "2.6.0", error=f"build failed: {evil}", fidelity=[evil])]
    write_matrix_reports(runs, Path(f"nb{evil}.ipynb"), out)
    matrix = (out / "matrix.html").read_text(encoding="utf-8")

    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    series = []
    for day, seconds in enumerate([2.0, 2.1, 1.9, 2.0, 2.2, 9.0]):
        run = Run(f"run{day}", Path(f"run{day}"))
        run.images[image] = ImagePoint(image, Path("report.json"), when + timedelta(days=day), "pass",
                                       {f"cell 2 [install{evil}]": seconds}, 1.0, {f"tier{evil}": "pass"})
        series.append(run)
    history_page = render.render_html(trends.build(series, Rule(), problems=[f"unreadable {evil}"]))

    for name, page, shown_at_least in (("report.html", report, 5), ("matrix.html", matrix, 5),
                                       ("history.html", history_page, 4)):
        assert "<script" not in page, name
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, name
        assert shown(page).count(evil) >= shown_at_least, (name, shown(page).count(evil))
    assert f"cell 0 raised {evil}" in shown(report) and f"gone{evil}: build failed: {evil}" in shown(matrix)
    assert f"unreadable {evil}" in shown(history_page) and f"cell 2 [install{evil}]" in shown(history_page)


def test_a_template_given_too_few_names_fails_instead_of_showing_an_empty_cell() -> None:
    with pytest.raises(jinja2.UndefinedError, match="headline"):
        render_template("matrix.html.j2", title="t", verdict="pass")


def test_report_and_notebook_html_load_nothing_from_anywhere(tmp_path: Path) -> None:
    """They must open from a downloaded artifact, offline: no script, stylesheet or image by URL in
    report.html; executed.html keeps the notebook's own HTML, and its Content-Security-Policy (before
    anything else in the page) forbids the browser to run or fetch anything (checked in Chromium below)."""
    run = tmp_path / "run"
    record, _, paths = _reports("clean_run", run)
    notebook = {"cells": [{"id": "a", "cell_type": "markdown", "metadata": {}, "source": "# Title\n$x^2$"},
                          {"id": "b", "cell_type": "code", "metadata": {}, "execution_count": 1, "source": "print(1)",
                           "outputs": [{"output_type": "display_data", "metadata": {},
                                        "data": {"text/html": "<b>bold</b><script>alert(1)</script>",
                                                 "text/plain": "x"}}]}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (run / "executed.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    record.output_notebook = str(run / "executed.ipynb")
    paths = write_reports(record, run_checks(record, None, CheckOptions()), run, env={})
    report_page = paths["html"].read_text(encoding="utf-8")
    assert not EXTERNAL.search(report_page), EXTERNAL.search(report_page)
    notebook_page = paths["notebook_html"].read_text(encoding="utf-8")
    assert "<b>bold</b>" in notebook_page and "cdnjs" not in notebook_page and "require.min.js" not in notebook_page
    for page in (report_page, notebook_page):
        policy = re.search(r'<meta (?:content="([^"]+)" http-equiv="Content-Security-Policy"|'
                           r'http-equiv="Content-Security-Policy" content="([^"]+)")', page)
        assert policy and "default-src 'none'" in (policy[1] or policy[2])
        assert policy.start() < min(page.find("<style"), page.find("<script") % len(page) if "<script" in page else 10**9)
    assert 'href="executed.html"' in report_page


def test_a_missing_notebook_is_said_and_never_linked_nor_left_from_an_earlier_run(tmp_path: Path) -> None:
    (tmp_path / "executed.html").write_text("last month's notebook", encoding="utf-8")
    _, _, paths = _reports("numpy_downgrade", tmp_path)   # its executed copy was in a temporary folder
    page = paths["html"].read_text(encoding="utf-8")
    assert "notebook_html" not in paths and not (tmp_path / "executed.html").exists()
    assert "The executed notebook has no HTML view: the executed notebook" in shown(page)
    assert 'href="executed.html"' not in page
    hrefs = re.findall(r'href="([^"]+)"', page)
    assert hrefs and all((tmp_path / h).is_file() for h in hrefs), hrefs


def test_values_against_the_baseline_are_charted_from_the_findings_only(tmp_path: Path) -> None:
    good = load_record("clean_run")
    baseline = Baseline.from_record(good)
    slow = copy.deepcopy(good)
    slow.installs[0].duration_s = 40.0
    for output in slow.tiers:
        for test in output.payload["tests"]:
            if test["name"] == "benchmark":
                test["metrics"]["speed_ratio"] = 0.25
    findings = run_checks(slow, baseline, CheckOptions())
    page = write_reports(slow, findings, tmp_path / "slow", env={})["html"].read_text(encoding="utf-8")
    titles = re.findall(r"<title>(Against the baseline: [^<]+)</title>", page)
    assert titles == ["Against the baseline: cell 3 [install]: install time",
                      "Against the baseline: tier3/benchmark: speed_ratio"]
    assert 'data-value="40"' in page and 'class="reference"' in page   # the install bar and its baseline tick
    same = write_reports(good, run_checks(good, baseline, CheckOptions()), tmp_path / "same", env={})
    assert "Against the baseline" not in same["html"].read_text(encoding="utf-8")


def test_secrets_never_reach_report_html_or_executed_html(tmp_path: Path) -> None:
    secret = "s3cr3t-value-123"
    env = {"HF_TOKEN": secret}
    record = load_record("numpy_upgrade_center")
    record.cells[2].error = CellError("ValueError", f"token {secret} rejected")
    notebook = {"cells": [{"id": "a", "cell_type": "code", "metadata": {}, "execution_count": 1,
                           "source": f"# {secret}",
                           "outputs": [{"output_type": "stream", "name": "stdout", "text": f"<{secret}>&"}]}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "executed.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    record.output_notebook = str(tmp_path / "executed.ipynb")
    paths = write_reports(record, run_checks(record, None, CheckOptions()), tmp_path, env=env)
    for kind in ("html", "notebook_html"):
        text = paths[kind].read_text(encoding="utf-8")
        assert secret not in text and "***" in text, kind


# -- charts ------------------------------------------------------------------------------------------

def test_charts_draw_what_they_are_given() -> None:
    svg = bar_chart("t <&>", [Bar("a", 2.0), Bar("b", 0.0), Bar("c", 5.0, reference=1.0)])
    assert svg.count('class="bar"') == 3 and 'data-value="5"' in svg and "t &lt;&amp;&gt;" in svg
    widths = [float(w) for w in re.findall(r'class="bar" x="\d+" y="[\d.]+" width="([\d.]+)"', svg)]
    assert widths[0] == pytest.approx(widths[2] * 2 / 5) and widths[1] == 0
    line = line_chart("x", ["1", "2", "3", "4"], [1.0, None, 3.0, 9.0], [False, False, False, True], limit=6.0)
    assert line.count("<polyline") == 2 and line.count('class="point outlier"') == 1 and 'class="limit"' in line
    assert nice_ceiling(7.3) == 10 and nice_ceiling(0.23) == 0.25 and nice_ceiling(0) == 1
    assert sparkline([0.0, 1.0, None, 8.0, 4.0]) == "▁▂·█▅"   # from 0 to the largest


# -- matrix.html -------------------------------------------------------------------------------------

def _image_run(folder: Path, image: str) -> ImageRun:
    """An ImageRun as the matrix makes it after a run: read by the matrix's own reader."""
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    run = ImageRun(image, "3.11", "2.0.2", "absent", env_python="3.11", exit_code=report["exit_code"],
                   seconds=report["record"]["duration_s"], out=str(folder), fidelity=["python 3.12 -> 3.11: example"])
    read_report(run, folder / "report.json", folder / "harness.log", 0.0)
    return run


def test_matrix_html_links_each_image_report_only_when_it_is_this_runs(tmp_path: Path) -> None:
    out = tmp_path / "matrix"
    _reports("clean_run", out / "fresh")
    _reports("numpy_downgrade", out / "stale")
    stale = out / "stale" / "report.html"
    os.utime(stale, (time.time() - 3600, time.time() - 3600))   # last month's page beside this month's report
    runs = [_image_run(out / "fresh", "fresh"), _image_run(out / "stale", "stale"),
            ImageRun("gone", "3.12", "1.26.4", "2.6.0", error="environment build failed: no wheel")]
    paths = write_matrix_reports(runs, Path("template.ipynb"), out)
    page = (out / "matrix.html").read_text(encoding="utf-8")
    assert out / "matrix.html" in paths
    text = shown(page)
    assert text.startswith("colab-ci matrix: ERROR (could not tell)")   # "gone" has no verdict
    assert re.findall(r'href="([^"]+)"', page) == ["fresh/report.html"]
    assert "gone: environment build failed: no wheel" in text
    assert "Install cells: seconds per image" in page and "Tier tests: seconds per image" in page


# -- in Chromium -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def matrix_of_real_runs(target_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real runs as a matrix: ``run-a`` as recorded; ``run-b`` with its install really slowed
    (the wheel server waits 8 s) and one tier test failing, checked against ``run-a`` as baseline."""
    root = tmp_path_factory.mktemp("html-reports")
    notebook = make_history_notebook(root / "tiny.ipynb")
    out = root / "matrix"
    with wheel_server(build_wheel(root / "wheel")) as base:
        first, _, _ = record_run(notebook, out / "run-a", target_venv, base)
        record_run(notebook, out / "run-b", target_venv, base, delay_s=8, broken_test="gradient_flow",
                   baseline=Baseline.from_record(first))
    write_matrix_reports([_image_run(out / "run-a", "run-a"), _image_run(out / "run-b", "run-b")], notebook, out)
    return out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_report_html_in_chromium_shows_the_verdict_charts_and_working_links(matrix_of_real_runs: Path,
                                                                             tmp_path: Path) -> None:
    with chromium() as page:
        report = open_page(page, matrix_of_real_runs / "run-b" / "report.html", tmp_path / "report-html.png")
        notebook = open_page(page, matrix_of_real_runs / "run-b" / "executed.html", tmp_path / "executed-html.png")
    assert report.verdict.startswith("colab-ci: FAIL") and report.verdict_top is not None and report.verdict_top < 100
    assert f"{INSTALL_CELL} took" in report.text and "tier1/gradient_flow regressed from pass to fail" in report.text
    titles = [c["title"] for c in report.charts]
    assert {"Install cells: seconds each took", "Tier tests: seconds each took",
            f"Against the baseline: {INSTALL_CELL}: install time"} <= set(titles), titles
    assert all(c["visible"] for c in report.charts) and all(c["bars"] > 0 for c in report.charts)
    assert {Path(link).name for link in report.links} >= {"executed.html", "executed.ipynb", "report.md", "report.json",
                                                          "junit.xml"}
    assert report.broken == [] and report.external == [] and report.outside == []
    assert "%pip install" in notebook.text and "gradient_flow" in notebook.text   # the executed notebook, rendered
    assert "HTML from an output" in notebook.text and not notebook.scripts_ran    # its HTML shown, its script not run
    assert notebook.broken == [] and notebook.outside == []                        # nor its remote script and image
    assert sorted(notebook.blocked) == ["https://example.invalid/x.js", "https://example.invalid/x.png"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_matrix_html_in_chromium_shows_the_verdict_charts_and_working_links(matrix_of_real_runs: Path,
                                                                             tmp_path: Path) -> None:
    with chromium() as page:
        facts = open_page(page, matrix_of_real_runs / "matrix.html", tmp_path / "matrix-html.png")
    assert facts.verdict.startswith("colab-ci matrix: FAIL") and facts.verdict_top < 100
    install = next(c for c in facts.charts if c["title"] == "Install cells: seconds per image")
    assert install["bars"] == 2   # cell 1 [install] in run-a and in run-b
    assert sorted(Path(link).parent.name for link in facts.links) == ["run-a", "run-b"]
    assert facts.broken == [] and facts.external == [] and facts.outside == []
    assert "run-b: install-time: cell 1 [install] took" in facts.text
