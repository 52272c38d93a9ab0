"""Reports: every file parses, shows the findings it was given, and never leaks a secret."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from html import escape as xml_escape
from pathlib import Path

import pytest

from harness import __version__
from harness.checks import CheckOptions, run_checks
from harness.checks.baseline import Baseline
from harness.core.records import CellError, Finding, RunRecord
from harness.report import github, json_report, markdown, redact, verdict_text, write_reports
from tests.harness.recorded_runs import code_cell, load_record, minimal_record, tier_payload, with_tiers


@pytest.fixture(autouse=True)
def _no_github(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run inside GitHub Actions too: start every test outside it."""
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


def _checked(name: str) -> tuple[RunRecord, list[Finding]]:
    record = load_record(name)
    return record, run_checks(record, None, CheckOptions())


def test_write_reports_writes_the_three_files(tmp_path: Path) -> None:
    record, findings = _checked("numpy_downgrade")
    out = io.StringIO()
    paths = write_reports(record, findings, tmp_path / "out", stream=out)
    assert {k: p.name for k, p in paths.items()} == {"json": "report.json", "markdown": "report.md",
                                                    "junit": "junit.xml", "html": "report.html"}
    assert all(p.is_file() for p in paths.values())
    assert out.getvalue() == ""  # not in GitHub Actions: no annotations


def test_report_json_is_versioned_and_round_trips(tmp_path: Path) -> None:
    record, findings = _checked("numpy_downgrade")
    data = json.loads(write_reports(record, findings, tmp_path)["json"].read_text(encoding="utf-8"))
    assert data["report_schema_version"] == json_report.REPORT_SCHEMA_VERSION
    assert data["harness_version"] == __version__
    assert (data["verdict"], data["exit_code"]) == ("fail", 1)
    assert data["counts"]["fail"] == sum(1 for f in findings if f.severity == "fail")
    assert json_report.read(data) == (record, findings)


def test_report_json_rejects_unknown_version() -> None:
    with pytest.raises(ValueError, match=re.escape("report.json: field 'report_schema_version': 99 is not one of [2]")):
        json_report.read({"report_schema_version": 99})


def test_junit_has_cells_tiers_and_failing_checks(tmp_path: Path) -> None:
    record, findings = _checked("numpy_upgrade_center")
    root = ET.parse(write_reports(record, findings, tmp_path)["junit"]).getroot()
    [suite] = root.findall("testsuite")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.findall("testcase")}
    cell_names = [name for cls, name in cases if cls == "cells"]
    assert cell_names == ["cell 0", "cell 1 [install]", "cell 2 [model]", "cell 3 [tier1]"]
    assert cases[("cells", "cell 2 [model]")].find("failure") is None   # raises-exception: expected
    assert cases[("cells", "cell 1 [install]")].find("failure") is None
    failure = cases[("tier1", "shape_robustness")].find("failure")
    assert failure is not None and "cannot import name '_center'" in failure.get("message", "")
    check_cases = [c for (cls, _), c in cases.items() if cls == "checks"]
    assert len(check_cases) == sum(1 for f in findings if f.severity == "fail")
    assert all(c.find("failure") is not None for c in check_cases)
    assert int(suite.get("tests", "0")) == len(cases)
    assert int(suite.get("failures", "0")) == sum(1 for c in cases.values() if c.find("failure") is not None)


def test_a_check_that_could_not_tell_is_a_junit_error_and_an_error_verdict(tmp_path: Path) -> None:
    findings = [Finding("corruption", "error", "the start-up probe failed", evidence={"traceback": ["Trace\n"]})]
    paths = write_reports(minimal_record(), findings, tmp_path)
    [suite] = ET.parse(paths["junit"]).getroot().findall("testsuite")
    assert suite.get("errors") == "1" and suite.get("failures") == "0"
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert (data["verdict"], data["exit_code"], data["counts"]["error"]) == ("error", 2, 1)
    text = paths["markdown"].read_text(encoding="utf-8")
    assert text.startswith("# ⛔ colab-ci: ERROR (1 error (could not tell)")
    assert verdict_text(minimal_record(), findings).startswith("colab-ci ERROR")


def test_junit_skips_expected_errors_and_survives_control_characters(tmp_path: Path) -> None:
    record = with_tiers(
        minimal_record(cells=[
            code_cell(2, "model", "error", CellError("ValueError", "bad \x1b[31mred\x1b[0m \x00", ["\x1b[0;31m---"]),
                      extra_tags=("raises-exception",)),
            code_cell(3, "tier1", "error", CellError("RuntimeError", "boom\x07", ["RuntimeError: boom"])),
            code_cell(4, "summary", "not-run")]),
        tier_payload("tier3", [("gpu_memory", "skip")]))
    findings = run_checks(record, None, CheckOptions())
    root = ET.parse(write_reports(record, findings, tmp_path)["junit"]).getroot()
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    assert cases[("cells", "cell 2 [model]")].find("failure") is None   # raises-exception: expected
    assert cases[("cells", "cell 3 [tier1]")].find("failure") is not None
    never_run = cases[("cells", "cell 4 [summary]")]                    # never executed: skipped, with why
    assert never_run.find("failure") is None and never_run.find("skipped").get("message").startswith("not run:")
    assert cases[("tier3", "gpu_memory")].find("skipped") is not None


def test_markdown_shows_verdict_findings_tiers_installs_and_fidelity(tmp_path: Path) -> None:
    record, findings = _checked("numpy_downgrade")
    text = write_reports(record, findings, tmp_path)["markdown"].read_text(encoding="utf-8")
    assert text.startswith("# ❌ colab-ci: FAIL (")
    for f in findings:
        if f.severity != "info":
            assert markdown.cell(f.message) in text
    assert "### cell 1 [install]:" in text and "(%pip)" in text
    assert "| numpy | 2.0.2 | 1.26.4 | yes, 2.0.2 |" in text
    assert "| scipy | (absent) | 1.11.1 | no |" in text
    assert "## Fidelity deviations" in text and "PIL is not installed" in text
    assert "<summary>Notes (" in text

    record, findings = _checked("clean_run")
    text = markdown.render(record, findings)
    assert text.startswith("# ✅ colab-ci: PASS (0 failures")
    assert "### tier3 (cell 10 [tier3]): ✅ PASS" in text and "speed_ratio=" in text
    assert "### summary" not in text   # the summary cell repeats the tiers: shown once


def test_markdown_table_cells_cannot_break_the_table() -> None:
    finding = Finding("tiers", "fail", "a | b\nc")
    text = markdown.render(minimal_record(), [finding])
    assert "a \\| b<br>c" in text


def test_annotations_only_in_github_actions_and_escaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    findings = [Finding("install-time", "fail", "took 100% of 5 s\nretry\r", 3, "install"),
                Finding("tiers", "warn", "latency up, 2x"), Finding("cells", "info", "note")]
    out = io.StringIO()
    write_reports(minimal_record(), findings, tmp_path, stream=out)
    assert out.getvalue() == ""

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    write_reports(minimal_record(), findings, tmp_path, stream=out)
    assert out.getvalue().splitlines() == [
        "::error title=colab-ci install-time (cell 3 [install])::took 100%25 of 5 s%0Aretry%0D",
        "::warning title=colab-ci tiers::latency up, 2x",
    ]


def test_escaping_rules() -> None:
    assert github.escape_data("100%\r\n") == "100%25%0D%0A"
    assert github.escape_data("%0A") == "%250A"  # % first: an escape in the text stays literal
    assert github.escape_property("a: b, c%") == "a%3A b%2C c%25"


def test_step_summary_is_appended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("## earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    record, findings = _checked("numpy_downgrade")
    paths = write_reports(record, findings, tmp_path / "out", stream=io.StringIO())
    assert paths["github_summary"] == summary
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("## earlier step\n# ❌ colab-ci: FAIL")
    assert text.endswith(paths["markdown"].read_text(encoding="utf-8"))


SECRET = 'ghp_"s3cr&t<tok>'


def test_secrets_never_reach_any_written_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("DB_PASSWORD", "hunter22")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    record = load_record("numpy_downgrade")
    record.parameters["hf_token"] = SECRET
    record.installs[0].pip_lines.append(f"Looking in indexes: https://user:{SECRET}@pypi.example/simple")
    assert record.cells[2].error is not None
    record.cells[2].error.evalue += f" (token {SECRET}, password hunter22)"
    findings = run_checks(record, None, CheckOptions())
    findings.append(Finding("cells", "fail", f"leaked {SECRET}", evidence={SECRET: [SECRET]}))
    out = io.StringIO()
    paths = write_reports(record, findings, tmp_path / "out", stream=out)
    printed = out.getvalue() + verdict_text(record, findings, paths)
    forms = [SECRET, json.dumps(SECRET)[1:-1], xml_escape(SECRET), xml_escape(SECRET, quote=False),
             github.escape_data(SECRET), "hunter22"]
    for path in paths.values():
        text = path.read_text(encoding="utf-8")
        assert "***" in text
        assert not [f for f in forms if f in text], path.name
    assert not [f for f in forms if f in printed]


def test_redact_ignores_short_and_non_secret_values() -> None:
    env = {"MY_TOKEN": "abc", "API_SECRET": "longsecret", "HOME": "/root"}
    assert redact("abc longsecret /root", env) == "abc *** /root"


def test_write_reports_does_not_change_the_callers_objects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_TOKEN", "value-to-hide")
    record = minimal_record(parameters={"t": "value-to-hide"})
    findings = [Finding("cells", "fail", "value-to-hide")]
    write_reports(record, findings, tmp_path)
    assert record.parameters["t"] == "value-to-hide" and findings[0].message == "value-to-hide"


def test_verdict_text() -> None:
    record = load_record("clean_run")
    findings = run_checks(record, Baseline.from_record(record), CheckOptions())
    text = verdict_text(record, findings, {"markdown": Path("out/report.md")})
    assert text.splitlines()[0].startswith("colab-ci PASS: <repo>/notebook/template.ipynb (outcome completed")
    assert "0 warnings" in text and "reports: out/report.md" in text

    record, findings = _checked("numpy_downgrade")
    lines = verdict_text(record, findings).splitlines()
    assert lines[0].startswith("colab-ci FAIL")
    failed = [f for f in findings if f.severity == "fail"]
    assert len([line for line in lines if line.startswith("  FAIL ")]) == len(failed)
    assert "  FAIL corruption: cell 1 [install] downgraded numpy 2.0.2 -> 1.26.4" in lines[1]
    warned = sum(1 for f in findings if f.severity == "warn")
    assert f"  {warned} warning" in "\n".join(lines)


def test_verdict_text_stays_on_one_screen() -> None:
    findings = [Finding("cells", "fail", f"failure {i}\nsecond line") for i in range(40)]
    lines = verdict_text(minimal_record(), findings).splitlines()
    assert len(lines) <= 20 and "  ... and 25 more failures" in lines
    assert "failure 0 second line" in lines[1]
