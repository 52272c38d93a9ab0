"""Execute one notebook in a disposable copy of an environment and observe it: -> ``RunRecord``.

``execute`` is the execution stage of the pipeline (docs/architecture.md)::

    load + validate notebook and parameters   (HarnessError: exit 2)
    disposable environment + kernelspec       (harness.execution.environment)
    instrument: start-up cell, probes         (harness.execution.probes; the source notebook is not touched)
    papermill.execute_notebook(engine "colab-ci")   (harness.execution.engine)
    save out_dir/executed.ipynb               (in every outcome)
    observe -> RunRecord                      (harness.observations.observe)

Outcomes (``RunRecord.outcome``): ``completed``, ``cell-error``, ``stopped`` (a cell ended the
notebook on purpose: ``sys.exit(0)``, ``exit()``; ``harness.execution.early_stop``), ``kernel-died`` (SIGKILL, SIGSEGV,
os._exit, out of memory: ``outcome_detail`` names the signal and the cell), ``timeout``
(``--cell-timeout``: the hanging cell is interrupted so its traceback shows where it hung;
``--timeout``), ``interrupted`` (Ctrl-C, or SIGTERM turned into KeyboardInterrupt by the CLI).

papermill runs in a worker thread; the calling (main) thread supervises it
(``harness.execution.supervisor``), so Ctrl-C, SIGTERM and both timeouts end the run within a
bounded time whatever the kernel does: ``execute`` does **not** re-raise ``KeyboardInterrupt``,
it returns the record with outcome ``interrupted`` after the executed notebook is saved, so the
caller writes reports as for any other run (the CLI then exits 130). When the worker could not be
unwound, ``record`` is still returned and ``abandoned_runs()`` says so (the CLI then leaves with
``os._exit``).

The kernel's environment is an allow-list (``harness.execution.kernel_environment``): what a
fresh Colab runtime has and what the harness needs, plus the variables ``secrets`` (``--secret``)
and ``passed_env`` (``--env``) name; nothing else of the caller's shell. The values of ``secrets``
are redacted from the executed notebook as from every report (``harness.core.secrets``, registered by
the CLI). The kernel's own stdout/stderr (not the cells' outputs) go to ``kernel.log``.

Parameters are injected by papermill in an ``injected-parameters`` cell right after the cell
tagged ``parameters``, so they win over that cell's ``#@param`` assignments. A parameter the
parameters cell does not assign is a ``HarnessError``.

The kernel gets ``COLAB_CI_CHECKOUT=<repository root>`` when the notebook lies in a checkout that
has ``notebook/tiers`` (so the notebook's install cell uses the tiers library of the checkout under
test, never a published copy).
The kernel's working directory is an empty scratch folder, like Colab's ``/content``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import nbformat
import papermill

from harness.core.checkout import checkout_of
from harness.core.contract import META_KEY, PROBE_MIME, probe_role
from harness.core.errors import HarnessError
from harness.core.progress import Display, Event
from harness.core.records import RunRecord
from harness.execution import headless_colab
from harness.execution.engine import ENGINE_NAME, write_notebook
from harness.execution.environment import RunEnvironment, prepare_environment
from harness.execution.kernel_environment import kernel_environment
from harness.execution.kernelspec import make_kernelspec
from harness.execution.papermill_thread import abandon, start_papermill
from harness.execution.probes import installed_source, instrument
from harness.execution.run_state import Progress, ProgressEvent, RunState
from harness.execution.supervisor import end_kernel_group, supervise
from harness.images.fidelity import read_fidelity
from harness.observations.observe import observe
from harness.source.notebook_config import declared_tiers

OUTPUT_NAME = "executed.ipynb"
KERNEL_START_TIMEOUT_S = 120
KERNEL_LOG = "kernel.log"
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


def known_parameters(nb: nbformat.NotebookNode, path: Path) -> list[str] | None:
    """Names the cell tagged ``parameters`` assigns (papermill's own inference), or None when no
    cell has that tag."""
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        return None
    return list(papermill.inspect_notebook(str(path)))


def read_source(notebook: Path, parameters: dict[str, Any]):  # -> (NotebookNode, the tiers it declares)
    """The notebook to run and the tiers it declares (``metadata.colab_ci.tiers``), its parameters checked
    against its parameters cell: one sentence (``HarnessError``) when it cannot run as asked."""
    source = load_notebook(notebook)
    check_parameters(source, parameters, notebook)
    try:
        return source, declared_tiers(source.metadata)
    except ValueError as exc:
        raise HarnessError(f"notebook {notebook}: {exc}.") from None


def check_parameters(nb: nbformat.NotebookNode, parameters: dict[str, Any], path: Path) -> None:
    if not parameters:
        return
    known = known_parameters(nb, path)
    if known is None:
        raise HarnessError(f"notebook {path} has no cell tagged \"parameters\", so -p "
                           f"{', '.join(sorted(parameters))} cannot be set.")
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        listed = ", ".join(known) if known else "nothing"
        raise HarnessError(f"unknown parameter {', '.join(unknown)}: the parameters cell of {path} "
                           f"assigns {listed}.")


def _installed_on_disk(env: RunEnvironment, cwd: Path) -> dict[str, str] | None:
    """The run environment's distributions, read after the kernel stopped (stand-in after-probe),
    from the kernel's working directory so ``sys.path`` is the kernel's."""
    code = installed_source()
    # The kernel's environment, not the harness's: what the notebook installed runs here too (.pth files).
    try:
        proc = subprocess.run(env.argv([str(env.python), "-B", "-c", code]), capture_output=True, text=True, timeout=60,
                              env={**kernel_environment(), **env.kernel_env()}, cwd=str(cwd))
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
    for module, error in sorted((start.get("startup_import_errors") or {}).items()):
        why = str(error).splitlines()[0] if error else "?"
        lines.append(f"import {module} failed at start-up in {target} ({why}): Colab's kernel has it loaded "
                     "before the first cell, this run's kernel does not (a fidelity error: the run cannot pass).")
    return lines


# --- execute -------------------------------------------------------------------------------------

def execute(notebook: Path, out_dir: Path, *, python: Path | None = None,
            parameters: dict[str, Any] | None = None, cell_timeout: float | None = None,
            run_timeout: float | None = None, keep_env: bool = False,
            progress: Progress | None = None, log: Log = _stderr,
            environment: Callable[[], RunEnvironment] | None = None,
            secrets: tuple[str, ...] = (), content: tuple[Path, ...] = (),
            drive: Path | None = None, passed_env: dict[str, str] | None = None) -> RunRecord:
    """Run ``notebook`` headlessly; write ``out_dir/executed.ipynb``; return what was observed.

    ``environment``: where the run's disposable environment comes from once the inputs are valid
    (default: ``prepare_environment(python, keep=keep_env, defer=True)``; the CLI passes an
    ``EnvironmentInBackground`` started before it imported this module). ``content``, ``drive``,
    ``secrets``: what a Colab notebook expects of its runtime (``harness.execution.headless_colab``).
    ``passed_env``: more variables for the kernel (``--env``).
    """
    t0 = time.monotonic()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    notebook = Path(notebook)
    parameters = dict(parameters or {})
    source, declared = read_source(notebook, parameters)
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
            log(f"colab-ci: environment: {env.describe()}")
            workdir = Path(tempfile.mkdtemp(prefix="colab-ci-run-"))
            cwd = workdir / "content"
            cwd.mkdir()
            extra = headless_colab.kernel_settings(headless_colab.stage_content(content, cwd),
                                                   out_dir / "downloads", drive, secrets)
            colab_line = headless_colab.install_emulation(env)
            if not env.target.has_google_colab:
                env.fidelity.append(colab_line)
            checkout = checkout_of(notebook)
            if checkout:
                extra["COLAB_CI_CHECKOUT"] = str(checkout)
            spec = make_kernelspec(env, workdir, extra)
            input_path = workdir / "input.ipynb"
            nbformat.write(instrumented, str(input_path))
            kernel_log = open(workdir / KERNEL_LOG, "wb")  # noqa: SIM115 - closed in the finally below
            state = RunState(kernel_spec=spec, total_source_cells=len(source.cells), progress=progress,
                             ready=env.wait_ready, cell_timeout=cell_timeout, kernel_stdio=kernel_log,
                             kernel_env=kernel_environment(secrets, passed_env), kernel_cwd=cwd, output_path=output)
            # papermill's own writes (its error banner, its final write: after the engine returns, from a
            # worker that may outlive the run, truncate-then-write) go to a scratch file; the engine saves
            # executed.ipynb itself (state.output_path), atomically, and never after the run's final save.
            run = start_papermill(state, dict(
                input_path=str(input_path), output_path=str(workdir / "papermill-output.ipynb"),
                parameters=parameters or None,
                engine_name=ENGINE_NAME, kernel_name=spec.name, language="python", progress_bar=False,
                start_timeout=KERNEL_START_TIMEOUT_S, execution_timeout=cell_timeout))
            try:
                supervise(run.thread, state, run_timeout, cell_timeout, log)
            finally:
                end_kernel_group(state.kernel_process)
                kernel_log.close()
            if state.abandoned:
                abandon(run)
            elif run.error is not None and state.stopping is None:   # stopped while starting: an outcome
                _raise_start_failure(run.error, state, env)
        except HarnessError:
            raise
        except KeyboardInterrupt:   # before the kernel started (the supervisor takes them after)
            outcome, detail = "interrupted", "interrupted before the kernel started"
        if state is not None:
            if state.stopping is None and state.outcome is None and not state.all_cells_ran and env is not None:
                state.stop("cell-error", "execution stopped before every cell ran")
            outcome, detail = state.final_outcome()
        final_nb = state.nb_man.nb if state is not None and state.nb_man is not None else None
        if final_nb is not None and env is not None and workdir is not None and _last_cell_unprobed(final_nb):
            final_installed = _installed_on_disk(env, workdir / "content")
    finally:
        if final_nb is None:
            final_nb = instrumented
        if env is not None or outcome == "interrupted":  # a run began: its notebook is always saved
            _save(final_nb, output, notebook, outcome, detail, env, parameters, python, log, state)
        if workdir is not None and (workdir / KERNEL_LOG).is_file():
            _keep_kernel_log(workdir / KERNEL_LOG, out_dir / KERNEL_LOG)
        if env is not None:
            env.cleanup(log=log, wait=False)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    seen = observe(final_nb, final_installed=final_installed)
    image = (read_fidelity(env.target.python) or []) if env else []   # a mirror built by `images build`
    fidelity = image + list(env.fidelity if env else []) + _startup_fidelity(seen.probes,
                                                                             str(env.target.prefix) if env else "")
    return RunRecord(
        notebook=str(notebook), output_notebook=str(output),
        python=str(env.target.python) if env else str(python or sys.executable),
        parameters=parameters, started_at=started_at, duration_s=round(time.monotonic() - t0, 3),
        outcome=outcome, outcome_detail=detail,  # type: ignore[arg-type]
        cells=seen.cells, installs=seen.installs, replaced=seen.replaced, probes=seen.stats,
        colab_calls=seen.colab_calls, network_failures=seen.network_failures,
        tiers=seen.tiers, environment={**seen.environment, **_runtime_identity()}, fidelity=fidelity,
        declared_tiers=declared,
    )


def _raise_start_failure(error: BaseException, state: RunState, env: RunEnvironment) -> None:
    if not state.kernel_started:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise HarnessError(f"the kernel for {env.python} did not start ({type(error).__name__}: {first}).")
    raise error


# Set inside Colab's runtime container (COLAB_RELEASE_TAG, by the image) and by the workflow that
# runs it (COLAB_CI_IMAGE_DIGEST, from `docker inspect`): which Colab the run was, for the reports.
RUNTIME_IDENTITY = {"COLAB_RELEASE_TAG": "colab_release_tag", "COLAB_CI_IMAGE_DIGEST": "image_digest"}


def _runtime_identity() -> dict[str, str]:
    return {key: os.environ[name] for name, key in RUNTIME_IDENTITY.items() if os.environ.get(name)}


def _save(nb: Any, output: Path, notebook: Path, outcome: str, detail: str, env: RunEnvironment | None,
          parameters: dict[str, Any], python: Path | None, log: Log, state: RunState | None) -> None:
    with state.save_lock if state is not None else contextlib.nullcontext():   # waits for a save the engine has begun (same notebook object); none follows this one
        if state is not None:
            state.final_saved = True
        nb.metadata.setdefault("papermill", {}).update(input_path=str(notebook), output_path=str(output))
        own = nb.metadata.get(META_KEY) or {}   # the notebook's own declaration (notebook_config) is kept
        nb.metadata[META_KEY] = {
            **({"tiers": own["tiers"]} if isinstance(own, dict) and "tiers" in own else {}),
            "source": str(notebook), "outcome": outcome, "outcome_detail": detail,
            "python": str(env.target.python) if env else str(python or sys.executable),
            "environment": env.metadata() if env else {},
            "parameters": parameters,
        }
        try:
            write_notebook(nb, output)
        except OSError as exc:
            log(f"colab-ci: could not write {output} ({exc.strerror})")


def _keep_kernel_log(source: Path, target: Path) -> None:
    from harness.core.secrets import redact

    try:
        text = source.read_text(encoding="utf-8", errors="replace")
        if text.strip():
            target.write_text(redact(text), encoding="utf-8")
    except OSError:
        pass


def _last_cell_unprobed(nb: Any) -> bool:
    """True when the last code cell that was sent to the kernel has no probe output (it died there)."""
    ran = [c for c in nb.cells if c.get("cell_type") == "code" and probe_role(c)[0] is None
           and (c.get("metadata", {}).get("papermill") or {}).get("status") in ("running", "completed", "failed")]
    if not ran:
        return False
    return not any(PROBE_MIME in (o.get("data") or {}) for o in ran[-1].get("outputs", []))


def progress_printer(shown: Display, scope: str = "run") -> Progress:
    """The run's progress (one event per cell started or finished) on a display (harness.core.progress)."""
    def report(event: ProgressEvent) -> None:
        tag = f" [{event.tag}]" if event.tag else ""
        where = f"cell {event.index}/{event.total - 1}{tag}"
        if event.kind == "start":
            shown.show(Event(scope, f"{where} running", step=event.index, total=event.total))
        else:
            shown.show(Event(scope, f"{where} {event.status} in {event.elapsed_s:.1f} s", step=event.index + 1,
                             total=event.total))
    return report
