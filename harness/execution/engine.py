"""The papermill engine colab-ci runs notebooks with (registered as ``colab-ci``).

Modelled on papermill's ``engines.py`` and kept in parts with one concern each (the state one run
shares with ``harness.execution.execute`` and its supervisor is ``harness.execution.run_state``):

* ``HarnessExecutionManager`` (papermill's ``NotebookExecutionManager``): the lifecycle. Notebook
  start, cell start, cell complete, notebook complete, and the **save policy**: the notebook is
  written at notebook start, after every *source* cell completes or fails (probe cells are saved
  with the next source cell), every 30 s during a long cell (papermill's autosave), and at
  notebook complete, which papermill runs in a ``finally`` (so also after a kernel death, a
  timeout or Ctrl-C). ``harness.execution.execute`` writes it once more after annotating the outcome.
  Progress (source index, tag, elapsed) is reported from here.
* ``HarnessNotebookClient`` (papermill's ``PapermillNotebookClient``, an nbclient client): execution
  mechanics only. It runs the cells and turns how execution stopped into a ``RunState`` outcome
  instead of an exception: a cell error (``CellExecutionError``), a cell timeout (the kernel is
  interrupted so the cell's traceback shows where it hung), a dead kernel (``DeadKernelError``,
  with the signal that killed it), or a stop the supervisor asked for (Ctrl-C, ``--timeout``),
  which it names on the cell that was running. A cell that ends the notebook on purpose
  (``sys.exit(0)``, ``exit()``: ``harness.execution.early_stop``) stops it with the outcome
  ``stopped``. It runs in a worker thread; it never handles signals itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
from papermill.utils import merge_kwargs, remove_args

from harness.core.contract import META_KEY, probe_role
from harness.core.secrets import redact_data
from harness.execution.early_stop import early_exit
from harness.execution.run_state import Progress, ProgressEvent, RunState

ENGINE_NAME = "colab-ci"

# nbclient's own log lines ("Kernel died while waiting for execute reply.") would duplicate the
# outcome the harness reports; they go to this logger, silent unless someone configures it.
logger = logging.getLogger("harness.execution.engine")
logger.addHandler(logging.NullHandler())
logger.propagate = False


def _note_error(cell: Any, ename: str, evalue: str) -> None:
    """Record on the cell an error that produced no error output (kernel death, timeout)."""
    cell.metadata.setdefault(META_KEY, {})["error"] = {"ename": ename, "evalue": evalue}


def _note_stop(cell: Any, state: RunState) -> None:
    """Name the error of the cell the supervisor stopped: a timeout or an interruption."""
    outcome, detail = state.stopping or ("interrupted", "")
    if outcome == "timeout":
        _note_error(cell, "RunTimeoutError" if detail.startswith("the run") else "CellTimeoutError", detail)
    else:
        _note_error(cell, "KeyboardInterrupt", "the run was interrupted while this cell ran")


def write_notebook(nb: Any, path: Path) -> None:
    """``nb`` to ``path``, redacted, written beside and renamed: a reader, or a process that ends
    mid-write (the CLI leaves with os._exit when a worker will not stop), never finds half a notebook."""
    text = nbformat.writes(nbformat.from_dict(redact_data(nb)))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _tag(cell: Any) -> str:
    return next((t for t in cell.metadata.get("tags", []) if t not in ("raises-exception", "skip-execution")), "")


class HarnessExecutionManager(NotebookExecutionManager):
    """papermill's execution manager with colab-ci's save policy and progress reporting."""

    def __init__(self, nb: Any, output_path: str | None = None, log_output: bool = False,
                 autosave_cell_every: int = 30, run_state: RunState | None = None) -> None:
        super().__init__(nb, output_path=output_path, log_output=log_output, progress_bar=False,
                         autosave_cell_every=autosave_cell_every)
        self.run_state = run_state
        self._started: dict[int, float] = {}

    def save(self, **kwargs: Any) -> None:
        """papermill's save, made safe: atomic, redacted, and never after the run's final save."""
        state = self.run_state
        if self.output_path:
            with state.save_lock if state is not None else contextlib.nullcontext():
                if state is None or not state.final_saved:
                    write_notebook(self.nb, Path(self.output_path))
        self.last_save_time = self.now()

    def _progress(self, event: ProgressEvent) -> None:
        if self.run_state is not None and self.run_state.progress is not None:
            try:
                self.run_state.progress(event)
            except Exception:  # noqa: BLE001 - a broken progress printer must not stop the run
                pass

    def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        cell.metadata.papermill["start_time"] = self.now().isoformat()
        cell.metadata.papermill["status"] = self.RUNNING
        cell.metadata.papermill["exception"] = False
        phase, source_index = probe_role(cell)
        if self.run_state is not None and phase is None and source_index is not None:
            self.run_state.current_source_index = source_index
        if phase is None and source_index is not None and cell.get("cell_type") == "code":
            self._started[cell_index or 0] = time.monotonic()
            self._progress(ProgressEvent("start", source_index, self._total(), _tag(cell)))
        # No save here: the cell is saved when it completes (and by autosave while it runs).

    def cell_complete(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        end_time = self.now()
        pm = cell.metadata.papermill
        pm["end_time"] = end_time.isoformat()
        if pm.get("start_time"):
            from dateutil import parser

            pm["duration"] = (end_time - parser.parse(pm["start_time"])).total_seconds()
        if pm["status"] != self.FAILED:
            pm["status"] = self.COMPLETED
        phase, source_index = probe_role(cell)
        if phase is None:
            self.save()
        if phase is None and source_index is not None and cell.get("cell_type") == "code":
            started = self._started.pop(cell_index or 0, time.monotonic())
            failed = pm["status"] == self.FAILED or any(o.get("output_type") == "error" for o in cell.get("outputs", []))
            self._progress(ProgressEvent("complete", source_index, self._total(), _tag(cell),
                                         "error" if failed else "ok", time.monotonic() - started))

    def notebook_complete(self, **kwargs: Any) -> None:
        """End time and a final save. Unlike papermill's, cells that never ran stay "pending"
        (papermill marks pending cells before the first failure "completed", which would turn a
        run stopped between cells, e.g. by --timeout, into cells that seem to have run)."""
        self.end_time = self.now()
        self.nb.metadata.papermill["end_time"] = self.end_time.isoformat()
        if self.nb.metadata.papermill.get("start_time"):
            self.nb.metadata.papermill["duration"] = (self.end_time - self.start_time).total_seconds()
        self.cleanup_pbar()
        self.save()

    def _total(self) -> int:
        return self.run_state.total_source_cells if self.run_state is not None else len(self.nb.cells)


class HarnessNotebookClient(PapermillNotebookClient):
    """Runs the cells; turns errors, timeouts and kernel deaths into a ``RunState`` outcome."""

    def __init__(self, nb_man: Any, km: Any = None, run_state: RunState | None = None, **kw: Any) -> None:
        super().__init__(nb_man, km=km, **kw)
        assert run_state is not None
        self.run_state = run_state
        self._timed_out_cell: int | None = None
        self._reply: dict[str, Any] | None = None   # the last cell's execute_reply content
        self.on_cell_executed = self._keep_reply

    def _keep_reply(self, cell: Any, cell_index: int, execute_reply: dict[str, Any] | None) -> None:
        self._reply = (execute_reply or {}).get("content")

    # --- kernel ---------------------------------------------------------------------------------
    def create_kernel_manager(self) -> Any:
        ksm = KernelSpecManager(kernel_dirs=[str(self.run_state.kernel_spec.kernels_dir)])
        # IPC transport: no TCP ports, and no "running over TCP without encryption" warning; the
        # sockets live beside the kernelspec (not in the kernel's working directory).
        ipc = self.run_state.kernel_spec.kernels_dir.parent / "kernel-ipc"
        transport = {"transport": "ipc", "ip": str(ipc)} if len(str(ipc)) < 90 else {}  # socket path limit
        self.km = self.kernel_manager_class(kernel_name=self.run_state.kernel_spec.name,
                                            kernel_spec_manager=ksm, config=self.config, **transport)
        return self.km

    async def async_start_new_kernel(self, **kwargs: Any) -> None:
        # The kernel's own stdout/stderr go to a log file: inherited, they would keep a caller's
        # pipe open as long as any process the kernel forked lives.
        if self.run_state.kernel_stdio is not None:
            kwargs.setdefault("stdout", self.run_state.kernel_stdio)
            kwargs.setdefault("stderr", self.run_state.kernel_stdio)
        if self.run_state.kernel_env is not None:
            kwargs.setdefault("env", dict(self.run_state.kernel_env))
        # The kernel's cwd goes to the kernel only: papermill's own cwd= changes the harness's whole
        # process's directory, from a worker thread, for as long as the run lasts.
        if self.run_state.kernel_cwd is not None:
            kwargs["cwd"] = str(self.run_state.kernel_cwd)
        await super().async_start_new_kernel(**kwargs)
        provisioner = getattr(self.km, "provisioner", None)
        self.run_state.kernel_process = getattr(provisioner, "process", None)

    start_new_kernel = run_sync(async_start_new_kernel)

    async def async_start_new_kernel_client(self) -> Any:
        kc = await super().async_start_new_kernel_client()
        self.run_state.kernel_started = True
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def _exit_signal(self) -> str:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        code = process.poll() if process is not None else None
        if code is None:
            return ""
        if code < 0:
            try:
                return f" ({signal.Signals(-code).name})"
            except ValueError:
                return f" (signal {-code})"
        return f" (exit status {code})"

    # --- timeouts -------------------------------------------------------------------------------
    async def _async_handle_timeout(self, timeout: int, cell: Any = None) -> None | dict[str, Any]:
        # Interrupt the kernel (the cell's traceback then shows where it hung) and answer the
        # pending execute request with an error at once instead of waiting another ``timeout``.
        index = self.run_state.current_source_index
        self._timed_out_cell = index
        self.error_on_timeout = {
            "ename": "CellTimeoutError",
            "evalue": f"cell {index} exceeded --cell-timeout {timeout:g} s",
            "traceback": [f"CellTimeoutError: cell {index} exceeded --cell-timeout {timeout:g} s"],
        }
        self.interrupt_on_timeout = True
        return await super()._async_handle_timeout(timeout, cell)

    # --- the cell loop --------------------------------------------------------------------------
    def execute(self, **kwargs: Any) -> Any:
        self.reset_execution_trackers()
        with self.setup_kernel(**kwargs):
            self.log.info(f"Executing notebook with kernel: {self.kernel_name}")
            self.papermill_execute_cells()
            if not self.run_state.kernel_dead and self.run_state.outcome != "timeout" and not self.run_state.stopping:
                try:
                    info_msg = self.wait_for_reply(self.kc.kernel_info())
                    if info_msg:
                        self.nb.metadata["language_info"] = info_msg["content"]["language_info"]
                except Exception:  # noqa: BLE001 - language_info is cosmetic
                    pass
            self.set_widgets_metadata()
        return self.nb

    def papermill_execute_cells(self) -> None:
        state = self.run_state
        cells = self.nb.cells
        if state.ready is not None:
            state.ready()
        for index, cell in enumerate(cells):
            state.next_source_index = _next_source(cells, index)
            if state.stopping is not None or not self._run_cell(index, cell):
                return
        state.all_cells_ran = True

    def _run_cell(self, index: int, cell: Any) -> bool:
        """Run one cell; False when execution must stop after it."""
        state = self.run_state
        self._timed_out_cell = None
        self._reply = None
        try:
            self.nb_man.cell_start(cell, index)
            state.cell_started = time.monotonic()
            self.execute_cell(cell, index)
            # a cell that tolerates errors (raises-exception) swallows an interrupt: ask the supervisor
            if state.stopping is not None and cell.get("cell_type") == "code":
                _note_stop(cell, state)
                return False
            # exit()/quit() raise nothing (the kernel stops itself); a tolerated SystemExit goes on
            if (self._reply or {}).get("status") != "error" and self._ended_notebook(cell, index):
                return False
            return True
        except CellExecutionError as ex:
            self.nb_man.cell_exception(cell, cell_index=index, exception=ex)
            if state.stopping is not None:
                _note_stop(cell, state)
            elif self._timed_out_cell is not None:
                detail = f"cell {self._timed_out_cell} exceeded --cell-timeout {self.timeout:g} s"
                state.stop("timeout", detail)
                _note_error(cell, "CellTimeoutError", detail)
            elif self._ended_notebook(cell, index):
                pass
            else:
                state.stop("cell-error", f"cell {state.current_source_index} raised {_ename(cell)}"
                           if probe_role(cell)[0] is None else f"the colab-ci start-up cell raised {_ename(cell)}")
            return False
        except CellTimeoutError as ex:   # the kernel did not even answer the interrupt
            self.nb_man.cell_exception(cell, cell_index=index, exception=ex)
            detail = (f"cell {state.current_source_index} exceeded --cell-timeout {self.timeout:g} s"
                      " and did not answer the interrupt")
            _note_error(cell, "CellTimeoutError", detail)
            state.stop("timeout", detail)
            return False
        except DeadKernelError:
            self.nb_man.cell_exception(cell, cell_index=index)
            state.kernel_dead = True
            if state.stopping is not None:
                _note_stop(cell, state)
            else:
                detail = f"kernel died{self._exit_signal()}{state.where()}"
                state.stop("kernel-died", detail)
                _note_error(cell, "DeadKernelError", detail)
            return False
        finally:
            state.cell_started = None
            self.nb_man.cell_complete(cell, cell_index=index)

    def _ended_notebook(self, cell: Any, index: int) -> bool:
        """True when this source cell ended the notebook (``harness.execution.early_stop``): with
        success (outcome ``stopped``, noted on the cell), or with ``exit(1)``, which raised nothing
        and is noted as the cell's error. A failing SystemExit is an ordinary cell error: False."""
        asked = early_exit(self._reply) if probe_role(cell)[0] is None else None
        if asked is None:
            return False
        state = self.run_state
        if asked.success:
            cell.metadata.setdefault(META_KEY, {})["stopped"] = asked.how
            state.stop("stopped", f"cell {state.current_source_index} ended the notebook ({asked.how})")
            return True
        if (self._reply or {}).get("status") == "error":
            return False
        self.nb_man.cell_exception(cell, cell_index=index)
        _note_error(cell, "SystemExit", f"{asked.code} ({asked.how}: a failing exit)")
        state.stop("cell-error", f"cell {state.current_source_index} raised SystemExit ({asked.how})")
        return True


def _ename(cell: Any) -> str:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename', 'an error')}"
    return "an error"


def _next_source(cells: Any, index: int) -> int | None:
    for cell in cells[index:]:
        phase, source_index = probe_role(cell)
        if phase is None and source_index is not None:
            return int(source_index)
    return None


class HarnessEngine(NBClientEngine):
    """papermill engine: ``HarnessExecutionManager`` lifecycle + ``HarnessNotebookClient``."""

    @classmethod
    def execute_notebook(cls, nb: Any, kernel_name: str, output_path: str | None = None,
                         progress_bar: bool = False, log_output: bool = False,
                         autosave_cell_every: int = 30, run_state: RunState | None = None,
                         **kwargs: Any) -> Any:
        if run_state is not None and run_state.output_path is not None:
            output_path = str(run_state.output_path)
        nb_man = HarnessExecutionManager(nb, output_path=output_path, log_output=log_output,
                                         autosave_cell_every=autosave_cell_every, run_state=run_state)
        if run_state is not None:
            run_state.nb_man = nb_man
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, run_state=run_state, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                 stdout_file: Any = None, stderr_file: Any = None, start_timeout: int = 60,
                                 execution_timeout: float | None = None, run_state: RunState | None = None,
                                 **kwargs: Any) -> Any:
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(
            safe_kwargs,
            timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log=logger,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
            interrupt_on_timeout=True,
        )
        return HarnessNotebookClient(nb_man, run_state=run_state, **final_kwargs).execute()


papermill_engines.register(ENGINE_NAME, HarnessEngine)

__all__ = ["ENGINE_NAME", "HarnessEngine", "HarnessExecutionManager", "HarnessNotebookClient",
           "ProgressEvent", "Progress", "RunState"]
