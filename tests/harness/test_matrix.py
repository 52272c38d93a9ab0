"""The matrix's reading and aggregation of per-image reports, and how it ends its runs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.core import progress
from harness.checks import CHECKS
from harness.matrix.run import _Children, _run_one
from harness.report.matrix_records import ImageRun, exit_code, read_report
from harness.report.matrix_reports import render_markdown
from harness.report.junit import render_matrix
from tests.harness.conftest import make_notebook


def render_junit(runs: list[ImageRun]) -> str:
    return render_matrix(runs, list(CHECKS))


def _report(folder: Path, exit_code_: int, findings: list[dict]) -> Path:
    folder.mkdir(parents=True)
    path = folder / "report.json"
    path.write_text(json.dumps({"report_schema_version": 2, "verdict": ("pass", "fail", "error")[exit_code_],
                                "exit_code": exit_code_,
                                "findings": findings, "record": {"fidelity": []}}))
    return path


def _ran(folder: Path, python: str, numpy: str, torch: str) -> Path:
    """A passing report whose kernel started on these versions (the probe's ``environment``)."""
    path = _report(folder, 0, [])
    report = json.loads(path.read_text())
    report["record"]["environment"] = {"python": python, "numpy": numpy, "torch": torch}
    path.write_text(json.dumps(report))
    return path


def test_the_table_shows_what_ran_beside_the_images_versions_and_names_the_stand_ins(tmp_path: Path):
    # the build said 3.11.7 and no torch; the run's own report (what its kernel started on) wins
    old = ImageRun("old", "3.12.12", "2.0.2", "2.9.0+cu126", env_python="3.11.7", env_torch="absent", exit_code=0)
    read_report(old, _ran(tmp_path / "old", "3.11.7", "2.0.2", "2.13.0+cpu"), tmp_path / "old.log", 0.0)
    # the CPU build of the image's own release is no stand-in; a numpy substituted for this Python is one
    new = ImageRun("new", "3.13.15", "2.1.3", "2.11.0+cu126", exit_code=0)
    read_report(new, _ran(tmp_path / "new", "3.13.15", "2.1.2", "2.11.0+cpu"), tmp_path / "new.log", 0.0)
    bare = ImageRun("bare", "3.11.11", "1.26.4", "2.6.0+cu124", exit_code=0)
    read_report(bare, _ran(tmp_path / "bare", "3.11.11", "1.26.4", "absent"), tmp_path / "bare.log", 0.0)

    assert (old.env_python, old.env_torch, new.env_numpy) == ("3.11.7", "2.13.0+cpu", "2.1.2")
    markdown = render_markdown([old, new, bare], Path("template.ipynb"))
    assert "| image | Python (image -> env) | numpy | torch (image -> env) |" in markdown
    assert "| old | 3.12.12 -> 3.11.7 | 2.0.2 | 2.9.0+cu126 -> 2.13.0+cpu |" in markdown
    assert "| new | 3.13.15 -> 3.13.15 | 2.1.3 -> 2.1.2 | 2.11.0+cu126 -> 2.11.0+cpu |" in markdown
    assert "| bare | 3.11.11 -> 3.11.11 | 1.26.4 | 2.6.0+cu124 -> absent |" in markdown
    assert ("\nStand-ins (the environment ran another release than the image's): Python in 1 of 3 (old); numpy in 1 of 3 (new); "
            "torch in 1 of 3 (old).\n") in markdown
    same = ImageRun("same", "3.12.12", "2.0.2", "2.9.0+cu126", env_python="3.12.12", env_numpy="2.0.2",
                    env_torch="2.9.0+cpu")
    assert "\nStand-ins: none;" in render_markdown([same], Path("template.ipynb"))


def test_aggregate_verdicts_checks_and_junit(tmp_path: Path):
    good = ImageRun("new", "3.13.15", "2.1.3", "2.11.0+cpu", exit_code=0, fidelity=["python 3.13.15 -> 3.11.7: x"])
    read_report(good, _report(tmp_path / "new", 0, [{"check": "tiers", "severity": "info", "message": "ok"}]),
                 tmp_path / "new.log", 0.0)
    bad = ImageRun("old", "3.12.12", "2.0.2", "2.9.0+cu126", exit_code=1)
    read_report(bad, _report(tmp_path / "old", 1, [
        {"check": "corruption", "severity": "fail", "message": "numpy 2.0.2 was replaced by 1.26.4 in cell 7"},
        {"check": "install-time", "severity": "warn", "message": "slow"}]), tmp_path / "old.log", 0.0)
    missing = ImageRun("gone", "3.11.11", "1.26.4", "2.6.0+cu124", exit_code=2)
    read_report(missing, tmp_path / "nothing" / "report.json", tmp_path / "none.log", 0.0)

    assert good.verdict == "pass" and set(good.checks.values()) == {"pass"}
    assert bad.verdict == "fail" and bad.checks["corruption"] == "fail" and bad.checks["install-time"] == "warn"
    assert bad.failures == ["corruption: numpy 2.0.2 was replaced by 1.26.4 in cell 7"]
    assert missing.verdict == "error" and "wrote no report (exit 2)" in missing.error
    assert exit_code([good]) == 0 and exit_code([good, bad]) == 1 and exit_code([good, bad, missing]) == 2

    markdown = render_markdown([good, bad], Path("template.ipynb"))
    assert "| old | 3.12.12 -> - | 2.0.2 | 2.9.0+cu126 -> - | fail | pass | pass | warn | pass | pass | **fail** |" in markdown
    assert "**old**: corruption: numpy 2.0.2 was replaced by 1.26.4 in cell 7" in markdown
    assert "- python 3.13.15 -> 3.11.7: x" in markdown

    suites = ET.fromstring(render_junit([good, bad, missing]))
    suite = suites.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("13", "1", "1")
    failure = suite.find("testcase[@classname='matrix.old'][@name='corruption']/failure")
    assert failure.get("message") == "numpy 2.0.2 was replaced by 1.26.4 in cell 7"


def test_a_report_that_says_error_or_predates_the_run_is_never_a_verdict(tmp_path: Path):
    could_not_tell = ImageRun("img", "3.12", "2.0.2", "2.9.0", exit_code=2)
    read_report(could_not_tell, _report(tmp_path / "a", 2, [{"check": "corruption", "severity": "error",
                                                              "message": "the start-up probe failed"}]),
                 tmp_path / "a.log", 0.0)
    assert could_not_tell.verdict == "error" and could_not_tell.checks["corruption"] == "error"
    old = _report(tmp_path / "b", 0, [])
    os.utime(old, (time.time() - 3600, time.time() - 3600))   # last month's report, left in the folder
    stale = ImageRun("img", "3.12", "2.0.2", "2.9.0", exit_code=1)
    read_report(stale, old, tmp_path / "b.log", time.time())
    assert stale.verdict == "error" and "wrote no report" in stale.error


def test_junit_renders_a_run_whose_checks_say_error_as_errors_never_as_passing(tmp_path: Path):
    could_not_tell = ImageRun("img", "3.12", "2.0.2", "2.9.0", exit_code=2)
    read_report(could_not_tell, _report(tmp_path / "a", 2, [
        {"check": "corruption", "severity": "error", "message": "the start-up probe failed: \x1b[31mboom"},
        {"check": "cells", "severity": "fail", "message": "cell 2 raised ValueError: x"}]), tmp_path / "a.log", 0.0)
    suite = ET.fromstring(render_junit([could_not_tell])).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("7", "1", "2")
    error = suite.find("testcase[@classname='matrix.img'][@name='corruption']/error")
    assert error.get("message") == "the start-up probe failed: [31mboom"   # no character XML forbids
    assert suite.find("testcase[@classname='matrix.img'][@name='run']/error").get("message").startswith(
        "the run could not tell (exit 2)")
    assert suite.find("testcase[@classname='matrix.img'][@name='cells']/failure") is not None


@pytest.mark.parametrize("code, said, words", [
    (-9, "pass", "ended abnormally (killed by SIGKILL) after writing its report"),
    (3, "pass", "ended abnormally (exit 3) after writing its report"),
    (137, "fail", "ended abnormally (exit 137) after writing its report"),
    (0, "fail", "exit status 0 disagrees with its report (verdict 'fail')"),
    (1, "pass", "exit status 1 disagrees with its report (verdict 'pass')"),
])
def test_a_runs_exit_status_wins_over_its_report(tmp_path: Path, code: int, said: str, words: str):
    path = _report(tmp_path / "leg", ("pass", "fail").index(said), [])
    run = ImageRun("img", "3.12", "2.0.2", "2.9.0", exit_code=code)
    read_report(run, path, tmp_path / "leg.log", 0.0)
    assert run.verdict == "error" and words in run.error
    assert exit_code([run]) == 2
    assert ET.fromstring(render_junit([run])).find("testsuite").get("errors") == "1"


# A harness interpreter that really dies: ``python -m harness`` that kills itself with SIGKILL when its
# run's first cell is running in the kernel (WHEN=cell), or after the run wrote its reports (WHEN=exit).
_DYING_HARNESS = """#!{python}
import os, runpy, signal, sys, threading, time

def _die():
    os.kill(os.getpid(), signal.SIGKILL)

def _when_a_cell_runs(progress_file):
    while True:
        try:
            with open(progress_file, encoding="utf-8") as handle:
                if "running" in handle.read():
                    _die()
        except OSError:
            pass
        time.sleep(0.05)

if {when!r} == "cell":
    threading.Thread(target=_when_a_cell_runs, args=(os.environ["COLAB_CI_PROGRESS_FILE"],), daemon=True).start()
sys.path.insert(0, {repo!r})
try:
    runpy.run_module("harness", run_name="__main__", alter_sys=True)
finally:
    _die()
"""


def _dying_harness(tmp_path: Path, when: str) -> str:
    path = tmp_path / f"harness-dies-{when}"
    path.write_text(_DYING_HARNESS.format(python=sys.executable, when=when,
                                          repo=str(Path(__file__).resolve().parents[2])))
    path.chmod(0o755)
    return str(path)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_run_killed_mid_run_leaves_no_earlier_verdict_behind(target_venv: Path, tmp_path: Path):
    folder = tmp_path / "out" / "img"
    _report(folder, 0, [])           # a green report from an earlier matrix run in the same --out
    notebook = make_notebook(tmp_path / "slow.ipynb", [("import time\ntime.sleep(30)", [])])
    run = ImageRun("img", "3.12", "2.0.2", "2.9.0")
    shown = progress.LineDisplay(io.StringIO())
    _run_one(run, target_venv, notebook, tmp_path / "out", {}, None, [], dict(os.environ), _Children(), shown,
             harness=[_dying_harness(tmp_path, "cell")])
    assert run.exit_code == -9 and run.seconds < 30   # killed while its cell slept, not after
    assert run.verdict == "error" and run.error.startswith("the run wrote no report (killed by SIGKILL)")
    assert not (folder / "report.json").exists() and not run.checks


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_run_killed_after_writing_a_green_report_is_not_green(target_venv: Path, tmp_path: Path):
    notebook = make_notebook(tmp_path / "ok.ipynb", [("print(1 + 1)", [])])
    run = ImageRun("img", "3.12", "2.0.2", "2.9.0")
    shown = progress.LineDisplay(io.StringIO())
    _run_one(run, target_venv, notebook, tmp_path / "out", {}, None, [], dict(os.environ), _Children(), shown,
             harness=[_dying_harness(tmp_path, "exit")])
    report = json.loads((tmp_path / "out" / "img" / "report.json").read_text())
    assert report["verdict"] == "pass"      # the run itself passed and said so ...
    assert run.exit_code == -9              # ... then its process was killed
    assert run.verdict == "error" and "ended abnormally (killed by SIGKILL) after writing its report" in run.error
    assert exit_code([run]) == 2


def test_an_interrupted_matrix_passes_sigterm_to_every_run(tmp_path: Path):
    children = _Children()
    script = ("import signal, sys, time\n"
              "signal.signal(signal.SIGTERM, lambda *a: (print('got SIGTERM', flush=True), sys.exit(130)))\n"
              "print('ready', flush=True); time.sleep(60)\n")
    procs = [children.start([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        assert proc is not None and proc.stdout is not None and proc.stdout.readline() == "ready\n"
    children.stop()
    assert [(p.returncode, p.stdout.read()) for p in procs] == [(130, "got SIGTERM\n")] * 2
    assert children.start([sys.executable, "-c", "pass"]) is None   # nothing new starts once stopping
