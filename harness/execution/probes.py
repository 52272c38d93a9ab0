"""Instrument the executed copy of a notebook (the source notebook is never changed).

``instrument(nb)`` returns a new notebook in which

* every source cell carries ``metadata.colab_ci.source_index`` (its index in the source notebook),
  so observations map back to source cells whatever papermill inserts (``injected-parameters``);
* a **start-up cell** comes first. It runs ``harness/execution/kernel_probe.py`` in the kernel as
  the module ``_colab_ci_probe``, which installs the load recorder, emulates Colab's kernel start-up
  by importing numpy, PIL, psutil and google.colab (each only if installed; one installed that fails
  to import is named in the snapshot's ``startup_import_errors``), publishes the first
  snapshot (phase ``startup``) and registers the probe on IPython's ``post_run_cell`` event, so
  **every** cell (tagged or not, recognised as an install or not, raising or not) is followed by a
  probe output of MIME type ``PROBE_MIME`` in its own outputs. See kernel_probe.py for the payload.

A start-up cell was chosen over the kernelspec's ``--IPKernelApp.exec_lines``: what it does is
visible in the executed notebook (an import that fails there is not lost in the kernel's log), it
works with whatever ipykernel version the target has, and the start-up imports and the first
snapshot cost one round trip together. The ``post_run_cell`` hook was chosen over a probe cell
after every cell: it costs no round trip, and it runs even after a cell that raised or was
interrupted (nbclient stops sending cells after an error).
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from harness.core.contract import META_KEY, PROBE_TAG, STARTUP_IMPORTS

KERNEL_PROBE_SOURCE = (Path(__file__).with_name("kernel_probe.py")).read_text(encoding="utf-8")

# The one way the probe reaches an interpreter (the kernel's start-up cell, the after-run inventory
# in the run environment): its source, embedded, run as the module ``_colab_ci_probe``. Embedded,
# not imported by path, so the executed notebook carries what ran in it and the run environment
# needs no access to the harness's files.
_LOADER = (
    "def _colab_ci_load_probe(source):\n"
    "    import sys, types\n"
    "    module = types.ModuleType('_colab_ci_probe')\n"
    "    exec(compile(source, '<colab-ci probe>', 'exec'), module.__dict__)\n"
    "    sys.modules['_colab_ci_probe'] = module\n"
    "    return module\n"
)


def startup_source(imports: tuple[str, ...] = STARTUP_IMPORTS) -> str:
    """Source of the start-up cell: the probe module, Colab's start-up imports, the first snapshot."""
    return (
        "# colab-ci start-up: what Colab's kernel imports at start-up, then the first probe.\n"
        + _LOADER +
        "def _colab_ci_startup(source, imports):\n"
        "    import importlib, sys\n"
        "    # the deferred-copy hook (harness.execution.environment) has done its job: leave no trace of it\n"
        "    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, 'colab_ci_deferred', False)]\n"
        "    importlib.invalidate_caches()\n"
        "    _colab_ci_load_probe(source).PROBE.start(imports)\n"
        f"_colab_ci_startup({KERNEL_PROBE_SOURCE!r}, {tuple(imports)!r})\n"
        "del _colab_ci_startup, _colab_ci_load_probe\n"
    )


def installed_source() -> str:
    """Source of a program that prints, as JSON, the distributions installed for its interpreter as
    the probe lists them (``{canonical name: version}``, first on ``sys.path`` wins)."""
    return (
        _LOADER +
        "import json\n"
        f"print(json.dumps(_colab_ci_load_probe({KERNEL_PROBE_SOURCE!r}).PROBE.refresh_installed()[0]))\n"
    )


def _startup_cell(imports: tuple[str, ...]) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(startup_source(imports))
    cell.metadata["tags"] = [PROBE_TAG]
    cell.metadata[META_KEY] = {"probe": "startup", "source_index": None}
    cell.metadata["jupyter"] = {"source_hidden": True}
    return cell


def instrument(nb: nbformat.NotebookNode, startup_imports: tuple[str, ...] = STARTUP_IMPORTS
               ) -> nbformat.NotebookNode:
    """A copy of ``nb`` with the start-up cell first and a source index on every cell."""
    out = copy.deepcopy(nb)
    for index, cell in enumerate(out.cells):
        cell.metadata.setdefault(META_KEY, {})
        cell.metadata[META_KEY]["source_index"] = index
    out.cells = [_startup_cell(startup_imports), *out.cells]
    return out
