"""Probe cells injected into the executed copy of a notebook (the source notebook is never changed).

``instrument(nb)`` returns a new notebook in which

* every source cell carries ``metadata.colab_ci.source_index`` (its index in the source notebook),
  so observations map back to source cells whatever papermill inserts (``injected-parameters``);
* a **start-up cell** comes first. It emulates Colab's kernel start-up by importing numpy, PIL,
  psutil and google.colab (each only if installed, silently skipped otherwise), installs the probe
  as the module ``_colab_ci_probe`` in ``sys.modules`` and publishes the first snapshot (phase
  ``startup``: the kernel's python/numpy/torch). A start-up cell was chosen over the kernelspec's
  ``--IPKernelApp.exec_lines``: what it does is visible in the executed notebook (an import that
  fails there is not lost in the kernel's log), it works with whatever ipykernel version the
  target has, and the start-up imports and first snapshot cost one round trip together;
* a probe cell goes before and after every **install cell**: a cell tagged ``install``, a tag
  ending in ``-install`` or ``restart-recovery``, or an untagged code cell whose source runs
  ``pip install`` (``%pip``/``!pip``/``-m pip``).

Probe cells are tagged ``colab-ci-probe`` and carry ``metadata.colab_ci = {"probe": phase,
"source_index": i}``. Each publishes one display output of MIME type ``PROBE_MIME``::

    {"schema_version": 1, "phase": "startup"|"before"|"after", "source_index": int|null,
     "installed": {canonical name: version on disk},
     "imported": {canonical name: {"version_in_memory": str, "modules": [top-level modules]}},
     "environment": {"python", "numpy", "torch"}, "executable": sys.executable,   # startup only
     "probe_ms": float}

"version in memory" is the version on disk when the probe first saw the distribution's modules in
``sys.modules`` (kept in the probe module across probes of one kernel).

Probes are on the hot path, so the probe reads no metadata files for the installed snapshot: it
lists ``*.dist-info`` folders on ``sys.path`` (name and version are in the folder name) and maps
imported top-level modules to distributions by name first, reading ``top_level.txt``/``RECORD``
only for modules whose name differs from their distribution's (``PIL`` -> pillow), once per
``.dist-info`` folder per kernel. A probe costs ~1 ms after the first.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import nbformat

PROBE_MIME = "application/vnd.colab-ci.probe+json"
PROBE_TAG = "colab-ci-probe"
PROBE_SCHEMA_VERSION = 1
META_KEY = "colab_ci"
STARTUP_IMPORTS = ("numpy", "PIL", "psutil", "google.colab")

_PIP_SOURCE = re.compile(r"^\s*(?:[%!]\s*pip3?\s+install\b|.*-m\s+pip\s+install\b)", re.M)

# The probe as it runs in the kernel: only the standard library, nothing imported at module level
# that the notebook did not already have (os, sys, re and time are loaded by every IPython kernel).
PROBE_MODULE_SOURCE = r'''
import os, re, sys, time

SCHEMA_VERSION = %(schema)d
MIME = %(mime)r
_SEEN = {}     # canonical distribution -> version on disk at first sight of its modules
_OWNER = {}    # top-level module -> canonical distribution, or None (stdlib, user code, unowned)
_TOPS = {}     # .dist-info / .egg-info path -> frozenset of top-level names it installs
_NORM = re.compile(r"[-_.]+")


def canon(name):
    return _NORM.sub("-", name).lower()


def _meta_version(path):
    for fname in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(path, fname), encoding="utf-8", errors="replace") as f:
                name = version = None
                for line in f:
                    if line.startswith("Name:"):
                        name = line[5:].strip()
                    elif line.startswith("Version:"):
                        version = line[8:].strip()
                    elif not line.strip():
                        break
                return name, version
        except OSError:
            continue
    return None, None


def installed():
    """canonical name -> version, first on sys.path wins; plus name -> metadata folder, site dirs."""
    found, where, sites = {}, {}, []
    for entry in sys.path:
        path = entry or os.getcwd()
        try:
            names = os.listdir(path)
        except OSError:
            continue
        has = False
        for n in names:
            if n.endswith(".dist-info"):
                stem = n[:-10]
                name, _, version = stem.rpartition("-")
            elif n.endswith(".egg-info"):
                parts = n[:-9].split("-")
                name, version = parts[0], (parts[1] if len(parts) > 1 else "")
            else:
                continue
            has = True
            full = os.path.join(path, n)
            if not name or not version:
                name, version = _meta_version(full)
                if not name:
                    continue
            c = canon(name)
            if c not in found:
                found[c] = version
                where[c] = full
        if has:
            sites.append(os.path.join(path, ""))
    return found, where, sites


def _tops(meta):
    tops = _TOPS.get(meta)
    if tops is None:
        names = set()
        try:
            with open(os.path.join(meta, "top_level.txt"), encoding="utf-8") as f:
                names.update(line.strip() for line in f if line.strip())
        except OSError:
            try:
                with open(os.path.join(meta, "RECORD"), encoding="utf-8", errors="replace") as f:
                    for line in f:
                        first = line.split(",", 1)[0].split("/", 1)[0]
                        if first.endswith(".py"):
                            first = first[:-3]
                        elif ".cpython-" in first or first.endswith((".so", ".pyd")):
                            first = first.split(".", 1)[0]
                        if first and not first.startswith(".") and not first.endswith(
                                (".dist-info", ".data", ".pth")) and first != "__pycache__":
                            names.add(first)
            except OSError:
                pass
        tops = _TOPS[meta] = frozenset(names)
    return tops


def _module_path(mod):
    f = getattr(mod, "__file__", None)
    if isinstance(f, str):
        return f
    try:
        for p in getattr(mod, "__path__", None) or ():
            return p
    except Exception:
        return None
    return None


def imported(found, where, sites):
    tops = {}
    for name in list(sys.modules):
        top = name.partition(".")[0]
        if top not in tops:
            tops[top] = None
    unknown = [t for t in tops if t not in _OWNER]
    if unknown:
        prefixes = tuple(sites)
        rest = []
        for t in unknown:
            p = _module_path(sys.modules.get(t))
            if not p or not prefixes or not p.startswith(prefixes):
                _OWNER[t] = None
                continue
            c = canon(t)
            if c in found:
                _OWNER[t] = c
            else:
                rest.append(t)
        if rest:
            for c, meta in where.items():
                names = _tops(meta)
                for t in rest:
                    if t in names and t not in _OWNER:
                        _OWNER[t] = c
            for t in rest:
                _OWNER.setdefault(t, None)
    out = {}
    for t in tops:
        c = _OWNER.get(t)
        if c is None:
            continue
        if c not in _SEEN:
            if c not in found:
                continue
            _SEEN[c] = found[c]
        entry = out.setdefault(c, {"version_in_memory": _SEEN[c], "modules": []})
        entry["modules"].append(t)
    for entry in out.values():
        entry["modules"].sort()
    return out


def snapshot(phase, source_index=None):
    start = time.perf_counter()
    found, where, sites = installed()
    payload = {"schema_version": SCHEMA_VERSION, "phase": phase, "source_index": source_index,
               "installed": found, "imported": imported(found, where, sites)}
    if phase == "startup":
        import platform
        payload["environment"] = {"python": platform.python_version(),
                                  "numpy": found.get("numpy", "absent"),
                                  "torch": found.get("torch", "absent")}
        payload["executable"] = sys.executable
    payload["probe_ms"] = round((time.perf_counter() - start) * 1000, 2)
    return payload


def publish(payload):
    from IPython.display import display
    where = "start-up" if payload["source_index"] is None else (
        "%%s cell %%s" %% (payload["phase"], payload["source_index"]))
    text = "colab-ci probe (%%s): %%d distributions installed, %%d imported, %%.1f ms" %% (
        where, len(payload["installed"]), len(payload["imported"]), payload["probe_ms"])
    display({MIME: payload, "text/plain": text}, raw=True)


def probe(phase, source_index=None):
    publish(snapshot(phase, source_index))


def startup(modules):
    import importlib
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            pass
    probe("startup")
''' % {"schema": PROBE_SCHEMA_VERSION, "mime": PROBE_MIME}


def startup_source(imports: tuple[str, ...] = STARTUP_IMPORTS) -> str:
    """Source of the start-up cell: Colab's start-up imports, the probe module, the first snapshot."""
    return (
        "# colab-ci start-up: what Colab's kernel imports at start-up, then the first probe.\n"
        "def _colab_ci_startup(source, imports):\n"
        "    import importlib, sys, types\n"
        "    # the deferred-copy hook (harness.execution.environment) has done its job: leave no trace of it\n"
        "    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, 'colab_ci_deferred', False)]\n"
        "    importlib.invalidate_caches()\n"
        "    module = types.ModuleType('_colab_ci_probe')\n"
        "    exec(compile(source, '<colab-ci probe>', 'exec'), module.__dict__)\n"
        "    sys.modules['_colab_ci_probe'] = module\n"
        "    module.startup(imports)\n"
        f"_colab_ci_startup({PROBE_MODULE_SOURCE!r}, {tuple(imports)!r})\n"
        "del _colab_ci_startup\n"
    )


def probe_source(phase: str, source_index: int) -> str:
    return f"__import__('sys').modules['_colab_ci_probe'].probe({phase!r}, {source_index})\n"


def cell_tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def is_install_cell(cell: dict[str, Any]) -> bool:
    """Tagged ``install``/``*-install``/``restart-recovery``, or an untagged cell running pip install."""
    if cell.get("cell_type") != "code":
        return False
    tags = cell_tags(cell)
    if any(t == "install" or t.endswith("-install") or t == "restart-recovery" for t in tags):
        return True
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(source)
    return bool(_PIP_SOURCE.search(source))


def _probe_cell(phase: str, source_index: int | None, source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [PROBE_TAG]
    cell.metadata[META_KEY] = {"probe": phase, "source_index": source_index}
    cell.metadata["jupyter"] = {"source_hidden": True}
    return cell


def instrument(nb: nbformat.NotebookNode, startup_imports: tuple[str, ...] = STARTUP_IMPORTS
               ) -> nbformat.NotebookNode:
    """A copy of ``nb`` with the start-up cell, source indices and probes around install cells."""
    out = copy.deepcopy(nb)
    cells = [_probe_cell("startup", None, startup_source(startup_imports))]
    for index, cell in enumerate(out.cells):
        cell.metadata.setdefault(META_KEY, {})
        cell.metadata[META_KEY]["source_index"] = index
        install = is_install_cell(cell)
        if install:
            cell.metadata[META_KEY]["install"] = True
            cells.append(_probe_cell("before", index, probe_source("before", index)))
        cells.append(cell)
        if install:
            cells.append(_probe_cell("after", index, probe_source("after", index)))
    out.cells = cells
    return out


def probe_role(cell: dict[str, Any]) -> tuple[str | None, int | None]:
    """(phase, source index) of a probe cell, (None, source index) of a source cell, else (None, None)."""
    meta = cell.get("metadata", {}).get(META_KEY) or {}
    if PROBE_TAG in cell_tags(cell):
        return meta.get("probe"), meta.get("source_index")
    return None, meta.get("source_index")
