"""Execution end to end: real kernels, real pip installs, the real corruption error.

The target venv (conftest.py) has numpy 2.0.2. Its kernel imports numpy at start-up (as Colab's
does), then an install cell swaps numpy on disk:

* upgrade 2.0.2 -> 2.1.3, then ``np.char``:
  ``ImportError: cannot import name '_center' from 'numpy._core.umath'`` (the error users got);
* downgrade 2.0.2 -> 1.26.4, then ``import numpy.random``:
  ``ValueError: numpy.dtype size changed, may indicate binary incompatibility``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.execution.execute import execute
from tests.harness.conftest import (
    DOWNGRADE_NUMPY,
    NOTEBOOKS,
    OTHER_TABULATE,
    REPO_ROOT,
    TARGET_NUMPY,
    TARGET_TABULATE,
    UPGRADE_NUMPY,
    make_notebook,
    run_cli,
    stream_text,
    version_in,
)

pytestmark = pytest.mark.slow

UPGRADE = [
    ("import numpy as np\nprint(np.__version__)", []),
    (f"%pip install numpy=={UPGRADE_NUMPY}", ["install"]),
    ("np.char.center(np.array(['a']), 5)", []),
    ("print('not reached')", []),
]
DOWNGRADE = [
    ("import numpy as np\nprint(np.__version__)", []),
    (f"%pip install numpy=={DOWNGRADE_NUMPY}", ["install"]),
    ("import numpy.random", []),
]


def _checks(record):  # the checks are another module's; used here only to see the verdict
    from harness.checks import CheckOptions, run_checks

    return run_checks(record, None, CheckOptions())


def _cell(nb_path: Path, source_index: int) -> dict:
    nb = json.loads(nb_path.read_text())
    return next(c for c in nb["cells"] if c["metadata"].get("colab_ci", {}).get("source_index") == source_index
                and "probe" not in c["metadata"]["colab_ci"])


@pytest.mark.parametrize("cells, new, ename, evalue", [
    (UPGRADE, UPGRADE_NUMPY, "ImportError", "cannot import name '_center' from 'numpy._core.umath'"),
    (DOWNGRADE, DOWNGRADE_NUMPY, "ValueError", "numpy.dtype size changed, may indicate binary incompatibility"),
], ids=["upgrade", "downgrade"])
def test_numpy_swapped_under_the_kernel_is_observed_and_reproduces_the_real_error(
        target_venv: Path, tmp_path: Path, cells, new, ename, evalue) -> None:
    nb = make_notebook(tmp_path / "corrupt.ipynb", cells)
    record = execute(nb, tmp_path / "out", python=target_venv)

    assert record.outcome == "cell-error"
    assert record.environment["numpy"] == TARGET_NUMPY
    (obs,) = record.installs
    assert obs.cell_index == 1 and obs.cell_tag == "install" and obs.duration_s > 0
    assert obs.before["numpy"] == TARGET_NUMPY and obs.after["numpy"] == new
    assert obs.imported["numpy"].version_in_memory == TARGET_NUMPY
    assert "numpy" in obs.imported["numpy"].modules
    assert f"Successfully installed numpy-{new}" in obs.pip_lines
    broken = record.cells[2]
    assert broken.status == "error" and broken.error.ename == ename and evalue in broken.error.evalue
    assert [c.status for c in record.cells] == ["ok", "ok", "error"] + ["not-run"] * (len(cells) - 3)
    # the source notebook was not modified; the executed copy was written
    assert "colab_ci" not in nb.read_text()
    assert Path(record.output_notebook).is_file()

    findings = _checks(record)
    corrupt = [f for f in findings if f.check == "corruption" and f.severity == "fail"]
    assert any(f.evidence.get("package") == "numpy" for f in corrupt), findings


def test_changed_but_never_imported_package_is_a_warning_not_a_failure(target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "tabulate.ipynb", [
        ("import numpy as np", []),
        (f"%pip install tabulate=={OTHER_TABULATE}", ["install"]),
        ("print(np.arange(3).sum())", []),
    ])
    record = execute(nb, tmp_path / "out", python=target_venv)
    assert record.outcome == "completed"
    (obs,) = record.installs
    assert obs.changed() == {"tabulate": (TARGET_TABULATE, OTHER_TABULATE)}
    assert "tabulate" not in obs.imported
    findings = [f for f in _checks(record) if f.check == "corruption"]
    assert not [f for f in findings if f.severity == "fail"], findings
    assert any(f.severity == "warn" and "tabulate" in f.message for f in findings), findings


def test_runs_never_modify_the_target_venv(target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "corrupt.ipynb", UPGRADE)
    verdicts = []
    for run in range(2):
        proc = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / f"out{run}"))
        assert proc.returncode == 1, proc.stderr
        report = json.loads((tmp_path / f"out{run}" / "report.json").read_text())
        verdicts.append((report["verdict"], report["record"]["outcome"],
                         sorted((f["check"], f["severity"]) for f in report["findings"])))
    assert verdicts[0] == verdicts[1]
    assert version_in(target_venv, "numpy") == TARGET_NUMPY
    assert version_in(target_venv, "tabulate") == TARGET_TABULATE


@pytest.mark.parametrize("source, signame", [
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "SIGKILL"),
    ("import ctypes\nctypes.string_at(0)", "SIGSEGV"),
], ids=["sigkill", "sigsegv"])
def test_kernel_death_is_an_outcome_with_notebook_and_reports(target_venv: Path, tmp_path: Path,
                                                               source: str, signame: str) -> None:
    nb = make_notebook(tmp_path / "die.ipynb", [("print('before')", []), (source, []), ("print('after')", [])])
    out = tmp_path / "out"
    proc = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(out))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert {"executed.ipynb", "report.json", "report.md", "junit.xml"} <= {p.name for p in out.iterdir()}
    record = json.loads((out / "report.json").read_text())["record"]
    assert record["outcome"] == "kernel-died"
    assert record["outcome_detail"] == f"kernel died ({signame}) in cell 1"
    assert [c["status"] for c in record["cells"]] == ["ok", "error", "not-run"]
    assert record["cells"][1]["error"]["ename"] == "DeadKernelError"
    assert stream_text(_cell(out / "executed.ipynb", 0)) == "before\n"


def test_hanging_cell_times_out_and_shows_where_it_hung(target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "hang.ipynb", [
        ("print('before')", []), ("import time\nwhile True:\n    time.sleep(0.05)", []), ("print('after')", []),
    ])
    out = tmp_path / "out"
    start = time.monotonic()
    proc = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(out), "--cell-timeout", "3")
    assert time.monotonic() - start < 120
    assert proc.returncode == 1, proc.stderr
    assert {"executed.ipynb", "report.json", "report.md", "junit.xml"} <= {p.name for p in out.iterdir()}
    record = json.loads((out / "report.json").read_text())["record"]
    assert record["outcome"] == "timeout"
    assert record["outcome_detail"] == "cell 1 exceeded --cell-timeout 3 s"
    assert [c["status"] for c in record["cells"]] == ["ok", "error", "not-run"]
    error = record["cells"][1]["error"]
    assert error["ename"] == "CellTimeoutError"
    assert any("time.sleep(0.05)" in line for line in error["traceback_head"])  # where it hung


def test_whole_run_timeout_stops_a_kernel_that_ignores_interrupts(target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "stubborn.ipynb", [
        ("print('before')", []),
        ("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(600)", []),
    ])
    start = time.monotonic()
    record = execute(nb, tmp_path / "out", python=target_venv, run_timeout=5)
    assert time.monotonic() - start < 90
    assert record.outcome == "timeout"
    assert record.outcome_detail == "the run exceeded --timeout 5 s in cell 1"
    assert (tmp_path / "out" / "executed.ipynb").is_file()
    assert record.cells[1].status == "error" and record.cells[1].error.ename == "RunTimeoutError"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_saves_the_notebook_and_reports_then_exits_130(target_venv: Path, tmp_path: Path,
                                                                 signum: int) -> None:
    nb = make_notebook(tmp_path / "slow.ipynb", [
        ("print('before', flush=True)", []), ("import time\ntime.sleep(600)", []),
    ])
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(nb), "--python", str(target_venv),
                             "--out", str(out)], stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until the sleeping cell runs
        if "cell 1/1 running" in line:
            break
    time.sleep(1)
    proc.send_signal(signum)
    proc.stderr.read()
    assert proc.wait(timeout=120) == 130
    record = json.loads((out / "report.json").read_text())["record"]
    assert record["outcome"] == "interrupted"
    assert record["outcome_detail"] == "interrupted in cell 1"
    assert [c["status"] for c in record["cells"]] == ["ok", "error"]
    assert stream_text(_cell(out / "executed.ipynb", 0)) == "before\n"


def test_parameters_win_over_the_form_and_the_checkout_is_passed_to_the_kernel(target_venv: Path,
                                                                               tmp_path: Path) -> None:
    nb = NOTEBOOKS / "parameters.ipynb"
    before = nb.read_text()
    record = execute(nb, tmp_path / "out", python=target_venv, parameters={"X": 2, "NAME": "ci"})
    assert record.outcome == "completed", record.outcome_detail
    assert nb.read_text() == before
    executed = tmp_path / "out" / "executed.ipynb"
    assert stream_text(_cell(executed, 2)) == "X=2 NAME='ci' RATE=0.5\n"
    lines = stream_text(_cell(executed, 3)).splitlines()
    assert lines[0] == f"CHECKOUT={REPO_ROOT}"  # the notebook lies in this checkout (has notebook/tiers)
    assert not lines[1].startswith(f"CWD={REPO_ROOT}")  # a scratch folder, like Colab's /content
    # outside a checkout the variable is not invented
    elsewhere = make_notebook(tmp_path / "nb" / "p.ipynb", [
        ("import os\nprint(os.environ.get('COLAB_CI_CHECKOUT', 'unset'))", [])])
    execute(elsewhere, tmp_path / "out2", python=target_venv)
    assert stream_text(_cell(tmp_path / "out2" / "executed.ipynb", 0)) == "unset\n"


def test_bang_pip_and_percent_pip_install_into_the_kernels_copy(target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "pips.ipynb", [
        ("import sys, shutil\nprint(sys.prefix)\nprint(shutil.which('pip'))\n"
         "assert not [f for f in sys.meta_path if 'colab' in repr(type(f)).lower()]", []),
        (f"!pip install -q tabulate=={OTHER_TABULATE}", []),               # untagged: still observed
        (f"%pip install -q tabulate=={TARGET_TABULATE}", ["install"]),
    ])
    harness_tabulate = version_in(Path(sys.executable), "tabulate")
    record = execute(nb, tmp_path / "out", python=target_venv)
    assert record.outcome == "completed", record.outcome_detail
    prefix, pip = stream_text(_cell(tmp_path / "out" / "executed.ipynb", 0)).splitlines()
    assert prefix != str(target_venv.parent.parent) and pip == f"{prefix}/bin/pip"
    bang, percent = record.installs
    assert bang.changed() == {"tabulate": (TARGET_TABULATE, OTHER_TABULATE)}
    assert percent.changed() == {"tabulate": (OTHER_TABULATE, TARGET_TABULATE)}
    assert version_in(target_venv, "tabulate") == TARGET_TABULATE
    assert version_in(Path(sys.executable), "tabulate") == harness_tabulate


def test_bad_inputs_exit_2_with_one_sentence(target_venv: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    not_nb = tmp_path / "data.ipynb"
    not_nb.write_text('{"hello": "world"}')
    good = make_notebook(tmp_path / "good.ipynb", [("X = 1", ["parameters"]), ("print(X)", [])])
    cases = [
        (["run", str(tmp_path / "missing.ipynb")], f"notebook {tmp_path / 'missing.ipynb'} does not exist."),
        (["run", str(broken)], f"notebook {broken} is not valid JSON"),
        (["run", str(not_nb)], f"notebook {not_nb} is JSON but not a Jupyter notebook"),
        (["run", str(good), "--python", str(tmp_path / "no" / "python")],
         f"--python {tmp_path / 'no' / 'python'} does not exist."),
        (["run", str(good), "-p", "Y=2", "--python", str(target_venv)],
         f"unknown parameter Y: the parameters cell of {good} assigns X."),
    ]
    for args, expected in cases:
        proc = run_cli(*args, "--out", str(tmp_path / "out"))
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[0].startswith("colab-ci: error: " + expected), (lines[0], expected)
    assert not (tmp_path / "out" / "executed.ipynb").exists()


def test_install_cell_that_fails_or_dies_is_still_observed(target_venv: Path, tmp_path: Path) -> None:
    raises = make_notebook(tmp_path / "raises.ipynb", [
        ("import numpy", []),
        (f"%pip install -q tabulate=={OTHER_TABULATE}\nraise RuntimeError('after pip')", ["install"]),
    ])
    record = execute(raises, tmp_path / "out1", python=target_venv)
    assert record.outcome == "cell-error" and record.cells[1].error.ename == "RuntimeError"
    (obs,) = record.installs  # the after-probe ran although the cell raised
    assert obs.changed() == {"tabulate": (TARGET_TABULATE, OTHER_TABULATE)}

    dies = make_notebook(tmp_path / "dies.ipynb", [
        ("import numpy", []),
        (f"%pip install -q tabulate=={OTHER_TABULATE}\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
         ["install"]),
    ])
    record = execute(dies, tmp_path / "out2", python=target_venv)
    assert record.outcome == "kernel-died"
    (obs,) = record.installs  # no after-probe: the environment was read from disk after the run
    assert obs.changed() == {"tabulate": (TARGET_TABULATE, OTHER_TABULATE)}


def test_update_baseline_then_compare(target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "ok.ipynb", [("print(1 + 1)", [])])
    baseline = tmp_path / "baseline.json"
    first = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / "o1"),
                    "--baseline", str(baseline), "--update-baseline")
    assert first.returncode == 0, first.stderr
    assert baseline.is_file() and f"baseline written to {baseline}" in first.stderr
    second = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / "o2"),
                     "--baseline", str(baseline))
    assert second.returncode == 0, second.stderr
    assert "colab-ci" in second.stdout  # the verdict


# A tier cell as the notebook's contract has it (docs/result-contract.md), with its status a parameter.
TIER_CELL = """
from IPython.display import display
payload = {"schema_version": 1, "tier": "tier1", "status": STATUS, "environment": {
               "python": "3", "torch": "absent", "numpy": "absent", "device": "cpu"},
           "tests": [{"name": "gradient_flow", "status": STATUS, "metrics": {}, "message": "", "duration_s": 0.1},
                     {"name": "shape_robustness", "status": "pass", "metrics": {}, "message": "", "duration_s": 0.1}]}
display({"application/vnd.colab-ci.tier+json": payload, "text/plain": STATUS}, raw=True)
"""


@pytest.mark.slow
def test_tier_regression_against_the_baseline_exits_1_naming_the_test(target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "tiers.ipynb", [('STATUS = "pass"', ["parameters"]), (TIER_CELL, ["tier1"])])
    baseline = tmp_path / "baselines" / "local.json"
    good = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / "good"),
                   "--baseline", str(baseline), "--update-baseline")
    assert good.returncode == 0, good.stdout + good.stderr
    written = json.loads(baseline.read_text())
    assert written["tests"]["tier1/gradient_flow"]["status"] == "pass"

    bad = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / "bad"),
                  "--baseline", str(baseline), "-p", "STATUS=fail")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "gradient_flow" in bad.stdout and "shape_robustness" not in bad.stdout.split("FAIL", 1)[1]
    report = json.loads((tmp_path / "bad" / "report.json").read_text())
    failing = [f for f in report["findings"] if f["severity"] == "fail"]
    assert [f["check"] for f in failing] == ["tiers"]
    assert "gradient_flow" in failing[0]["message"]


def test_run_timeout_before_any_cell_leaves_every_cell_not_run(target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "quick.ipynb", [("print('a')", []), ("print('b')", [])])
    record = execute(nb, tmp_path / "out", python=target_venv, run_timeout=0.2)
    assert record.outcome == "timeout"
    assert record.outcome_detail == "the run exceeded --timeout 0.2 s before cell 0"
    assert [c.status for c in record.cells] == ["not-run", "not-run"]
    assert (tmp_path / "out" / "executed.ipynb").is_file()
