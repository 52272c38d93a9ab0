"""Several notebooks on one command line (issue 18, item 2): globs, folder names, the matrix of
notebooks x images with one combined report, one JUnit test suite per notebook and image, one alert
naming notebook, image and cell; ``run`` over a glob; one notebook keeps today's layout.

The real runs use a tiny image profile (six 1.16.0; the mirror adds Colab's kernel and pip) built
with ``--mode local``, the cheapest environment the matrix can build, and tiny notebooks.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest

from harness.alert.texts import issue_body
from harness.core.errors import HarnessError
from harness.core.labels import cell_label
from harness.images.closure import Pin
from harness.images.profiles import Profile, save_profile
from harness.report.aggregate_model import Subject, failing_subjects
from harness.report.junit import render_matrix
from harness.report.matrix_records import ImageRun
from harness.report.readers import load_run
from harness.source.notebook_globs import expand_notebooks, notebook_slugs
from tests.harness.conftest import make_notebook

REPO = Path(__file__).resolve().parents[2]
IMAGE = "tiny-many"
FAILING_CELL = cell_label(1, "boom")     # the failing notebook's second cell, tagged "boom"


# -- globs and folder names ------------------------------------------------------------------------------

def test_globs_expand_recursively_in_order_each_notebook_once(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("nb/b.ipynb", "nb/a.ipynb", "nb/deep/er/c.ipynb", "nb/.ipynb_checkpoints/a-checkpoint.ipynb",
                 "nb/notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    assert expand_notebooks(["nb/*.ipynb"]) == [Path("nb/a.ipynb"), Path("nb/b.ipynb")]
    assert expand_notebooks(["nb/b.ipynb", "nb/**/*.ipynb"]) == [
        Path("nb/b.ipynb"), Path("nb/a.ipynb"), Path("nb/deep/er/c.ipynb")]
    assert expand_notebooks(["missing.ipynb"]) == [Path("missing.ipynb")]   # the verb says it does not exist
    with pytest.raises(HarnessError, match=r"'nb/\*\*/\*\.py' matches no notebook"):
        expand_notebooks(["nb/*.ipynb", "nb/**/*.py"])


def test_folder_names_are_readable_stable_and_unique(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    books = [Path("course/week 1/intro.ipynb"), Path("course/week-1/intro.ipynb"), Path("examples/plot.ipynb")]
    slugs = notebook_slugs(books)
    assert slugs[Path("examples/plot.ipynb")] == "examples-plot"
    # "week 1" and "week-1" would both be course-week_1-intro / course-week-1-intro: readable, and distinct
    assert slugs[books[0]] == "course-week_1-intro" and slugs[books[1]] == "course-week-1-intro"
    clash = notebook_slugs([Path("a/b-c.ipynb"), Path("a-b/c.ipynb")])
    assert len(set(clash.values())) == 2 and all(s.startswith("a-b-c-") for s in clash.values())
    assert notebook_slugs([Path("a/b-c.ipynb"), Path("a-b/c.ipynb")]) == clash   # the same names every time
    # outside the working directory: named from the folder above the notebooks' common folder
    outside = notebook_slugs([tmp_path.parent / "x" / "one.ipynb", tmp_path.parent / "x" / "two.ipynb"])
    monkeypatch.chdir(tmp_path / "..")
    assert notebook_slugs([Path("/nowhere/x/one.ipynb"), Path("/nowhere/x/two.ipynb")]) == {
        Path("/nowhere/x/one.ipynb"): "x-one", Path("/nowhere/x/two.ipynb"): "x-two"}
    assert sorted(outside.values()) == ["x-one", "x-two"]


def test_junit_of_several_notebooks_has_one_suite_per_notebook_and_image():
    legs = [ImageRun(image, "3.12", "2.0.2", "2.9.0", notebook=book, verdict="pass", exit_code=0,
                     checks={"cells": "pass"})
            for book in ("a", "b") for image in ("img1", "img2")]
    legs[3].error = "the run wrote no report (exit 2): boom"
    suites = ET.fromstring(render_matrix(legs, ["cells"])).findall("testsuite")
    assert [s.get("name") for s in suites] == ["colab-ci: a on img1", "colab-ci: a on img2",
                                              "colab-ci: b on img1", "colab-ci: b on img2"]
    assert suites[3].find("testcase[@classname='b.img2'][@name='run']/error") is not None
    assert [s.get("errors") for s in suites] == ["0", "0", "0", "1"]
    # one notebook: today's single suite
    one = ET.fromstring(render_matrix([ImageRun("img1", "3.12", "2.0.2", "2.9.0")], ["cells"]))
    assert [s.get("name") for s in one.findall("testsuite")] == ["colab-ci matrix"]


# -- the command line --------------------------------------------------------------------------------------

def _harness(cwd: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("verb", [["run"], ["matrix"], ["preflight", "--notebook"], ["smoke", "--notebook"]])
def test_a_glob_matching_no_notebook_is_exit_2(tmp_path: Path, verb: list[str]):
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "readme.md").write_text("not a notebook")
    done = _harness(tmp_path, *verb, "examples/**/*.ipynb", "--out", str(tmp_path / "out"), timeout=100)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "'examples/**/*.ipynb' matches no notebook" in done.stderr


def _examples(root: Path) -> Path:
    """Three tiny notebooks, one failing in its second cell (tagged ``boom``)."""
    folder = root / "examples"
    make_notebook(folder / "adds.ipynb", [("x = 1 + 1", []), ("print(x)", [])])
    make_notebook(folder / "fails.ipynb", [("y = 2", []), ("raise ValueError('broken on purpose')", ["boom"]),
                                           ("print(y)", [])])
    make_notebook(folder / "greets.ipynb", [("print('hello')", [])])
    return folder


@pytest.fixture(scope="module")
def tiny_image(tmp_path_factory) -> dict[str, Path]:
    """A profile of a tiny image (six 1.16.0), saved where ``--profiles-dir`` finds it."""
    root = tmp_path_factory.mktemp("many")
    profile = Profile(name=IMAGE, date="2026-01-15", runtime="cpu", python="3.11.7", os="", source={},
                      platform="", roots={}, pins=[Pin("six", "1.16.0", ["(root)"])], outside_image={},
                      gpu_only={}, dropped=[], image={"six": "1.16.0"}, freeze_sha256="", closure={})
    save_profile(profile, root / "profiles")
    return {"profiles": root / "profiles", "cache": root / "cache"}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_matrix_of_three_notebooks_names_the_failing_notebook_image_and_cell(tiny_image, tmp_path: Path):
    _examples(tmp_path)
    out = tmp_path / "out"
    done = _harness(tmp_path, "matrix", "examples/*.ipynb", "--images", IMAGE, "--mode", "local",
                    "--profiles-dir", str(tiny_image["profiles"]), "--cache-dir", str(tiny_image["cache"]),
                    "--out", str(out), "--baselines", str(tmp_path / "no-baselines"), timeout=560)
    assert done.returncode == 1, done.stdout + done.stderr
    # one leg per notebook and image, each in its own folder; one combined report at the top
    slugs = ("examples-adds", "examples-fails", "examples-greets")
    for slug in slugs:
        assert json.loads((out / slug / IMAGE / "report.json").read_text())["verdict"] == (
            "fail" if slug == "examples-fails" else "pass")
    summary = json.loads((out / "matrix.json").read_text())
    assert summary["verdict"] == "fail" and summary["notebooks"] == [f"examples/{n}.ipynb" for n in ("adds", "fails", "greets")]
    assert [(r["notebook"], r["image"], r["verdict"]) for r in summary["images"]] == [
        ("examples-adds", IMAGE, "pass"), ("examples-fails", IMAGE, "fail"), ("examples-greets", IMAGE, "pass")]
    markdown = (out / "matrix.md").read_text()
    assert f"**examples-fails / {IMAGE}**: cells: {FAILING_CELL} raised ValueError: broken on purpose" in markdown
    assert f"**examples-fails / {IMAGE}**" in done.stdout            # the table printed at the end says it too
    assert f"examples-fails / {IMAGE}" in (out / "matrix.html").read_text()
    # JUnit: one suite per notebook x image, a case per cell, the failing cell a failure
    suites = {s.get("name"): s for s in ET.parse(out / "junit.xml").getroot().findall("testsuite")}
    assert set(suites) == {f"colab-ci: {slug} on {IMAGE}" for slug in slugs}
    failing = suites[f"colab-ci: examples-fails on {IMAGE}"]
    case = failing.find(f"testcase[@classname='examples-fails.{IMAGE}.cells'][@name='{FAILING_CELL}']")
    assert case.find("failure").get("message") == "ValueError: broken on purpose"
    assert failing.find(f"testcase[@name='{cell_label(2)}']/skipped") is not None   # the cell after it never ran
    assert all(s.get("failures") == "0" for name, s in suites.items() if "fails" not in name)
    # the legs ran in parallel: each started before another had ended
    spans = []
    for slug in slugs:
        record = json.loads((out / slug / IMAGE / "report.json").read_text())["record"]
        start = datetime.fromisoformat(record["started_at"]).timestamp()
        spans.append((start, start + record["duration_s"]))
    assert max(start for start, _end in spans) < min(end for _start, end in spans)
    # one alert over the matrix's folder names the notebook, the image and the cell
    run = load_run(out)
    assert failing_subjects(run) == {Subject("image", f"examples-fails/{IMAGE}", FAILING_CELL)}
    assert f'"failing":[["image","examples-fails/{IMAGE}","{FAILING_CELL}"]]' in issue_body(run, "")


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_run_with_a_glob_runs_each_notebook_into_its_folder_with_one_combined_report(tmp_path: Path):
    folder = _examples(tmp_path)
    make_notebook(folder / "more" / "deeper.ipynb", [("z = 3", [])])
    out = tmp_path / "out"
    done = _harness(tmp_path, "run", "examples/**/*.ipynb", "--out", str(out), timeout=380)
    assert done.returncode == 1, done.stdout + done.stderr      # the worst: fails.ipynb
    slugs = ["examples-adds", "examples-fails", "examples-greets", "examples-more-deeper"]
    assert sorted(p.parent.name for p in out.glob("*/report.json")) == slugs
    summary = json.loads((out / "matrix.json").read_text())
    assert [(r["notebook"], r["verdict"]) for r in summary["images"]] == [
        (s, "fail" if s == "examples-fails" else "pass") for s in slugs]
    suites = ET.parse(out / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == [f"colab-ci: {s} on local" for s in slugs]
    assert f"**examples-fails / local**: cells: {FAILING_CELL} raised ValueError" in done.stdout
    # a workflow's runner that ran them all left IMAGE/<notebook>/report.json: --expect IMAGE finds it there
    reports = load_run(tmp_path, expect=["out", "gone"])
    assert sorted(r.image for r in reports.images) == ["gone", *(f"out/{s}" for s in slugs)]
    assert [r.image for r in reports.images if r.problem] == ["gone"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_one_notebook_keeps_todays_layout(tmp_path: Path):
    _examples(tmp_path)
    out = tmp_path / "out"
    done = _harness(tmp_path, "run", "examples/fails.ipynb", "--out", str(out), timeout=280)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (out / "report.json").is_file() and (out / "junit.xml").is_file()
    assert not (out / "matrix.json").exists() and not [p for p in out.iterdir() if (p / "report.json").exists()]
    suites = ET.parse(out / "junit.xml").getroot().findall("testsuite")
    assert len(suites) == 1 and suites[0].find(f"testcase[@classname='cells'][@name='{FAILING_CELL}']/failure") is not None
    # a glob that matches one notebook is that notebook, with the same layout
    again = _harness(tmp_path, "run", "examples/f*.ipynb", "--out", str(tmp_path / "again"), timeout=280)
    assert again.returncode == 1 and (tmp_path / "again" / "report.json").is_file()


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_preflight_of_several_notebooks_checks_each_with_one_summary(tiny_image, tmp_path: Path):
    folder = _examples(tmp_path)
    make_notebook(folder / "installs.ipynb", [("%pip install six==999.0.0", [])])   # no such release: would fail
    out = tmp_path / "out"
    done = _harness(tmp_path, "preflight", "--notebook", "examples/*.ipynb", "--images", IMAGE, "--mode", "local",
                    "--profiles-dir", str(tiny_image["profiles"]), "--cache-dir", str(tiny_image["cache"]),
                    "--out", str(out), "--json", timeout=380)
    assert done.returncode == 1, done.stdout + done.stderr      # the worst of the four
    combined = json.loads(done.stdout)                          # stdout is one JSON document
    assert (combined["verdict"], combined["exit_code"]) == ("fail", 1)
    assert [(n["notebook"], n["exit_code"], n["report"]["images"][0]["status"]) for n in combined["notebooks"]] == [
        ("examples/adds.ipynb", 0, "ok"), ("examples/fails.ipynb", 0, "ok"), ("examples/greets.ipynb", 0, "ok"),
        ("examples/installs.ipynb", 1, "fails")]
    for slug in ("examples-adds", "examples-fails", "examples-greets", "examples-installs"):
        assert (out / slug / "preflight.json").is_file()
    assert "| examples/installs.ipynb | FAIL | 1 | " in (out / "summary.md").read_text()


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_smoke_of_several_notebooks_in_the_browser_with_one_summary(tmp_path: Path):
    _examples(tmp_path)
    out = tmp_path / "out"
    done = _harness(tmp_path, "smoke", "--notebook", "examples/adds.ipynb", "examples/f*.ipynb", "--out", str(out),
                    "--timeout", "150", timeout=380)
    assert done.returncode == 1, done.stdout + done.stderr
    assert json.loads((out / "examples-adds" / "smoke.json").read_text())["verdict"] == "pass"
    failed = json.loads((out / "examples-fails" / "smoke.json").read_text())
    assert failed["verdict"] == "fail" and FAILING_CELL in failed["results"][0]["message"]
    assert "| examples/fails.ipynb | FAIL | 1 | " in (out / "summary.md").read_text()


@pytest.mark.timeout(60)
def test_a_notebook_that_cannot_be_read_fails_its_own_legs_only(tmp_path: Path):
    from harness.core import progress
    from harness.matrix.run import matrix
    from harness.report.matrix_records import exit_code
    from harness.report.matrix_reports import write_reports

    profile = Profile(name=IMAGE, date="2026-01-15", runtime="cpu", python="3.11.7", os="", source={},
                      platform="", roots={}, pins=[Pin("six", "1.16.0", ["(root)"])], outside_image={},
                      gpu_only={}, dropped=[], image={"six": "1.16.0"}, freeze_sha256="", closure={})
    books = [tmp_path / "nb" / "torn.ipynb", tmp_path / "nb" / "empty.ipynb"]
    books[0].parent.mkdir()
    books[0].write_text('{"cells": [')
    books[1].write_text("")
    legs = matrix([profile], books, tmp_path / "out", shown=progress.LineDisplay(io.StringIO()),
                  cache_dir=tmp_path / "cache")
    assert [(leg.label, leg.verdict) for leg in legs] == [(f"nb-torn / {IMAGE}", "error"), (f"nb-empty / {IMAGE}", "error")]
    assert all(leg.error.startswith("could not read ") for leg in legs) and exit_code(legs) == 2
    write_reports(legs, books, tmp_path / "out")
    suites = ET.parse(tmp_path / "out" / "junit.xml").getroot().findall("testsuite")
    assert [(s.get("name"), s.get("errors")) for s in suites] == [(f"colab-ci: nb-torn on {IMAGE}", "1"),
                                                                 (f"colab-ci: nb-empty on {IMAGE}", "1")]


@pytest.mark.timeout(120)
def test_run_of_several_notebooks_refuses_one_baseline_for_all(tmp_path: Path):
    _examples(tmp_path)
    done = _harness(tmp_path, "run", "examples/*.ipynb", "--baseline", "b.json", "--update-baseline",
                    "--out", str(tmp_path / "out"), timeout=100)
    assert done.returncode == 2 and "--baseline and --update-baseline are one notebook's" in done.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "b.json").exists()
