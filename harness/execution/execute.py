"""Execute one notebook in a disposable copy of an environment and observe it: -> ``RunRecord``.

``execute`` is the execution stage of the pipeline (docs/architecture.md)::

    load + validate notebook and parameters   (HarnessError: exit 2)
    disposable environment + kernelspec       (harness.execution.environment)
    instrument: start-up cell, probes         (harness.execution.probes; the source notebook is not touched)
    papermill.execute_notebook(engine "colab-ci")   (harness.execution.engine)
    save out_dir/executed.ipynb               (in every outcome)
    observe -> RunRecord                      (harness.observations.observe)

Outcomes (``RunRecord.outcome``): ``completed``, ``cell-error``, ``kernel-died`` (SIGKILL, SIGSEGV,
os._exit, out of memory: ``outcome_detail`` names the signal and the cell), ``timeout``
(``--cell-timeout``: the hanging cell is interrupted so its traceback shows where it hung;
``--timeout``: a watchdog interrupts the kernel, and the harness itself if the kernel does not
give up), ``interrupted`` (Ctrl-C, or SIGTERM turned into KeyboardInterrupt by the CLI).

Ctrl-C: ``execute`` does **not** re-raise ``KeyboardInterrupt``. It stops the kernel, saves the
executed notebook and returns the record with outcome ``interrupted``, so the caller writes
reports as for any other run (the CLI then exits 130). A second Ctrl-C during that clean-up is
not caught.

Parameters are injected by papermill in an ``injected-parameters`` cell right after the cell
tagged ``parameters``, so they win over that cell's ``#@param`` assignments. A parameter the
parameters cell does not assign is a ``HarnessError``.

The kernel gets ``COLAB_CI_CHECKOUT=<repository root>`` when the notebook lies in a checkout that
has ``notebook/tiers`` (so the notebook's install cell uses the tiers library of the checkout under
test, never a published copy); every other variable of the harness's environment passes through.
The kernel's working directory is an empty scratch folder, like Colab's ``/content``.
"""

from __future__ import annotations

import _thread
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError
from papermill.inspection import _infer_parameters

from harness.errors import HarnessError
from harness.execution.engine import ENGINE_NAME, Progress, ProgressEvent, RunState
from harness.execution.environment import RunEnvironment, make_kernelspec, prepare_environment
from harness.execution.probes import META_KEY, PROBE_MODULE_SOURCE, instrument, probe_role
from harness.observations.observe import observe
from harness.records import RunRecord

OUTPUT_NAME = "executed.ipynb"
KERNEL_START_TIMEOUT_S = 120
WATCHDOG_GRACE_S = 10.0
Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- inputs --------------------------------------------------------------------------------------

def load_notebook(path: Path) -> nbformat.NotebookNode:
    """Read and validate a notebook; ``HarnessError`` naming the file when it is not one."""
    if not path.exists():
        raise HarnessError(f"notebook {path} does not exist.")
    if not path.is_file():
        raise HarnessError(f"notebook {path} is not a file.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"notebook {path} could not be read ({exc}).") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HarnessError(f"notebook {path} is not valid JSON ({exc.msg} at line {exc.lineno}, "
                           f"column {exc.colno}).") from None
    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        raise HarnessError(f"notebook {path} is JSON but not a Jupyter notebook (no \"cells\" and "
                           "\"nbformat\" fields).")
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - nbformat raises several kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(f"notebook {path} is not a valid Jupyter notebook ({first}).") from None
    return nb


def known_parameters(nb: nbformat.NotebookNode) -> list[str] | None:
    """Names the cell tagged ``parameters`` assigns, or None when no cell has that tag."""
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        return None
    probe = nbformat.from_dict({"cells": [{"metadata": {"tags": c.get("metadata", {}).get("tags", [])},
                                           "source": c.get("source", "")} for c in nb.cells],
                                "metadata": {}})
    return [p.name for p in _infer_parameters(probe, name="python3", language="python")]


def check_parameters(nb: nbformat.NotebookNode, parameters: dict[str, Any], path: Path) -> None:
    if not parameters:
        return
    known = known_parameters(nb)
    if known is None:
        raise HarnessError(f"notebook {path} has no cell tagged \"parameters\", so -p "
                           f"{', '.join(sorted(parameters))} cannot be set.")
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        listed = ", ".join(known) if known else "nothing"
        raise HarnessError(f"unknown parameter {', '.join(unknown)}: the parameters cell of {path} "
                           f"assigns {listed}.")


def find_checkout(notebook: Path) -> Path | None:
    """The nearest folder above ``notebook`` that holds ``notebook/tiers`` (a colab-ci checkout)."""
    for folder in Path(os.path.abspath(notebook)).parents:
        if (folder / "notebook" / "tiers").is_dir():
            return folder
    return None


# --- the --timeout watchdog ---------------------------------------------------------------------

class Watchdog:
    """After ``timeout`` s: interrupt the kernel; after a grace period, interrupt the harness."""

    def __init__(self, state: RunState, timeout: float, grace: float = WATCHDOG_GRACE_S) -> None:
        self.state, self.grace = state, grace
        self._lock = threading.Lock()
        self._active = True
        self._timers = [threading.Timer(timeout, self._fire)]
        self._timers[0].daemon = True
        self._timers[0].start()

    def _fire(self) -> None:
        with self._lock:
            if not self._active:
                return
            self.state.run_timed_out = True
            pid = self.state.kernel_pid
            if pid and self.state.running:
                try:
                    os.kill(pid, signal.SIGINT)
                except OSError:
                    pass
            force = threading.Timer(self.grace, self._force)
            force.daemon = True
            self._timers.append(force)
            force.start()

    def _force(self) -> None:
        with self._lock:
            if self._active:
                _thread.interrupt_main()

    def cancel(self) -> None:
        with self._lock:
            self._active = False
        for timer in self._timers:
            timer.cancel()


def _kill_kernel_group(state: RunState | None) -> None:
    """SIGKILL what is left of the kernel's process group (it runs in its own session)."""
    if state is None or not state.kernel_pid:
        return
    try:
        os.killpg(state.kernel_pid, signal.SIGKILL)
    except OSError:
        pass


def _installed_on_disk(env: RunEnvironment, cwd: Path) -> dict[str, str] | None:
    """The run environment's distributions, read after the kernel stopped (stand-in after-probe),
    from the kernel's working directory so ``sys.path`` is the kernel's."""
    code = PROBE_MODULE_SOURCE + "\nimport json\nprint(json.dumps(installed()[0]))\n"
    try:
        proc = subprocess.run([str(env.python), "-c", code], capture_output=True, text=True, timeout=60,
                              env={**os.environ, **env.kernel_env()}, cwd=str(cwd))
        return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None


def _startup_fidelity(observed_probes: list[dict[str, Any]], target: str) -> list[str]:
    start = next((p for p in observed_probes if p.get("phase") == "startup"), None)
    if start is None:
        return []
    lines = []
    for module, dist in (("numpy", "numpy"), ("PIL", "pillow"), ("psutil", "psutil")):
        if dist not in start.get("installed", {}):
            lines.append(f"{module} is not installed in {target}: Colab's kernel imports it at start-up, "
                         "this run's kernel could not.")
    return lines


# --- execute -------------------------------------------------------------------------------------

def execute(notebook: Path, out_dir: Path, *, python: Path | None = None,
            parameters: dict[str, Any] | None = None, cell_timeout: float | None = None,
            run_timeout: float | None = None, keep_env: bool = False,
            progress: Progress | None = None, log: Log = _stderr,
            environment: Callable[[], RunEnvironment] | None = None) -> RunRecord:
    """Run ``notebook`` headlessly; write ``out_dir/executed.ipynb``; return what was observed.

    ``environment``: where the run's disposable environment comes from once the inputs are valid
    (default: ``prepare_environment(python, keep=keep_env, defer=True)``; the CLI passes an
    ``EnvironmentInBackground`` started before it imported this module).
    """
    t0 = time.monotonic()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    notebook = Path(notebook)
    parameters = dict(parameters or {})
    source = load_notebook(notebook)
    check_parameters(source, parameters, notebook)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(f"--out {out_dir} could not be created ({exc.strerror}).") from None
    output = out_dir / OUTPUT_NAME
    instrumented = instrument(source)

    env: RunEnvironment | None = None
    state: RunState | None = None
    workdir: Path | None = None
    outcome, detail = "completed", ""
    final_nb: Any = None
    final_installed: dict[str, str] | None = None
    try:
        try:
            env = (environment() if environment is not None
                   else prepare_environment(python, keep=keep_env, defer=True, log=log))
            how = "hard-link copy of" if env.mode == "venv-copy" else "--system-site-packages overlay over"
            log(f"colab-ci: environment: {how} {env.target.prefix} in {env.copy_s:.2f} s"
                f"{' (the rest copies while the kernel starts)' if env._copier else ''} ({env.root})")
            workdir = Path(tempfile.mkdtemp(prefix="colab-ci-run-"))
            content = workdir / "content"
            content.mkdir()
            checkout = find_checkout(notebook)
            spec = make_kernelspec(env, workdir, {"COLAB_CI_CHECKOUT": str(checkout)} if checkout else {})
            input_path = workdir / "input.ipynb"
            nbformat.write(instrumented, str(input_path))
            state = RunState(kernel_spec=spec, total_source_cells=len(source.cells), progress=progress,
                             ready=env.wait_ready, cell_timeout=cell_timeout, run_timeout=run_timeout)
            watchdog = Watchdog(state, run_timeout) if run_timeout else None
            try:
                papermill.execute_notebook(
                    str(input_path), str(output), parameters=parameters or None, engine_name=ENGINE_NAME,
                    kernel_name=spec.name, language="python", progress_bar=False, cwd=str(content),
                    start_timeout=KERNEL_START_TIMEOUT_S, execution_timeout=cell_timeout, run_state=state,
                )
            except PapermillExecutionError:
                pass  # a cell raised: the state says whether execution stopped there
            finally:
                if watchdog is not None:
                    watchdog.cancel()
                _kill_kernel_group(state)
        except KeyboardInterrupt:
            _kill_kernel_group(state)
            if state is not None and state.run_timed_out:
                state.stop("timeout", f"the run exceeded --timeout {run_timeout:g} s{state.where()}")
            elif state is not None:
                state.stop("interrupted", f"interrupted{state.where()}")
            else:
                outcome, detail = "interrupted", "interrupted before the kernel started"
        except HarnessError:
            raise
        except Exception as exc:  # noqa: BLE001
            if state is not None and not state.kernel_started:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise HarnessError(f"the kernel for {env.python if env else python} did not start "
                                   f"({type(exc).__name__}: {first}).") from None
            raise
        if state is not None and state.outcome is not None:
            outcome, detail = state.outcome, state.outcome_detail
        final_nb = state.nb_man.nb if state is not None and state.nb_man is not None else None
        if final_nb is not None and env is not None and workdir is not None and _needs_final_installed(final_nb):
            final_installed = _installed_on_disk(env, workdir / "content")
    finally:
        if final_nb is None:
            final_nb = instrumented
        if env is not None or outcome == "interrupted":  # a run began: its notebook is always saved
            _save(final_nb, output, notebook, outcome, detail, env, parameters, python, log)
        if env is not None:
            env.cleanup(log=log, wait=False)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    seen = observe(final_nb, final_installed=final_installed)
    fidelity = list(env.fidelity if env else []) + _startup_fidelity(seen.probes, str(env.target.prefix) if env else "")
    return RunRecord(
        notebook=str(notebook), output_notebook=str(output),
        python=str(env.target.python) if env else str(python or sys.executable),
        parameters=parameters, started_at=started_at, duration_s=round(time.monotonic() - t0, 3),
        outcome=outcome, outcome_detail=detail,  # type: ignore[arg-type]
        cells=seen.cells, installs=seen.installs, tiers=seen.tiers, environment=seen.environment,
        fidelity=fidelity,
    )


def _save(nb: Any, output: Path, notebook: Path, outcome: str, detail: str, env: RunEnvironment | None,
          parameters: dict[str, Any], python: Path | None, log: Log) -> None:
    nb.metadata.setdefault("papermill", {})["input_path"] = str(notebook)
    nb.metadata[META_KEY] = {
        "source": str(notebook), "outcome": outcome, "outcome_detail": detail,
        "python": str(env.target.python) if env else str(python or sys.executable),
        "environment": ({"mode": env.mode, "target": str(env.target.prefix), "copy_s": round(env.copy_s, 3),
                         "deferred_copy_s": round(env.deferred_s, 3), "copy_wait_s": round(env.wait_s, 3)}
                        if env else {}),
        "parameters": parameters,
    }
    try:
        nbformat.write(nb, str(output))
    except OSError as exc:
        log(f"colab-ci: could not write {output} ({exc.strerror})")


def _needs_final_installed(nb: Any) -> bool:
    """True when an install cell's before-probe ran but its after-probe did not."""
    phases: dict[int, set[str]] = {}
    for cell in nb.cells:
        phase, index = probe_role(cell)
        if phase in ("before", "after") and index is not None and cell.get("outputs"):
            phases.setdefault(index, set()).add(phase)
    return any(p == {"before"} for p in phases.values())


def print_progress(event: ProgressEvent) -> None:
    """The CLI's progress line per cell on stderr: index, tag, status, elapsed."""
    tag = f" [{event.tag}]" if event.tag else ""
    if event.kind == "start":
        _stderr(f"colab-ci: cell {event.index}/{event.total - 1}{tag} running")
    else:
        _stderr(f"colab-ci: cell {event.index}/{event.total - 1}{tag} {event.status} in {event.elapsed_s:.1f} s")
