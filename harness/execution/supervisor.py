"""How a run always ends: the main thread watches the run, the run happens in a worker thread.

papermill and nbclient block the thread that calls them, sometimes in places where a Python signal
handler does not run soon (a C call, a zmq poll, a kernel shutdown that waits for a kernel that
ignores SIGINT). So ``harness.execution.execute`` runs papermill in a worker thread and the main
thread calls ``supervise``, which only ever waits with a short timeout and therefore always gets
Ctrl-C and SIGTERM (turned into ``KeyboardInterrupt`` by the CLI) at once. It ends the run when

* the user interrupts (Ctrl-C, SIGTERM): outcome ``interrupted``;
* the run outlives ``--timeout``: outcome ``timeout``;
* a cell outlives ``--cell-timeout`` by ``CELL_TIMEOUT_GRACE_S`` (nbclient interrupts a cell at
  ``--cell-timeout``; this is for a kernel that ignores that interrupt): outcome ``timeout``.

Ending escalates, each step only if the previous did not end the worker:

1. the outcome is recorded in ``RunState`` (the engine reads it to name the cell's error), and the
   kernel's process group gets SIGINT: a cooperative kernel stops the cell, so its traceback shows
   where it was;
2. after ``grace`` seconds, SIGKILL to the kernel's process group (the kernel runs in its own
   session, so its children go too); nbclient notices the dead kernel within a second and unwinds;
3. after ``KILL_GRACE_S`` more, the worker is abandoned (``state.abandoned``): the caller saves the
   notebook as last seen and writes the reports anyway, and the CLI leaves with ``os._exit`` so
   that no thread stuck in zmq can hold the process (or print a traceback) on the way out.

A second Ctrl-C skips straight to step 2.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

POLL_S = 0.2
INTERRUPT_GRACE_S = 3.0      # Ctrl-C / SIGTERM: the user wants out
TIMEOUT_GRACE_S = 5.0        # --timeout: long enough for an interruptible cell to show where it was
KILL_GRACE_S = 10.0          # after SIGKILL: nbclient polls the kernel every second
CELL_TIMEOUT_GRACE_S = 10.0  # beyond --cell-timeout, for a kernel that ignores nbclient's interrupt


class Stoppable:
    """What ``supervise`` needs of the run (``harness.execution.engine.RunState`` is one)."""

    stopping: tuple[str, str] | None
    abandoned: bool
    kernel_process: subprocess.Popen[bytes] | None
    cell_started: float | None
    current_source_index: int | None

    def where(self) -> str: ...


def supervise(worker: threading.Thread, state: Stoppable, run_timeout: float | None,
              cell_timeout: float | None, log: Callable[[str], None],
              clock: Callable[[], float] = time.monotonic) -> None:
    """Wait for ``worker``; end it (see the module docstring) on Ctrl-C, SIGTERM or a timeout."""
    started = clock()
    deadline: float | None = None     # when the current step of a stop escalates
    step = 0                          # 0 running; 1 asked (SIGINT sent); 2 killed (SIGKILL sent)
    while worker.is_alive():
        try:
            worker.join(POLL_S)
            if not worker.is_alive():
                return
            now = clock()
            if step == 0:
                if run_timeout is not None and now - started > run_timeout:
                    _stop(state, "timeout", f"the run exceeded --timeout {run_timeout:g} s{state.where()}")
                    step, deadline = 1, now + TIMEOUT_GRACE_S
                    _signal_kernel(state, signal.SIGINT)
                elif (cell_timeout is not None and state.cell_started is not None
                      and now - state.cell_started > cell_timeout + CELL_TIMEOUT_GRACE_S):
                    _stop(state, "timeout", f"cell {state.current_source_index} exceeded --cell-timeout "
                                            f"{cell_timeout:g} s and did not answer the interrupt")
                    step, deadline = 1, now
            if step and deadline is not None and now >= deadline:
                if step == 1:
                    log("colab-ci: the kernel did not stop; killing its process group")
                    _signal_kernel(state, signal.SIGKILL)
                    step, deadline = 2, now + KILL_GRACE_S
                else:
                    log("colab-ci: the run did not unwind after the kernel was killed; leaving it behind")
                    state.abandoned = True
                    return
        except KeyboardInterrupt as exc:
            now = clock()
            if step == 0:
                _stop(state, "interrupted", f"interrupted{' by SIGTERM' if 'SIGTERM' in str(exc) else ''}"
                                            f"{state.where()}")
                _signal_kernel(state, signal.SIGINT)
                step, deadline = 1, now + INTERRUPT_GRACE_S
            elif step == 1:   # interrupted again: do not wait any longer
                _signal_kernel(state, signal.SIGKILL)
                step, deadline = 2, now + KILL_GRACE_S


def _stop(state: Stoppable, outcome: str, detail: str) -> None:
    if state.stopping is None:
        state.stopping = (outcome, detail)


def _signal_kernel(state: Stoppable, signum: int) -> None:
    """SIGINT/SIGKILL for the run's kernel: its process group, or for a kernel on a remote Jupyter
    server (a Colab runtime: ``state.remote_manager``) the REST API's interrupt and shutdown."""
    remote = getattr(state, "remote_manager", None)
    if remote is not None:
        threading.Thread(target=remote.interrupt_now if signum == signal.SIGINT else remote.shutdown_now,
                         name="colab-ci-remote-signal", daemon=True).start()   # an HTTP call: never block here
        return
    _signal_group(state.kernel_process, signum)


def _signal_group(process: subprocess.Popen[bytes] | None, signum: int) -> None:
    """Signal the kernel's process group, never a process group whose leader was reaped.

    The kernel is started in its own session (jupyter_client), so its pid is its process group's
    id. While the kernel is unreaped (running, or a zombie), that id cannot be reused; once it was
    reaped, the members left in its group are found in /proc and signalled one by one instead.
    """
    if process is None:
        return
    pid = process.pid
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        reaped = False
    except ChildProcessError:
        reaped = True
    if not reaped:
        try:
            os.killpg(pid, signum)
        except OSError:
            pass
        return
    for member in group_members(pid):
        try:
            os.kill(member, signum)
        except OSError:
            pass


def group_members(pgid: int) -> list[int]:
    """Processes whose process group is ``pgid`` (Linux /proc; [] elsewhere)."""
    members = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()   # after "pid (comm) ": state ppid pgrp session ...
        if len(fields) > 2 and fields[2] == str(pgid):
            members.append(int(entry.name))
    return members


def end_kernel_group(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL whatever is left of the kernel's process group (after a run, in every outcome)."""
    _signal_group(process, signal.SIGKILL)
