"""What one run shares between ``harness.execution.execute`` (with its supervisor,
``harness.execution.supervisor``, in the main thread) and the engine (``harness.execution.engine``,
in a worker thread): the progress callback, the kernelspec, how execution stopped, the kernel's
process for the supervisor.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from harness.execution.kernelspec import KernelSpecInfo


@dataclass
class ProgressEvent:
    """One line of progress: a source cell started or finished."""

    kind: Literal["start", "complete"]
    index: int                   # index in the source notebook
    total: int                   # number of cells in the source notebook
    tag: str
    status: str = "running"      # "running" | "ok" | "error"
    elapsed_s: float = 0.0


Progress = Callable[[ProgressEvent], None]


@dataclass
class RunState:
    """Shared by ``harness.execution.execute`` (and its supervisor, in the main thread) and the
    engine (in the worker thread) for one run."""

    kernel_spec: KernelSpecInfo
    total_source_cells: int
    progress: Progress | None = None
    ready: Callable[[], None] | None = None   # called before the first cell (the copy must be complete)
    cell_timeout: float | None = None
    kernel_stdio: Any = None                  # file the kernel's stdout/stderr go to (never the harness's)
    kernel_env: dict[str, str] | None = None  # the kernel's environment (the kernelspec's env is added)
    kernel_cwd: Path | None = None            # the kernel's working directory (never the harness's: see below)
    output_path: Path | None = None           # where the engine saves the executed notebook (else papermill's path)
    # how execution stopped (None: every cell ran), as the engine saw it
    outcome: str | None = None
    outcome_detail: str = ""
    # set by the supervisor (harness.execution.supervisor) before it interrupts or kills the kernel
    stopping: tuple[str, str] | None = None   # (outcome, detail): "interrupted" | "timeout"
    abandoned: bool = False
    kernel_process: Any = None                # the kernel's subprocess.Popen
    kernel_started: bool = False
    kernel_dead: bool = False
    current_source_index: int | None = None
    next_source_index: int | None = 0         # the source cell that runs next (before the first: 0)
    cell_started: float | None = None         # time.monotonic() when the running cell started
    all_cells_ran: bool = False
    nb_man: Any = None
    # a kernel on a remote Jupyter server (harness.execution.colab_engine): where, its manager (which the
    # supervisor interrupts and shuts down instead of signalling a process), the files.download outputs
    remote_server: Any = None
    remote_manager: Any = None
    downloads: dict[str, bytes] | None = None
    runtime_info: dict[str, Any] | None = None
    # The executed notebook is written by the engine (worker thread) and, last, by the run itself
    # (main thread), possibly while an abandoned worker still saves: one writer at a time, and none
    # after the run's final save.
    save_lock: threading.Lock = field(default_factory=threading.Lock)
    final_saved: bool = False

    def stop(self, outcome: str, detail: str) -> None:
        if self.outcome is None:
            self.outcome, self.outcome_detail = outcome, detail

    def where(self) -> str:
        if self.cell_started is not None and self.current_source_index is not None:
            return f" in cell {self.current_source_index}"
        return "" if self.next_source_index is None else f" before cell {self.next_source_index}"

    def final_outcome(self) -> tuple[str, str]:
        """How the run ended: the supervisor's reason wins, unless every cell had already run."""
        if self.stopping is not None and not self.all_cells_ran:
            return self.stopping
        if self.outcome is not None:
            return self.outcome, self.outcome_detail
        return "completed", ""
