"""papermill's run of one notebook in a worker thread, for both engines (a local kernel, a Colab runtime).

``papermill.execute_notebook`` blocks until the last cell; the supervisor (harness.execution.supervisor)
must stay free to time it out, pass on Ctrl-C and stop it, so papermill runs in a daemon thread. A
thread stuck in zmq cannot be unwound: the run is then *abandoned* (``abandon``), and ``harness run``
ends its process with ``os._exit`` when ``abandoned_runs()`` says one is still alive, so that the
stuck thread neither holds the process nor prints after its reports.
"""

from __future__ import annotations

import threading
from typing import Any

import papermill
from papermill.exceptions import PapermillExecutionError

from harness.execution.run_state import RunState

_ABANDONED: list[threading.Thread] = []


class PapermillRun:
    """papermill.execute_notebook in a daemon thread; ``error`` is what it raised, if anything."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.thread: threading.Thread


def start_papermill(state: RunState, kwargs: dict[str, Any]) -> PapermillRun:
    """Start ``papermill.execute_notebook(**kwargs, run_state=state)`` in a daemon thread."""
    run = PapermillRun()

    def target() -> None:
        try:
            papermill.execute_notebook(**kwargs, run_state=state)
        except PapermillExecutionError:
            pass  # a cell raised: the state says whether execution stopped there
        except BaseException as exc:  # noqa: BLE001 - re-raised (or reported) by the main thread
            run.error = exc

    run.thread = threading.Thread(target=target, name="colab-ci-papermill", daemon=True)
    run.thread.start()
    return run


def abandon(run: PapermillRun) -> None:
    """The supervisor gave up on ``run``'s thread (stuck in zmq): remember it for ``abandoned_runs``."""
    _ABANDONED.append(run.thread)


def abandoned_runs() -> int:
    """How many runs' worker threads could not be unwound (the process should end with os._exit)."""
    return sum(1 for worker in _ABANDONED if worker.is_alive())
