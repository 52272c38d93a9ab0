"""The matrix's aggregation of per-image reports (no runs: report.json files written here)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.matrix import ImageRun, _read_report, exit_code, render_junit, render_markdown


def _report(folder: Path, exit_code_: int, findings: list[dict]) -> Path:
    folder.mkdir(parents=True)
    path = folder / "report.json"
    path.write_text(json.dumps({"verdict": "fail" if exit_code_ else "pass", "exit_code": exit_code_,
                                "findings": findings}))
    return path


def test_aggregate_verdicts_checks_and_junit(tmp_path: Path):
    good = ImageRun("new", "3.13.15", "2.1.3", "2.11.0+cpu", exit_code=0, fidelity=["python 3.13.15 -> 3.11.7: x"])
    _read_report(good, _report(tmp_path / "new", 0, [{"check": "tiers", "severity": "info", "message": "ok"}]),
                 tmp_path / "new.log")
    bad = ImageRun("old", "3.12.12", "2.0.2", "2.9.0+cu126", exit_code=1)
    _read_report(bad, _report(tmp_path / "old", 1, [
        {"check": "corruption", "severity": "fail", "message": "numpy 2.0.2 was replaced by 1.26.4 in cell 7"},
        {"check": "install-time", "severity": "warn", "message": "slow"}]), tmp_path / "old.log")
    missing = ImageRun("gone", "3.11.11", "1.26.4", "2.6.0+cu124", exit_code=2)
    _read_report(missing, tmp_path / "nothing" / "report.json", tmp_path / "none.log")

    assert good.verdict == "pass" and set(good.checks.values()) == {"pass"}
    assert bad.verdict == "fail" and bad.checks["corruption"] == "fail" and bad.checks["install-time"] == "warn"
    assert bad.failures == ["corruption: numpy 2.0.2 was replaced by 1.26.4 in cell 7"]
    assert missing.verdict == "error" and "wrote no report (exit 2)" in missing.error
    assert exit_code([good]) == 0 and exit_code([good, bad]) == 1 and exit_code([good, bad, missing]) == 2

    markdown = render_markdown([good, bad], Path("template.ipynb"))
    assert "| old | 3.12.12 -> - | 2.0.2 | 2.9.0+cu126 | fail | warn | pass | pass | **fail** |" in markdown
    assert "**old**: corruption: numpy 2.0.2 was replaced by 1.26.4 in cell 7" in markdown
    assert "- python 3.13.15 -> 3.11.7: x" in markdown

    suites = ET.fromstring(render_junit([good, bad, missing]))
    suite = suites.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("9", "1", "1")
    failure = suite.find("testcase[@classname='matrix.old'][@name='corruption']/failure")
    assert failure.get("message") == "numpy 2.0.2 was replaced by 1.26.4 in cell 7"
