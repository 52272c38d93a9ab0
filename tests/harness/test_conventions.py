"""The notebook-testing conventions people bring from nbmake, nbval and pytest, with real kernels:

* ``sys.exit(0)`` / ``raise SystemExit(0)`` / ``exit()`` ends the notebook early as ``stopped`` (not an
  error, nbmake #134); a failing exit (``sys.exit(1)``) stays a failure;
* ``--retries N`` re-runs a notebook whose only failure is a cell that needed the network
  (pytest-rerunfailures' habit), keeping every attempt in the report.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.execution.early_stop import early_exit
from tests.harness.conftest import make_notebook, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _three_cells(tmp_path: Path, middle: str) -> Path:
    return make_notebook(tmp_path / "nb.ipynb", [("print('one')", []), (middle, []), ("print('three')", [])])


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.mark.parametrize("middle", ["raise SystemExit(0)", "import sys\nsys.exit()", "exit()"])
def test_a_successful_exit_in_the_second_of_three_cells_stops_the_run_and_passes(tmp_path: Path, middle: str) -> None:
    out = tmp_path / "out"
    proc = run_cli("run", str(_three_cells(tmp_path, middle)), "--out", str(out), timeout=200)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = _report(out)["record"]
    assert record["outcome"] == "stopped" and record["outcome_detail"].startswith("cell 1 ended the notebook")
    assert [(c["index"], c["status"]) for c in record["cells"]] == [(0, "ok"), (1, "ok"), (2, "not-run")]
    assert "Not run (1 code cell): cell 2." in (out / "report.md").read_text()
    cases = {c.get("name"): c for c in ET.parse(out / "junit.xml").getroot().iter("testcase")
             if c.get("classname") == "cells"}
    assert cases["cell 1"].find("failure") is None
    assert "cell 1 ended the notebook" in cases["cell 2"].find("skipped").get("message")
    assert 'class="badge not-run"' in (out / "report.html").read_text()


@pytest.mark.parametrize("middle, evalue", [("import sys\nsys.exit(1)", "1"), ("import sys\nsys.exit('bye')", "bye")])
def test_a_failing_exit_stays_a_failure(tmp_path: Path, middle: str, evalue: str) -> None:
    out = tmp_path / "out"
    proc = run_cli("run", str(_three_cells(tmp_path, middle)), "--out", str(out), timeout=200)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"cell 1 raised SystemExit: {evalue}" in proc.stdout
    record = _report(out)["record"]
    assert record["outcome"] == "cell-error"
    assert [c["status"] for c in record["cells"]] == ["ok", "error", "not-run"]


def test_a_tolerated_systemexit_goes_on_as_nbclient_does(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "nb.ipynb", [("raise SystemExit(0)", ["raises-exception"]), ("print('two')", [])])
    out = tmp_path / "out"
    proc = run_cli("run", str(nb), "--out", str(out), timeout=200)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = _report(out)["record"]
    assert record["outcome"] == "completed" and [c["status"] for c in record["cells"]] == ["error", "ok"]


@pytest.mark.parametrize("content, success, code", [
    ({"status": "error", "ename": "SystemExit", "evalue": "0"}, True, "0"),
    ({"status": "error", "ename": "SystemExit", "evalue": ""}, True, ""),
    ({"status": "error", "ename": "SystemExit", "evalue": "None"}, True, "None"),
    ({"status": "error", "ename": "SystemExit", "evalue": "2"}, False, "2"),
    ({"status": "ok", "payload": [{"source": "ask_exit", "keepkernel": False}]}, True, ""),
    ({"status": "ok", "payload": [{"source": "ask_exit", "keepkernel": 1}]}, False, "1"),
])
def test_the_reply_says_which_exit_was_asked_for(content: dict, success: bool, code: str) -> None:
    asked = early_exit(content)
    assert asked is not None and (asked.success, asked.code) == (success, code)


@pytest.mark.parametrize("content", [None, {"status": "ok"}, {"status": "error", "ename": "ValueError", "evalue": "0"}])
def test_no_exit_in_an_ordinary_reply(content) -> None:
    assert early_exit(content) is None


# --- --retries: only for the network ----------------------------------------------------------------

FLAKY = '''import pathlib, urllib.request
counter = pathlib.Path({counter!r})
n = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(n + 1))
if n == 0:   # the first attempt: a real refused connection
    urllib.request.urlopen("http://127.0.0.1:9/", timeout=5)
print("fetched")'''


def _flaky(tmp_path: Path) -> tuple[Path, Path]:
    counter = tmp_path / "counter"
    nb = make_notebook(tmp_path / "flaky.ipynb", [("print('one')", []), (FLAKY.format(counter=str(counter)), []),
                                                  ("print('three')", [])])
    return nb, counter


def test_a_network_flake_passes_on_the_second_attempt_and_both_are_reported(tmp_path: Path) -> None:
    nb, counter = _flaky(tmp_path)
    out = tmp_path / "out"
    proc = run_cli("run", str(nb), "--out", str(out), "--retries", "1", timeout=200)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert counter.read_text() == "2" and "attempts: 2" in proc.stdout
    report = _report(out)
    assert report["verdict"] == "pass"
    first, second = report["attempts"]
    assert (first["number"], first["verdict"], first["outcome"], first["failing_cell"], first["retried"]) == \
        (1, "fail", "cell-error", 1, True)
    assert "Connection refused" in first["network"]["evidence"] and first["folder"] == "attempt-1"
    assert (second["number"], second["verdict"], second["retried"], second["folder"]) == (2, "pass", False, "")
    kept = _report(out / "attempt-1")
    assert kept["verdict"] == "fail" and kept["record"]["output_notebook"] == str(out / "attempt-1" / "executed.ipynb")
    assert (out / "attempt-1" / "executed.ipynb").is_file() and (out / "executed.ipynb").is_file()
    assert "## Attempts (2, `--retries`)" in (out / "report.md").read_text()
    assert 'href="attempt-1/report.html"' in (out / "report.html").read_text()


def test_without_retries_the_network_flake_fails(tmp_path: Path) -> None:
    nb, counter = _flaky(tmp_path)
    out = tmp_path / "out"
    proc = run_cli("run", str(nb), "--out", str(out), timeout=200)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert counter.read_text() == "1" and "attempts" not in _report(out) and not (out / "attempt-1").exists()


def test_a_failure_that_is_not_the_network_is_never_retried(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    nb = make_notebook(tmp_path / "nb.ipynb", [(f"import pathlib\np = pathlib.Path({str(counter)!r})\n"
                                                "p.write_text(p.read_text() + 'x' if p.exists() else 'x')\n"
                                                "raise ValueError('not the network')", [])])
    out = tmp_path / "out"
    proc = run_cli("run", str(nb), "--out", str(out), "--retries", "2", timeout=200)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert counter.read_text() == "x"
    [only] = _report(out)["attempts"]
    assert (only["number"], only["verdict"], only["retried"], only["failing_cell"]) == (1, "fail", False, 0)
    assert not (out / "attempt-1").exists()


def _record(outcome: str = "cell-error", network_cells: tuple[int, ...] = (1,)):
    from harness.core.records import NetworkFailure, RunRecord

    return RunRecord(notebook="nb.ipynb", output_notebook="out/executed.ipynb", python="python", parameters={},
                     started_at="2026-12-07T00:00:00+00:00", duration_s=1.0, outcome=outcome,  # type: ignore[arg-type]
                     network_failures=[NetworkFailure(i, "", "git clone https://x.org/y", "Could not resolve host")
                                       for i in network_cells])


def _fail(cell: int | None, severity: str = "fail"):
    from harness.core.records import Finding

    return Finding("cells", severity, "failed", cell_index=cell)  # type: ignore[arg-type]


@pytest.mark.parametrize("record, findings, retried", [
    (_record(), [_fail(1)], True),
    (_record(), [_fail(1), _fail(2)], False),             # another cell failed for another reason
    (_record(), [_fail(1), _fail(None)], False),          # a failure that names no cell
    (_record(), [_fail(1, "error")], False),              # the harness could not tell
    (_record("timeout"), [_fail(1)], False),              # a hang is not a network failure it recognised
    (_record(network_cells=()), [_fail(1)], False),
    (_record(), [], False),                               # nothing failed
])
def test_only_a_failure_the_network_explains_is_retried(record, findings, retried: bool) -> None:
    from harness.checks.network_retry import retry_cause

    assert (retry_cause(record, findings) is not None) is retried


def test_matrix_passes_retries_to_each_run_and_a_negative_count_is_a_usage_error() -> None:
    from harness.cli.main import build_parser
    from harness.matrix.run import _run_args

    args = build_parser().parse_args(["matrix", "nb.ipynb", "--retries", "2"])
    assert _run_args(args)[:2] == ["--retries", "2"]
    assert "--retries" not in _run_args(build_parser().parse_args(["matrix", "nb.ipynb"]))
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["run", "nb.ipynb", "--retries", "-1"])
    assert exit_info.value.code == 2
