"""Probe injection and the probe's snapshot, without a kernel (fast)."""

from __future__ import annotations

import copy
import importlib.metadata
import json
import subprocess
import sys
import time
import types

import nbformat

from harness.execution.probes import (
    PROBE_MIME,
    PROBE_MODULE_SOURCE,
    PROBE_TAG,
    instrument,
    is_install_cell,
    probe_role,
    startup_source,
)


def _nb(*cells: tuple[str, list[str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    return nb


def _probe_module() -> types.ModuleType:
    module = types.ModuleType("_colab_ci_probe_test")
    exec(compile(PROBE_MODULE_SOURCE, "<probe>", "exec"), module.__dict__)
    return module


def test_install_cells_are_tagged_or_run_pip() -> None:
    cases = {
        ("x = 1", ("install",)): True,
        ("x = 1", ("tier2-install",)): True,
        ("x = 1", ("restart-recovery",)): True,
        ("x = 1", ("installer",)): False,
        ("!pip install -q numpy", ()): True,
        ("%pip install numpy==1.26.4", ()): True,
        ("import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'pip', 'install', 'x'])", ()): False,
        ("!python -m pip install x", ()): True,
        ("print('pip install is how you add packages')", ()): False,
    }
    for (source, tags), expected in cases.items():
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = list(tags)
        assert is_install_cell(cell) is expected, (source, tags)
    assert not is_install_cell(nbformat.v4.new_markdown_cell("!pip install x"))


def test_instrument_adds_startup_and_probes_around_install_cells_only_in_the_copy() -> None:
    source = _nb(("X = 1", ["parameters"]), ("%pip install a", ["install"]), ("print(X)", []),
                 ("!pip install b", []))
    pristine = copy.deepcopy(source)
    out = instrument(source)
    assert source == pristine  # the source notebook object is not modified
    roles = [probe_role(c) for c in out.cells]
    assert roles == [("startup", None), (None, 0), ("before", 1), (None, 1), ("after", 1), (None, 2),
                     ("before", 3), (None, 3), ("after", 3)]
    probes = [c for c in out.cells if PROBE_TAG in c.metadata.get("tags", [])]
    assert len(probes) == 5
    assert all(c.metadata["colab_ci"]["probe"] in ("startup", "before", "after") for c in probes)
    nbformat.validate(out)


def test_snapshot_maps_imported_modules_to_distributions_like_importlib() -> None:
    import numpy  # noqa: F401  - imported so the probe sees it
    import PIL.Image  # noqa: F401  - module name differs from its distribution (pillow)

    probe = _probe_module()
    payload = probe.snapshot("before", 3)
    assert payload["phase"] == "before" and payload["source_index"] == 3
    assert payload["installed"]["numpy"] == importlib.metadata.version("numpy")
    assert payload["installed"]["pillow"] == importlib.metadata.version("pillow")
    assert payload["imported"]["numpy"] == {"version_in_memory": importlib.metadata.version("numpy"),
                                            "modules": ["numpy"]}
    assert payload["imported"]["pillow"]["modules"] == ["PIL"]
    # Every mapping agrees with importlib.metadata.packages_distributions().
    reference = importlib.metadata.packages_distributions()
    for dist, entry in payload["imported"].items():
        for module in entry["modules"]:
            assert dist in {probe.canon(d) for d in reference.get(module, [])}, (module, dist)
    json.dumps(payload)  # JSON-safe, as it must be for a display output


def test_version_in_memory_is_the_version_at_first_sight() -> None:
    probe = _probe_module()
    probe._SEEN["numpy"] = "1.0.0"  # as if the kernel first saw numpy 1.0.0
    import numpy  # noqa: F401

    payload = probe.snapshot("after", 1)
    assert payload["imported"]["numpy"]["version_in_memory"] == "1.0.0"
    assert payload["installed"]["numpy"] != "1.0.0"


def test_probe_is_fast_after_the_first_snapshot() -> None:
    import numpy  # noqa: F401

    probe = _probe_module()
    probe.snapshot("startup")
    start = time.perf_counter()
    for _ in range(5):
        probe.snapshot("before", 1)
    per_probe_ms = (time.perf_counter() - start) * 1000 / 5
    assert per_probe_ms < 50, f"a probe took {per_probe_ms:.1f} ms"


def test_startup_source_publishes_the_probe_payload() -> None:
    """The start-up cell's source runs in a plain interpreter given a stand-in display."""
    code = (
        "import sys, types, json\n"
        "ipy = types.ModuleType('IPython'); disp = types.ModuleType('IPython.display')\n"
        "shown = []\n"
        "disp.display = lambda obj, raw=False: shown.append(obj)\n"
        "ipy.display = disp; sys.modules['IPython'] = ipy; sys.modules['IPython.display'] = disp\n"
        + startup_source(("numpy", "not_a_module_colab_ci")) +
        f"payload = shown[0][{PROBE_MIME!r}]\n"
        "assert '_colab_ci_startup' not in globals()\n"
        "print(json.dumps(payload))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    assert payload["phase"] == "startup"
    assert "numpy" in payload["imported"]  # imported at start-up, as Colab's kernel does
    assert payload["environment"]["numpy"] == importlib.metadata.version("numpy")
    assert payload["environment"]["python"] == ".".join(map(str, sys.version_info[:3]))
