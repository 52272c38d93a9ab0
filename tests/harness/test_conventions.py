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
