"""The harness's cost over bare papermill on the same notebook, in the same environment.

    .venv/bin/python bench/bench_harness_vs_papermill.py [--notebook NB] [--python PY] [--repeat N] [-p NAME=VALUE]

A = ``harness.execute.execute`` (what ``colab-ci run`` does before checks and reports: disposable
hard-link copy of the environment, start-up cell, probes around install cells, observe, delete
the copy; the part of the copy a kernel does not need to start is made while it starts, and the
copy is deleted by a detached ``rm`` after the run, which the bench waits for untimed). B =
``papermill.execute_notebook`` with the stock nbclient engine on a kernelspec for
the same interpreter. B must not install into the environment under test either, so each B run
gets its own copy too, made and deleted *outside* its timing: the copy is harness overhead, B
does not pay for it. Runs are interleaved (A B A B ...) so machine noise hits both alike; the
script prints each run, the medians and minimums and the ratios A/B. Target: A/B <= 1.10.

The default notebook is a small fixture with one install cell (``%pip install`` of a wheel that
is not installed) so the probes are exercised; ``--notebook notebook/template.ipynb`` measures the
real notebook (COLAB_CI_CHECKOUT is set for both, as the harness sets it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
import papermill

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from harness.cli import parse_parameters  # noqa: E402
from harness.environment import make_kernelspec, prepare_environment, wait_for_deletions  # noqa: E402
from harness.execute import execute, find_checkout  # noqa: E402


def fixture_notebook(folder: Path) -> Path:
    """numpy imported, one install cell, a little work after it."""
    cells = [
        ("import numpy as np\nx = np.random.default_rng(0).standard_normal((300, 300))", []),
        ("%pip install -q --disable-pip-version-check tabulate==0.10.0", ["install"]),
        ("from tabulate import tabulate\nprint(tabulate([[1, float((x @ x).trace())]]))", []),
        ("import time\ntime.sleep(1.0)\nprint(np.linalg.svd(x, compute_uv=False)[:3])", []),
    ]
    nb = nbformat.v4.new_notebook()
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "bench_fixture.ipynb"
    nbformat.write(nb, str(path))
    return path


def run_harness(notebook: Path, out: Path, python: Path | None, parameters: dict[str, Any]) -> float:
    start = time.perf_counter()
    record = execute(notebook, out, python=python, parameters=parameters, log=lambda _m: None)
    elapsed = time.perf_counter() - start
    wait_for_deletions()  # untimed, but finished before B starts so it does not slow B down
    if record.outcome != "completed":
        raise SystemExit(f"harness run did not complete: {record.outcome} {record.outcome_detail}")
    return elapsed


def run_papermill(notebook: Path, out: Path, python: Path | None, parameters: dict[str, Any]) -> float:
    env = prepare_environment(python, log=lambda _m: None)       # untimed: B's own disposable copy
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-papermill-"))
    checkout = find_checkout(notebook)
    spec = make_kernelspec(env, workdir, {"COLAB_CI_CHECKOUT": str(checkout)} if checkout else {})
    content = workdir / "content"
    content.mkdir()
    saved = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(workdir)
    try:
        start = time.perf_counter()
        papermill.execute_notebook(str(notebook), str(out / "executed.ipynb"), parameters=parameters or None,
                                   kernel_name=spec.name, language="python", progress_bar=False, cwd=str(content))
        elapsed = time.perf_counter() - start
    finally:
        if saved is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = saved
        env.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=None)
    parser.add_argument("--python", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("-p", dest="parameters", action="append", default=[])
    args = parser.parse_args()
    parameters = parse_parameters(args.parameters)
    with tempfile.TemporaryDirectory(prefix="bench-harness-") as tmp:
        notebook = args.notebook or fixture_notebook(Path(tmp))
        a_times, b_times = [], []
        for i in range(args.repeat):
            a_times.append(run_harness(notebook, Path(tmp) / f"a{i}", args.python, parameters))
            b_times.append(run_papermill(notebook, Path(tmp) / f"b{i}", args.python, parameters))
            print(f"run {i + 1}: harness {a_times[-1]:.2f} s, papermill {b_times[-1]:.2f} s", flush=True)
    a, b = statistics.median(a_times), statistics.median(b_times)
    print(f"notebook: {args.notebook or 'install-cell fixture'}; python: {args.python or sys.executable}")
    print(f"median harness {a:.2f} s, median papermill {b:.2f} s, ratio {a / b:.3f} (target <= 1.10)")
    # On a shared machine the minimum is the least disturbed run of each.
    print(f"min    harness {min(a_times):.2f} s, min    papermill {min(b_times):.2f} s, "
          f"ratio {min(a_times) / min(b_times):.3f}")


if __name__ == "__main__":
    main()
