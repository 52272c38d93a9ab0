"""``run --on colab``: the notebook on a Colab runtime, observed like a local run; one more RunRecord.

1. Assign a runtime through Colab's API (``harness.execution.colab_api``; CPU, or ``--gpu``).
2. Run the instrumented notebook (the same start-up probe and per-cell probes, the same parameters
   injection by papermill) on a kernel of the runtime's Jupyter server
   (``harness.execution.colab_engine``), supervised as locally (``--timeout``, ``--cell-timeout``,
   Ctrl-C and SIGTERM: ``harness.execution.supervisor``, which interrupts and then shuts the remote
   kernel down instead of signalling a process).
3. Write the executed notebook, bring back what ``files.download`` produced (``<out>/downloads``).
4. **Always release the runtime** (a ``finally``, with Ctrl-C and SIGTERM held off while the
   release call is made): a runtime left assigned spends compute units until it idles out.

The record is judged by the same observations and checks as a local run. Its ``environment``
carries what the runtime says it is (``engine`` ``colab``, ``colab_release_tag``, ``accelerator``,
``gpu``, ``cuda``, python, numpy, torch from the start-up probe) and its comparison with the
newest shipped profile of its kind (``harness.images.runtime_compare``); ``runtime.json`` beside
the reports has the whole comparison.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import nbformat

from harness.core.contract import META_KEY
from harness.core.errors import HarnessError
from harness.core.records import RunRecord
from harness.core.secrets import write_json
from harness.execution import colab_engine
from harness.execution.colab_api import Assignment, ColabApi, ColabApiError
from harness.execution.colab_auth import AccessToken, keep_secret
from harness.execution.colab_errors import NotChecked
from harness.execution.engine import write_notebook
from harness.execution.execute import KERNEL_START_TIMEOUT_S, OUTPUT_NAME, read_source
from harness.execution.kernelspec import KernelSpecInfo
from harness.execution.papermill_thread import abandon, start_papermill
from harness.execution.probes import instrument
from harness.execution.remote_kernel import RemoteServer
from harness.execution.run_state import Progress, RunState
from harness.execution.supervisor import supervise
from harness.images.runtime_compare import MOVED_NOTICE, compare
from harness.observations.observe import observe

Log = Callable[[str], None]
RUNTIME_FILE = "runtime.json"


def execute_on_colab(notebook: Path, out_dir: Path, access: AccessToken, *, gpu: str | None = None,
                     parameters: dict[str, Any] | None = None, cell_timeout: float | None = None,
                     run_timeout: float | None = None, progress: Progress | None = None,
                     log: Log = lambda line: None, api: ColabApi | None = None) -> RunRecord:
    t0 = time.monotonic()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    notebook = Path(notebook)
    parameters = dict(parameters or {})
    source, declared = read_source(notebook, parameters)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / OUTPUT_NAME
    instrumented = instrument(source)
    api = api or ColabApi(access)

    balance_before = api.compute_units()
    assignment: Assignment | None = None
    state: RunState | None = None
    outcome, detail = "completed", ""
    workdir = Path(tempfile.mkdtemp(prefix="colab-ci-colab-"))
    released = ""
    try:
        try:
            log(f"colab-ci: assigning a Colab runtime ({gpu or 'CPU'}) at {api.domain}")
            try:
                with _signals_held():   # a Ctrl-C now would lose the endpoint, and the runtime with it
                    assignment = api.assign(gpu)
            except ColabApiError as exc:
                raise NotChecked(f"no Colab runtime was assigned: {exc}") from None
            keep_secret(assignment.proxy_token)
            log(f"colab-ci: runtime assigned (accelerator {assignment.accelerator})")
            state = RunState(kernel_spec=KernelSpecInfo("colab", workdir, [], {}), total_source_cells=len(source.cells),
                             progress=progress, cell_timeout=cell_timeout, output_path=output,
                             remote_server=RemoteServer(assignment.url, assignment.proxy_token))
            input_path = workdir / "input.ipynb"
            nbformat.write(instrumented, str(input_path))
            run = start_papermill(state, dict(
                input_path=str(input_path), output_path=str(workdir / "papermill-output.ipynb"),
                parameters=parameters or None, engine_name=colab_engine.ENGINE_NAME, kernel_name="python3",
                language="python", progress_bar=False, start_timeout=KERNEL_START_TIMEOUT_S,
                execution_timeout=cell_timeout))
            supervise(run.thread, state, run_timeout, cell_timeout, log)
            if state.abandoned:
                abandon(run)
            elif run.error is not None and state.stopping is None:
                if not state.kernel_started:
                    first = (str(run.error).strip().splitlines() or [type(run.error).__name__])[0]
                    raise HarnessError(f"the kernel on the Colab runtime did not start ({type(run.error).__name__}: "
                                       f"{first}).")
                raise run.error
        except KeyboardInterrupt:   # before the kernel ran (the supervisor takes them after)
            outcome, detail = "interrupted", "interrupted before the kernel on the Colab runtime started"
        if state is not None and state.nb_man is not None:
            if state.stopping is None and state.outcome is None and not state.all_cells_ran:
                state.stop("cell-error", "execution stopped before every cell ran")
            outcome, detail = state.final_outcome()
    finally:
        if assignment is not None:
            released = _release(api, assignment, log)
        shutil.rmtree(workdir, ignore_errors=True)

    final_nb = state.nb_man.nb if state is not None and state.nb_man is not None else instrumented
    runtime = {"engine": "colab", "accelerator": (assignment.accelerator if assignment else (gpu or "NONE")),
               **{k: str(v) for k, v in ((state.runtime_info if state else None) or {}).items() if v}}
    if released:
        runtime["release"] = released
    _save(final_nb, output, notebook, outcome, detail, parameters, runtime, state)
    downloads = colab_engine.save_downloads((state.downloads if state else None) or {}, out_dir / "downloads")
    seen = observe(final_nb)
    environment = {**seen.environment, **runtime}
    if environment.get("torch", "").split("+")[-1].startswith("cu") and "cuda" not in environment:
        environment["cuda"] = environment["torch"].split("+")[-1]   # torch's own build, e.g. cu126
    if environment.get("cuda_version"):
        environment["cuda"] = environment.pop("cuda_version")
    startup = next((p for p in seen.probes if p.get("phase") == "startup"), None)
    fidelity: list[str] = []
    if startup is not None and isinstance(startup.get("installed"), dict):
        kind = "gpu" if assignment is not None and assignment.accelerator not in ("", "NONE") else "cpu"
        comparison = compare(startup["installed"], environment.get("colab_release_tag", ""), kind)
        environment["pip_freeze_compared"] = comparison.summary()
        if comparison.moved:
            environment["notice"] = MOVED_NOTICE
            fidelity.append(f"{MOVED_NOTICE} (the runtime's release {environment.get('colab_release_tag')} is newer "
                            "than every profile shipped)")
        write_json(out_dir / RUNTIME_FILE, {"runtime": environment, "downloads": downloads,
                                            "pip_freeze": comparison.to_json()}, indent=1)
    balance_after = api.compute_units() if assignment is not None else None
    if balance_before is not None and balance_after is not None:
        environment["compute_units_used"] = f"{balance_before - balance_after:.2f}"
    return RunRecord(
        notebook=str(notebook), output_notebook=str(output), python=f"colab runtime ({environment.get('python', '?')})",
        parameters=parameters, started_at=started_at, duration_s=round(time.monotonic() - t0, 3),
        outcome=outcome, outcome_detail=detail,  # type: ignore[arg-type]
        cells=seen.cells, installs=seen.installs, replaced=seen.replaced, probes=seen.stats,
        colab_calls=seen.colab_calls, network_failures=seen.network_failures, tiers=seen.tiers,
        environment=environment, fidelity=fidelity, declared_tiers=declared)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait (they are delivered after) while the runtime is assigned or released."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _release(api: ColabApi, assignment: Assignment, log: Log) -> str:
    """Release the runtime; "released" or why not (said in the report: it may still spend units)."""
    with _signals_held():
        try:
            api.release(assignment.endpoint)
        except ColabApiError as exc:
            log(f"colab-ci: warning: the Colab runtime was NOT released ({exc}); release it with `colab stop` "
                "or at colab.research.google.com (Runtime > Manage sessions)")
            return f"NOT released ({exc})"
    log("colab-ci: Colab runtime released")
    return "released"


def _save(nb: Any, output: Path, notebook: Path, outcome: str, detail: str, parameters: dict[str, Any],
          runtime: dict[str, str], state: RunState | None) -> None:
    with state.save_lock if state is not None else contextlib.nullcontext():
        if state is not None:
            state.final_saved = True
        nb.metadata.setdefault("papermill", {}).update(input_path=str(notebook), output_path=str(output))
        own = nb.metadata.get(META_KEY) or {}
        nb.metadata[META_KEY] = {
            **({"tiers": own["tiers"]} if isinstance(own, dict) and "tiers" in own else {}),
            "source": str(notebook), "outcome": outcome, "outcome_detail": detail,
            "python": "colab runtime", "environment": dict(runtime), "parameters": parameters,
        }
        write_notebook(nb, output)


def not_checked(out_dir: Path, notebook: Path, reason: str) -> dict[str, Path]:
    """The Colab column "not checked": report.md and not-checked.json saying why (exit 2, never pass).
    No report.json: readers of reports find none, which is "could not tell" for them too."""
    from harness.core.secrets import write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"verdict": "error", "not_checked": True, "engine": "colab", "notebook": str(notebook), "reason": reason}
    return {"json": write_json(out_dir / "not-checked.json", data, indent=1),
            "markdown": write_text(out_dir / "report.md",
                                   f"# colab-ci: {notebook} on Colab: not checked\n\n{reason}\n\n"
                                   "This column is not a pass: nothing ran (docs/colab.md).\n")}

