"""The harness's cost over bare papermill on the same notebook, in the same environment.

    .venv/bin/python bench/bench_harness_vs_papermill.py [--notebook NB] [--python PY] [--repeat N]
        [--isolation auto|overlayfs|copy] [-p NAME=VALUE]

A = ``harness.execution.execute.execute`` (what ``colab-ci run`` does before checks and reports: the
disposable environment (an overlay mount where the machine allows it, else the hard-link copy,
partly made while the kernel starts and deleted by a detached ``rm`` that the bench waits for
untimed), start-up cell, a probe after every cell, observe). B =
``papermill.execute_notebook`` with the stock nbclient engine on a kernelspec for
the same interpreter. B must not install into the environment under test either, so each B run
gets its own copy too, made and deleted *outside* its timing: the copy is harness overhead, B
does not pay for it. Dirty file-system metadata is written back (``os.sync``, untimed) between
runs, so neither pays for the other's hard links or deletions. Runs are interleaved (A B A B ...) so machine noise hits both alike; the
script prints each run with its ratio, the medians and minimums and the ratios A/B, and the probe's
cost per cell (from A's own records). Targets: A/B <= 1.05, stable across consecutive runs; probe
<= 5 ms per cell.

``--cli`` compares the commands instead (``python -m harness run``, checks and reports included,
against ``papermill``), as a person runs them: both pay Python's start and their imports, and the
harness starts its environment copy before importing papermill, so the two overlap.

The default notebook is a small fixture with one install cell (``%pip install`` of a wheel that
is not installed) so the probes are exercised; ``--notebook notebook/template.ipynb`` measures the
real notebook (COLAB_CI_CHECKOUT is set for both, as the harness sets it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
import papermill

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from harness.source.parameters import parse as parse_parameters  # noqa: E402
from harness.source.parameters import to_cli as parameters_to_cli  # noqa: E402
from harness.execution.environment import prepare_environment, wait_for_deletions  # noqa: E402
from harness.execution.kernelspec import make_kernelspec  # noqa: E402
from harness.core.checkout import checkout_of  # noqa: E402
from harness.execution.execute import execute  # noqa: E402
from harness.core.contract import PROBE_MIME  # noqa: E402


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


PROBE_MS: list[float] = []     # every probe's cost, from the harness runs' records
MODES: set[str] = set()


def run_harness(notebook: Path, out: Path, python: Path | None, parameters: dict[str, Any]) -> tuple[float, float]:
    """(wall time, the part of it spent making the environment: first part + wait for the rest)."""
    start = time.perf_counter()
    record = execute(notebook, out, python=python, parameters=parameters, log=lambda _m: None)
    elapsed = time.perf_counter() - start
    env = json.loads(Path(record.output_notebook).read_text())["metadata"]["colab_ci"]["environment"]
    copy = env.get("copy_s", 0.0) + env.get("copy_wait_s", 0.0)
    MODES.add(env.get("mode", "?"))
    executed = json.loads(Path(record.output_notebook).read_text())
    PROBE_MS.extend(o["data"][PROBE_MIME]["probe_ms"] for c in executed["cells"] for o in c.get("outputs", [])
                    if PROBE_MIME in o.get("data", {}) and o["data"][PROBE_MIME].get("phase") == "cell")
    wait_for_deletions()  # untimed, but finished before B starts so it does not slow B down
    os.sync()             # and its metadata written back, so B does not pay for A's deletion
    if record.outcome != "completed":
        raise SystemExit(f"harness run did not complete: {record.outcome} {record.outcome_detail}")
    return elapsed, copy


def run_papermill(notebook: Path, out: Path, python: Path | None, parameters: dict[str, Any]) -> float:
    env = prepare_environment(python, log=lambda _m: None)       # untimed: B's own disposable copy
    out.mkdir(parents=True, exist_ok=True)
    os.sync()
    workdir = Path(tempfile.mkdtemp(prefix="bench-papermill-"))
    checkout = checkout_of(notebook)
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
        os.sync()  # B's copy and its deletion are written back before A copies (untimed)
    return elapsed


def _settle(before: set[str], limit_s: float = 20.0) -> None:
    """Wait (untimed) until the harness's detached deletion of its copy is done, then write back."""
    deadline = time.monotonic() + limit_s
    tmp = Path(tempfile.gettempdir())
    while time.monotonic() < deadline and {p.name for p in tmp.glob("colab-ci-env-*")} - before:
        time.sleep(0.1)
    os.sync()


def run_harness_cli(notebook: Path, out: Path, python: Path | None, parameters: dict[str, Any]) -> tuple[float, float]:
    """``python -m harness run`` as a person runs it (imports, checks and reports included)."""
    before = {p.name for p in Path(tempfile.gettempdir()).glob("colab-ci-env-*")}
    cmd = [sys.executable, "-m", "harness", "run", str(notebook), "--out", str(out)]
    cmd += ["--python", str(python)] if python else []
    cmd += parameters_to_cli(parameters)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"harness run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    _settle(before)
    env = json.loads((out / "executed.ipynb").read_text())["metadata"]["colab_ci"]["environment"]
    return elapsed, env.get("copy_wait_s", 0.0)  # the first part of the copy overlapped the imports


def run_papermill_cli(notebook: Path, out: Path, python: Path | None, parameters: dict[str, Any]) -> float:
    """The ``papermill`` command on the same notebook and interpreter (its own untimed copy)."""
    env = prepare_environment(python, log=lambda _m: None)
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-papermill-"))
    checkout = checkout_of(notebook)
    spec = make_kernelspec(env, workdir, {"COLAB_CI_CHECKOUT": str(checkout)} if checkout else {})
    (workdir / "content").mkdir()
    cmd = [sys.executable, "-m", "papermill", str(notebook), str(out / "executed.ipynb"), "-k", spec.name,
           "--cwd", str(workdir / "content"), "--no-progress-bar"]
    for name, value in parameters.items():
        cmd += ["-p", name, str(value)]
    os.sync()
    try:
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "JUPYTER_PATH": str(workdir)})
        return time.perf_counter() - start
    finally:
        env.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
        os.sync()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=None)
    parser.add_argument("--python", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--isolation", choices=("auto", "overlayfs", "copy"), default="auto",
                        help="how the harness isolates the environment (COLAB_CI_ISOLATION)")
    parser.add_argument("-p", dest="parameters", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--cli", action="store_true",
                        help="compare the commands (`python -m harness run` vs `papermill`), imports included")
    args = parser.parse_args()
    harness_run = run_harness_cli if args.cli else run_harness
    papermill_run = run_papermill_cli if args.cli else run_papermill
    parameters = parse_parameters(args.parameters)
    os.environ["COLAB_CI_ISOLATION"] = args.isolation
    with tempfile.TemporaryDirectory(prefix="bench-harness-") as tmp:
        notebook = args.notebook or fixture_notebook(Path(tmp))
        a_times, copy_times, b_times = [], [], []
        for i in range(args.repeat):
            elapsed, copy = harness_run(notebook, Path(tmp) / f"a{i}", args.python, parameters)
            a_times.append(elapsed)
            copy_times.append(copy)
            b_times.append(papermill_run(notebook, Path(tmp) / f"b{i}", args.python, parameters))
            print(f"run {i + 1}: harness {a_times[-1]:.2f} s (environment {copy:.2f} s), "
                  f"papermill {b_times[-1]:.2f} s, ratio {a_times[-1] / b_times[-1]:.3f}", flush=True)
    a, b, c = statistics.median(a_times), statistics.median(b_times), statistics.median(copy_times)
    rest = statistics.median(t - k for t, k in zip(a_times, copy_times))
    ratios = [x / y for x, y in zip(a_times, b_times)]
    print(f"{'commands' if args.cli else 'Python API'}; notebook: {args.notebook or 'install-cell fixture'}; "
          f"python: {args.python or sys.executable}; isolation: {', '.join(sorted(MODES)) or args.isolation}")
    print(f"median harness {a:.2f} s, median papermill {b:.2f} s, ratio {a / b:.3f} (target <= 1.05); "
          f"per-run ratios {min(ratios):.3f}..{max(ratios):.3f}, first half median "
          f"{statistics.median(ratios[:len(ratios) // 2 or 1]):.3f}, second half {statistics.median(ratios[len(ratios) // 2:]):.3f}")
    # On a shared machine the minimum is the least disturbed run of each.
    print(f"min    harness {min(a_times):.2f} s, min    papermill {min(b_times):.2f} s, "
          f"ratio {min(a_times) / min(b_times):.3f}")
    print(f"of which the environment: median {c:.2f} s; harness without it {rest:.2f} s, "
          f"ratio {rest / b:.3f} (probes, start-up cell, engine, observation)")
    if PROBE_MS:
        print(f"probe after each cell: {len(PROBE_MS)} probes, median {statistics.median(PROBE_MS):.2f} ms, "
              f"90th percentile {statistics.quantiles(PROBE_MS, n=10)[-1]:.2f} ms, max {max(PROBE_MS):.2f} ms "
              "(target <= 5 ms; the max is the cell that first imports a large package)")


if __name__ == "__main__":
    main()
