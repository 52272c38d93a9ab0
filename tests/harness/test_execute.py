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
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.execution.execute import execute
from harness.execution.supervisor import INTERRUPT_GRACE_S, KILL_GRACE_S
from tests.harness.conftest import (
    DOWNGRADE_NUMPY,
    NOTEBOOKS,
    OTHER_TABULATE,
    REPO_ROOT,
    ctrl_c_as_from_a_terminal,
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
    assert obs.changed_pairs() == {"numpy": (TARGET_NUMPY, new)} and obs.loaded == {"numpy": TARGET_NUMPY}
    assert f"Successfully installed numpy-{new}" in obs.pip_lines
    (replaced,) = record.replaced
    assert (replaced.cell_index, replaced.distribution, replaced.version_loaded, replaced.version_on_disk) == \
        (1, "numpy", TARGET_NUMPY, new)
    assert replaced.module.startswith("numpy.") and replaced.identity_now != replaced.identity_loaded
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
    assert obs.changed_pairs() == {"tabulate": (TARGET_TABULATE, OTHER_TABULATE)}
    assert obs.loaded == {} and record.replaced == []
    findings = [f for f in _checks(record) if f.check == "corruption"]
    assert not [f for f in findings if f.severity == "fail"], findings
    assert any(f.severity == "warn" and "tabulate" in f.message for f in findings), findings


def test_an_untagged_subprocess_swap_with_no_later_error_exits_1_naming_numpy_and_the_cell(
        target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "untagged.ipynb", [
        ("import numpy as np", []),
        (f"import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'pip', 'install', '-q', "
         f"'numpy=={UPGRADE_NUMPY}'], check=True)", []),
        ("print(np.arange(3).sum())", []),                    # still works: nothing visible fails
    ])
    proc = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["record"]["outcome"] == "completed"
    [failure] = [f for f in report["findings"] if f["severity"] == "fail"]
    assert (failure["check"], failure["cell_index"], failure["evidence"]["package"]) == ("corruption", 1, "numpy")
    assert f"cell 1 upgraded numpy {TARGET_NUMPY} -> {UPGRADE_NUMPY}" in proc.stdout


def test_a_module_imported_and_replaced_in_one_install_cell_exits_1(target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "same-cell.ipynb", [
        (f"import tabulate\n%pip install -q tabulate=={OTHER_TABULATE}", ["install"]),
        ("print('fine')", []),
    ])
    proc = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [failure] = [f for f in json.loads((tmp_path / "out" / "report.json").read_text())["findings"]
                 if f["severity"] == "fail"]
    assert failure["cell_index"] == 0 and failure["evidence"]["package"] == "tabulate"
    assert failure["evidence"]["version_in_memory"] == TARGET_TABULATE
    assert failure["evidence"]["loaded_in_cell"] == 0
    assert f"cell 0 [install] upgraded tabulate {TARGET_TABULATE} -> {OTHER_TABULATE}" in failure["message"]


def test_a_same_version_reinstall_over_loaded_files_is_a_warning(target_venv: Path, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "reinstall.ipynb", [
        ("import tabulate", []),
        (f"%pip install -q --force-reinstall --no-deps tabulate=={TARGET_TABULATE}", ["install"]),
    ])
    proc = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    findings = json.loads((tmp_path / "out" / "report.json").read_text())["findings"]
    [warning] = [f for f in findings if f["severity"] == "warn"]
    assert f"reinstalled tabulate {TARGET_TABULATE}" in warning["message"] and warning["cell_index"] == 1


def test_a_check_that_raises_gives_exit_2_and_verdict_error_with_the_traceback(
        target_venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.cli import main as cli
    from harness.checks import CHECKS

    def broken(*_args: object) -> list:
        raise ZeroDivisionError("a bug in a check")

    monkeypatch.setitem(CHECKS, "tiers", broken)
    nb = make_notebook(tmp_path / "ok.ipynb", [("print(1)", [])])
    assert cli.main(["run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / "out")]) == 2
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (report["verdict"], report["exit_code"]) == ("error", 2)
    [error] = [f for f in report["findings"] if f["severity"] == "error"]
    assert error["check"] == "tiers" and "ZeroDivisionError: a bug in a check" in "".join(error["evidence"]["traceback"])
    assert "ZeroDivisionError: a bug in a check" in (tmp_path / "out" / "report.md").read_text()


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
    report = json.loads((out / "report.json").read_text())
    record = report["record"]
    assert record["outcome"] == "kernel-died"
    assert record["outcome_detail"] == f"kernel died ({signame}) in cell 1"
    corruption = [f["message"] for f in report["findings"] if f["check"] == "corruption"]
    assert any(m.startswith("Could not check after cell 1: the run stopped in it (kernel-died)") for m in corruption)
    assert not any(m.startswith("No cell replaced") for m in corruption), corruption
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


STUBBORN = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(600)"
FORKING = ("import subprocess\nsubprocess.Popen(['sleep', '{marker}'])\n" + STUBBORN)


def _start(nb: Path, out: Path, python: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "harness", "run", str(nb), "--python", str(python),
                             "--out", str(out), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO_ROOT, preexec_fn=ctrl_c_as_from_a_terminal)


def test_three_run_timeouts_at_once_end_in_time_whatever_the_kernel_does(target_venv: Path, tmp_path: Path) -> None:
    """The kernels ignore SIGINT and sleep in C; one also leaves a child process behind."""
    marker = f"{600 + time.time() % 1:.6f}"   # `sleep 600.xxxxxx`: findable among this machine's processes
    notebooks = [make_notebook(tmp_path / f"stubborn{i}.ipynb", [("print('before', flush=True)", []),
                                                                  (FORKING.format(marker=marker) if i == 0 else STUBBORN,
                                                                   [])])
                 for i in range(3)]
    start = time.monotonic()
    procs = [_start(nb, tmp_path / f"out{i}", target_venv, "--timeout", "5") for i, nb in enumerate(notebooks)]
    results = [proc.communicate(timeout=90) for proc in procs]
    elapsed = time.monotonic() - start
    assert elapsed < 60, f"three --timeout 5 runs took {elapsed:.0f} s"
    for i, (proc, (stdout, stderr)) in enumerate(zip(procs, results)):
        assert proc.returncode == 1, stderr
        assert "Traceback" not in stderr and "zmq" not in stderr.lower(), stderr
        record = json.loads((tmp_path / f"out{i}" / "report.json").read_text())["record"]
        assert record["outcome"] == "timeout"
        assert record["outcome_detail"] == "the run exceeded --timeout 5 s in cell 1"
        assert record["cells"][1]["error"]["ename"] == "RunTimeoutError"
        assert (tmp_path / f"out{i}" / "executed.ipynb").is_file()
    left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "the kernel's child outlived the run"


@pytest.mark.serial
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_three_interrupted_runs_at_once_save_notebook_and_reports_then_exit_130(target_venv: Path, tmp_path: Path,
                                                                                signum: int) -> None:
    nb = make_notebook(tmp_path / "slow.ipynb", [("print('before', flush=True)", []), (STUBBORN, [])])
    procs = [_start(nb, tmp_path / f"out{i}", target_venv) for i in range(3)]
    for proc in procs:  # wait until each one's sleeping cell runs
        assert proc.stderr is not None
        for line in proc.stderr:
            if "cell 1/1 running" in line:
                break
    time.sleep(1)
    signalled = datetime.now(timezone.utc).replace(microsecond=0)
    for proc in procs:
        proc.send_signal(signum)
    for i, proc in enumerate(procs):
        # The limit is for the reports, not the run: after the run ends, the executed notebook is
        # rendered to HTML by nbconvert, which took 20 s for three runs at load 18 on 2 cores.
        _stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 130, stderr
        # The run itself ends within the supervisor's bound (SIGINT, INTERRUPT_GRACE_S, SIGKILL,
        # KILL_GRACE_S: 13 s) whatever the load: the progress line that says so is stamped when it ended.
        ended = re.search(r"^(\S+) \[run\] interrupted in \d+ s$", stderr, re.M)
        assert ended, stderr
        took = (datetime.strptime(ended.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) - signalled)
        assert took.total_seconds() <= INTERRUPT_GRACE_S + KILL_GRACE_S + 5, stderr
        assert "Traceback" not in stderr, stderr
        report = json.loads((tmp_path / f"out{i}" / "report.json").read_text())
        assert report["exit_code"] == 130
        record = report["record"]
        assert record["outcome"] == "interrupted"
        assert record["outcome_detail"] == ("interrupted in cell 1" if signum == signal.SIGINT
                                            else "interrupted by SIGTERM in cell 1")
        assert [c["status"] for c in record["cells"]] == ["ok", "error"]
        assert stream_text(_cell(tmp_path / f"out{i}" / "executed.ipynb", 0)) == "before\n"


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
         "assert not [f for f in sys.meta_path if 'Deferred' in type(f).__name__]", []),
        (f"!pip install -q tabulate=={OTHER_TABULATE}", []),               # untagged: still observed
        (f"%pip install -q tabulate=={TARGET_TABULATE}", ["install"]),
    ])
    harness_tabulate = version_in(Path(sys.executable), "tabulate")
    record = execute(nb, tmp_path / "out", python=target_venv)
    assert record.outcome == "completed", record.outcome_detail
    prefix, pip = stream_text(_cell(tmp_path / "out" / "executed.ipynb", 0)).splitlines()
    assert prefix != str(target_venv.parent.parent) and pip == f"{prefix}/bin/pip"
    bang, percent = record.installs
    assert bang.changed_pairs() == {"tabulate": (TARGET_TABULATE, OTHER_TABULATE)} and bang.recognised == ["!pip"]
    assert percent.changed_pairs() == {"tabulate": (OTHER_TABULATE, TARGET_TABULATE)}
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
    (obs,) = record.installs  # the probe ran after the cell although it raised
    assert obs.changed_pairs() == {"tabulate": (TARGET_TABULATE, OTHER_TABULATE)}

    dies = make_notebook(tmp_path / "dies.ipynb", [
        ("import numpy", []),
        (f"%pip install -q tabulate=={OTHER_TABULATE}\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
         ["install"]),
    ])
    record = execute(dies, tmp_path / "out2", python=target_venv)
    assert record.outcome == "kernel-died"
    (obs,) = record.installs  # no probe after it: the environment was read from disk after the run
    assert obs.changed_pairs() == {"tabulate": (TARGET_TABULATE, OTHER_TABULATE)}
    assert record.probes.missing == [1]


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
    machine = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / "o3"), "--json")
    assert machine.returncode == 0 and json.loads(machine.stdout)["verdict"] == "pass"   # stdout is the report


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


def test_in_place_really_installs_into_the_interpreter_and_reproduces_the_swap(tmp_path: Path) -> None:
    """--in-place is for Colab's own runtime container: no copy, no overlay; here, a throwaway venv."""
    from tests.harness.conftest import base_python

    venv = tmp_path / "throwaway"
    subprocess.run([str(base_python()), "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    f"numpy=={TARGET_NUMPY}", "ipykernel"], check=True, timeout=600,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nb = make_notebook(tmp_path / "swap.ipynb", UPGRADE)
    proc = run_cli("run", str(nb), "--python", str(python), "--in-place", "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["record"]["cells"][2]["error"]["evalue"].startswith("cannot import name '_center'")
    assert any(f["check"] == "corruption" and f["severity"] == "fail" for f in report["findings"])
    assert any(line.startswith("--in-place: the kernel ran on") for line in report["record"]["fidelity"])
    assert version_in(python, "numpy") == UPGRADE_NUMPY          # really installed there, as on Colab
    refused = run_cli("run", str(nb), "--python", sys.executable, "--in-place", "--out", str(tmp_path / "o2"))
    assert refused.returncode == 2 and "the harness's own environment" in refused.stderr


def test_the_colab_release_and_image_digest_reach_the_report_and_the_aggregate(target_venv: Path,
                                                                              tmp_path: Path) -> None:
    """Inside Colab's runtime container the image sets COLAB_RELEASE_TAG; the workflow passes the digest."""
    nb = make_notebook(tmp_path / "nb.ipynb", [("print(1)", [])])
    out = tmp_path / "colab-runtime"
    env = {**os.environ, "COLAB_RELEASE_TAG": "release-colab-20261101-060101-RC00",
           "COLAB_CI_IMAGE_DIGEST": "sha256:" + "ab" * 32}
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(nb), "--python", str(target_venv), "--out",
                           str(out)], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env=env)
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "report.json").read_text())["record"]
    assert record["environment"]["colab_release_tag"] == "release-colab-20261101-060101-RC00"
    combined = run_cli("aggregate", "--report", str(out))
    assert combined.returncode == 0, combined.stderr
    assert f"Colab release `release-colab-20261101-060101-RC00`, image `sha256:{'ab' * 32}`" in combined.stdout


def test_a_computed_install_loop_runs_and_the_probes_see_what_it_installed(target_venv: Path,
                                                                          tmp_path: Path) -> None:
    """The previous generation's install cell (a computed list, one `subprocess` pip install per package):
    static reading cannot know `package`, which must not stop the run; the probe sees what it installed."""
    from tests.harness.tiny_wheels import tiny_wheel

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    tiny_wheel(wheels, "colabci-tiny", "1.0")
    out = tmp_path / "out"
    proc = run_cli("run", str(NOTEBOOKS / "computed_install_loop.ipynb"), "--python", str(target_venv),
                   "-p", "WHEELS", str(wheels), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((out / "report.json").read_text())["record"]
    statuses = [c["status"] for c in record["cells"]]      # papermill adds the injected-parameters cell
    assert record["outcome"] == "completed" and statuses == ["ok"] * len(statuses) and len(statuses) >= 3
    assert stream_text(_cell(out / "executed.ipynb", 2)) == "installed: ['colabci_tiny']\n"
    assert stream_text(_cell(out / "executed.ipynb", 3)) == "after the install: colabci_tiny imported\n"
    [install] = record["installs"]
    assert (install["cell_index"], install["recognised"]) == (2, ["subprocess"])
    assert install["changed"] == {"colabci-tiny": [None, "1.0"]}
    assert version_in(target_venv, "colabci_tiny") == "absent"          # the run's copy, never the target
