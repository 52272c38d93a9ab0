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

from harness import progress
from harness.matrix import ImageRun, _Children, _read_report, _run_one, exit_code, render_junit, render_markdown


def _report(folder: Path, exit_code_: int, findings: list[dict]) -> Path:
    folder.mkdir(parents=True)
    path = folder / "report.json"
    path.write_text(json.dumps({"verdict": ("pass", "fail", "error")[exit_code_], "exit_code": exit_code_,
                                "findings": findings, "record": {"fidelity": []}}))
    return path


def test_aggregate_verdicts_checks_and_junit(tmp_path: Path):
    good = ImageRun("new", "3.13.15", "2.1.3", "2.11.0+cpu", exit_code=0, fidelity=["python 3.13.15 -> 3.11.7: x"])
    _read_report(good, _report(tmp_path / "new", 0, [{"check": "tiers", "severity": "info", "message": "ok"}]),
                 tmp_path / "new.log", 0.0)
    bad = ImageRun("old", "3.12.12", "2.0.2", "2.9.0+cu126", exit_code=1)
    _read_report(bad, _report(tmp_path / "old", 1, [
        {"check": "corruption", "severity": "fail", "message": "numpy 2.0.2 was replaced by 1.26.4 in cell 7"},
        {"check": "install-time", "severity": "warn", "message": "slow"}]), tmp_path / "old.log", 0.0)
    missing = ImageRun("gone", "3.11.11", "1.26.4", "2.6.0+cu124", exit_code=2)
    _read_report(missing, tmp_path / "nothing" / "report.json", tmp_path / "none.log", 0.0)

    assert good.verdict == "pass" and set(good.checks.values()) == {"pass"}
    assert bad.verdict == "fail" and bad.checks["corruption"] == "fail" and bad.checks["install-time"] == "warn"
    assert bad.failures == ["corruption: numpy 2.0.2 was replaced by 1.26.4 in cell 7"]
    assert missing.verdict == "error" and "wrote no report (exit 2)" in missing.error
    assert exit_code([good]) == 0 and exit_code([good, bad]) == 1 and exit_code([good, bad, missing]) == 2

    markdown = render_markdown([good, bad], Path("template.ipynb"))
    assert "| old | 3.12.12 -> - | 2.0.2 | 2.9.0+cu126 | fail | pass | pass | warn | pass | pass | **fail** |" in markdown
    assert "**old**: corruption: numpy 2.0.2 was replaced by 1.26.4 in cell 7" in markdown
    assert "- python 3.13.15 -> 3.11.7: x" in markdown

    suites = ET.fromstring(render_junit([good, bad, missing]))
    suite = suites.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("13", "1", "1")
    failure = suite.find("testcase[@classname='matrix.old'][@name='corruption']/failure")
    assert failure.get("message") == "numpy 2.0.2 was replaced by 1.26.4 in cell 7"


def test_a_report_that_says_error_or_predates_the_run_is_never_a_verdict(tmp_path: Path):
    could_not_tell = ImageRun("img", "3.12", "2.0.2", "2.9.0", exit_code=2)
    _read_report(could_not_tell, _report(tmp_path / "a", 2, [{"check": "corruption", "severity": "error",
                                                              "message": "the start-up probe failed"}]),
                 tmp_path / "a.log", 0.0)
    assert could_not_tell.verdict == "error" and could_not_tell.checks["corruption"] == "error"
    old = _report(tmp_path / "b", 0, [])
    os.utime(old, (time.time() - 3600, time.time() - 3600))   # last month's report, left in the folder
    stale = ImageRun("img", "3.12", "2.0.2", "2.9.0", exit_code=1)
    _read_report(stale, old, tmp_path / "b.log", time.time())
    assert stale.verdict == "error" and "wrote no report" in stale.error


def test_a_run_that_dies_early_leaves_no_earlier_verdict_behind(tmp_path: Path):
    folder = tmp_path / "out" / "img"
    _report(folder, 0, [])           # a green report from an earlier matrix run in the same --out
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 3\n")   # the run's interpreter dies at once
    fake.chmod(0o755)
    run = ImageRun("img", "3.12", "2.0.2", "2.9.0")
    shown = progress.LineDisplay(io.StringIO())
    _run_one(run, fake, Path("nb.ipynb"), tmp_path / "out", {}, None, [], dict(os.environ), _Children(), shown)
    assert run.verdict == "error" and not (folder / "report.json").exists()


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
