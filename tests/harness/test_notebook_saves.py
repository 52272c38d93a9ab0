"""The executed notebook on disk is always a whole notebook, and the run's final save is the last.

The engine saves from papermill's worker thread (after each cell, every 30 s during a long one); the
run saves last from the main thread, possibly while an abandoned worker is still saving, and the CLI
then leaves with ``os._exit``. A save that truncated the file before writing it could be cut short
there, leaving an empty executed.ipynb behind a report that says the run was interrupted (seen in CI).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import nbformat

from harness.execution.engine import HarnessExecutionManager
from harness.execution.kernelspec import KernelSpecInfo
from harness.execution.run_state import RunState
from harness.execution.execute import _save


def _manager(output: Path) -> tuple[HarnessExecutionManager, RunState]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"print({i})", outputs=[nbformat.v4.new_output(
        "stream", name="stdout", text="x" * 20000)]) for i in range(40)]   # ~1 MB: a write takes a while
    state = RunState(kernel_spec=KernelSpecInfo("k", output.parent, [], {}), total_source_cells=len(nb.cells))
    manager = HarnessExecutionManager(nb, output_path=str(output), run_state=state)
    state.nb_man = manager
    return manager, state


def test_a_reader_never_finds_half_a_notebook(tmp_path: Path) -> None:
    output = tmp_path / "executed.ipynb"
    manager, _state = _manager(output)
    manager.save()
    done, unreadable = threading.Event(), []

    def read() -> None:
        while not done.is_set():
            try:
                json.loads(output.read_text(encoding="utf-8"))
            except ValueError as exc:
                unreadable.append(str(exc))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(60):
            manager.save()
    finally:
        done.set()
        reader.join(timeout=30)
    assert unreadable == [] and [p.name for p in tmp_path.iterdir()] == ["executed.ipynb"]


def test_the_engine_never_saves_after_the_runs_final_save(tmp_path: Path) -> None:
    output = tmp_path / "executed.ipynb"
    manager, state = _manager(output)
    manager.save()
    _save(manager.nb, output, tmp_path / "source.ipynb", "interrupted", "interrupted in cell 1", None, {},
          None, lambda _line: None, state)
    final = output.read_text(encoding="utf-8")
    manager.nb.cells[0].outputs = []    # an abandoned worker goes on with the notebook...
    manager.save()                      # ...and saves it again
    assert output.read_text(encoding="utf-8") == final
    assert json.loads(final)["metadata"]["colab_ci"]["outcome"] == "interrupted"
