"""The instrumented copy and the kernel-side probe, without a kernel (fast).

The probe (harness/execution/kernel_probe.py) is exercised on a real site directory made in
tmp_path, with real imports and real file replacements done the way pip does them (remove the old
files, write new ones), in this interpreter; the end-to-end tests with real kernels and real pip
are in test_execute.py.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Iterator

import nbformat
import pytest

from harness.core.contract import PROBE_MIME, PROBE_TAG, probe_role
from harness.execution.probes import KERNEL_PROBE_SOURCE, instrument, startup_source


def _nb(*cells: tuple[str, list[str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    return nb


def test_instrument_adds_only_the_startup_cell_and_source_indices_in_the_copy() -> None:
    source = _nb(("X = 1", ["parameters"]), ("%pip install a", ["install"]), ("print(X)", []), ("!pip install b", []))
    pristine = copy.deepcopy(source)
    out = instrument(source)
    assert source == pristine  # the source notebook object is not modified
    assert [probe_role(c) for c in out.cells] == [("startup", None), (None, 0), (None, 1), (None, 2), (None, 3)]
    assert out.cells[0].metadata["tags"] == [PROBE_TAG]
    nbformat.validate(out)


# --- the probe on a real site directory ------------------------------------------------------------

class Site:
    """A folder on sys.path with distributions installed the way pip lays them out."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def install(self, name: str, version: str, files: dict[str, str]) -> None:
        meta = self.root / f"{name}-{version}.dist-info"
        meta.mkdir()
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
        (meta / "top_level.txt").write_text(name + "\n")
        for rel, text in files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def uninstall(self, name: str, version: str, files: dict[str, str]) -> None:
        """As pip does: the files are removed (their inodes are gone), not rewritten in place."""
        for rel in files:
            (self.root / rel).unlink()
        meta = self.root / f"{name}-{version}.dist-info"
        for path in meta.iterdir():
            path.unlink()
        meta.rmdir()


@pytest.fixture()
def probe(tmp_path: Path) -> Iterator[tuple[types.ModuleType, Site]]:
    module = types.ModuleType("_colab_ci_probe_under_test")
    exec(compile(KERNEL_PROBE_SOURCE, "<probe>", "exec"), module.__dict__)
    site = Site(tmp_path / "site-packages")
    site.root.mkdir()
    sys.path.insert(0, str(site.root))
    module.PROBE.refresh_installed()
    sys.meta_path.insert(0, module.PROBE.recorder)
    loaded_before = set(sys.modules)
    try:
        yield module, site
    finally:
        sys.meta_path.remove(module.PROBE.recorder)
        sys.path.remove(str(site.root))
        for name in set(sys.modules) - loaded_before:
            del sys.modules[name]


V1 = {"fakepkg/__init__.py": "VERSION = 1\n", "fakepkg/core.py": "X = 1\n"}
V2 = {"fakepkg/__init__.py": "VERSION = 2\n", "fakepkg/core.py": "X = 22\n"}


def test_a_loaded_module_replaced_by_another_version_is_reported_once(probe) -> None:
    module, site = probe
    site.install("fakepkg", "1.0", V1)
    startup = module.PROBE.snapshot("startup", None)
    assert startup["installed"]["fakepkg"] == "1.0"
    import fakepkg.core  # noqa: F401 - loaded "in cell 1"

    first = module.PROBE.snapshot("cell", 1)
    assert first["loaded_new"] == {"fakepkg": "1.0"} and first["replaced"] == []
    site.uninstall("fakepkg", "1.0", V1)
    site.install("fakepkg", "2.0", V2)
    second = module.PROBE.snapshot("cell", 2)
    assert second["installed_changed"] == {"fakepkg": ["1.0", "2.0"]}
    (entry,) = second["replaced"]
    assert (entry["distribution"], entry["version_loaded"], entry["version_on_disk"]) == ("fakepkg", "1.0", "2.0")
    assert entry["modules"] == ["fakepkg"] and entry["module_count"] == 2 and entry["loaded_at"] == 1
    assert entry["identity_now"] is not None and entry["identity_now"] != entry["identity_loaded"]
    assert module.PROBE.snapshot("cell", 3)["replaced"] == []   # reported once, by the cell that did it
    json.dumps(second)   # it is published as a display output


def test_a_module_imported_and_replaced_in_the_same_cell_is_caught(probe) -> None:
    """The identity is taken when the module loads, so a probe after the cell still sees the old one."""
    module, site = probe
    site.install("fakepkg", "1.0", V1)
    module.PROBE.snapshot("startup", None)
    import fakepkg  # noqa: F401 - loaded, then replaced, within one cell

    site.uninstall("fakepkg", "1.0", V1)
    site.install("fakepkg", "2.0", V2)
    payload = module.PROBE.snapshot("cell", 1)
    (entry,) = payload["replaced"]
    assert (entry["version_loaded"], entry["version_on_disk"], entry["loaded_at"]) == ("1.0", "2.0", 1)


def test_a_same_version_reinstall_is_reported_with_equal_versions(probe) -> None:
    module, site = probe
    site.install("fakepkg", "1.0", V1)
    module.PROBE.snapshot("startup", None)
    import fakepkg  # noqa: F401

    module.PROBE.snapshot("cell", 1)
    site.uninstall("fakepkg", "1.0", V1)
    site.install("fakepkg", "1.0", V1)   # --force-reinstall: same version, new files
    (entry,) = module.PROBE.snapshot("cell", 2)["replaced"]
    assert entry["version_loaded"] == entry["version_on_disk"] == "1.0"


def test_an_installed_but_never_loaded_distribution_changes_without_a_replacement(probe) -> None:
    module, site = probe
    site.install("fakepkg", "1.0", V1)
    module.PROBE.snapshot("startup", None)
    site.uninstall("fakepkg", "1.0", V1)
    site.install("fakepkg", "2.0", V2)
    payload = module.PROBE.snapshot("cell", 1)
    assert payload["installed_changed"] == {"fakepkg": ["1.0", "2.0"]} and payload["replaced"] == []


def test_an_extension_module_rewritten_in_place_is_caught_a_python_file_is_documented_as_not(probe) -> None:
    """A folder whose entries did not change is skipped except for its extension modules (the
    probe's cost per cell); pip never rewrites in place, so only hand edits go unnoticed."""
    module, site = probe
    site.install("fakepkg", "1.0", {**V1, "fakepkg/_speedups.so": "not really a shared object"})
    module.PROBE.snapshot("startup", None)
    import fakepkg.core  # noqa: F401

    module.PROBE.snapshot("cell", 1)
    ext = site.root / "fakepkg" / "_speedups.so"
    # not a real shared object, so it cannot be imported: tracked as the recorder would have
    module.PROBE.track(str(ext), [module.identity(str(ext)), "fakepkg._speedups", "fakepkg", "1.0", 1])
    stat = os.stat(ext)
    with open(site.root / "fakepkg" / "core.py", "a") as handle:
        handle.write("# edited in place\n")
    with open(ext, "a") as handle:
        handle.write("!")
    os.utime(ext, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    (entry,) = module.PROBE.snapshot("cell", 2)["replaced"]
    assert entry["module"] == "fakepkg._speedups" and entry["module_count"] == 1


def test_the_startup_source_installs_the_probe_and_registers_it_after_every_cell() -> None:
    """The start-up cell's source runs in a plain interpreter given a stand-in IPython."""
    code = (
        "import builtins, sys, types, json\n"
        "ipy = types.ModuleType('IPython'); disp = types.ModuleType('IPython.display')\n"
        "shown, hooks = [], []\n"
        "disp.display = lambda obj, raw=False: shown.append(obj)\n"
        "ipy.display = disp; sys.modules['IPython'] = ipy; sys.modules['IPython.display'] = disp\n"
        "events = types.SimpleNamespace(register=lambda name, fn: hooks.append((name, fn)))\n"
        "builtins.get_ipython = lambda: types.SimpleNamespace(events=events)\n"
        + startup_source(("numpy", "not_a_module_colab_ci")) +
        "assert '_colab_ci_startup' not in globals()\n"
        "[(name, hook)] = hooks\n"
        "hook(types.SimpleNamespace(execution_count=2))   # the start-up cell's own end: skipped\n"
        "hook(types.SimpleNamespace(execution_count=3))\n"
        f"print(json.dumps([name, [s[{PROBE_MIME!r}] for s in shown]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    name, payloads = json.loads(out.stdout.strip().splitlines()[-1])
    assert name == "post_run_cell"
    assert [p["phase"] for p in payloads] == ["startup", "cell"] and payloads[1]["execution_count"] == 3
    startup = payloads[0]
    assert "numpy" in startup["loaded_new"]  # imported at start-up, as Colab's kernel does
    assert startup["environment"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert startup["tracked_files"] > 0


def test_folders_vendored_inside_a_package_are_not_installations(probe) -> None:
    """setuptools puts setuptools/_vendor on sys.path; the dist-info folders there are bundled copies."""
    module, site = probe
    site.install("vendorer", "1.0", {"vendorer/__init__.py": ""})
    module.PROBE.snapshot("startup", None)
    vendored = site.root / "vendorer" / "_vendor"
    (vendored / "zipp-3.23.0.dist-info").mkdir(parents=True)
    sys.path.append(str(vendored))
    try:
        assert module.PROBE.snapshot("cell", 1)["installed_changed"] == {}
    finally:
        sys.path.remove(str(vendored))


def test_the_installed_listing_runs_the_probe_through_the_same_loader() -> None:
    """The after-run listing of installed distributions (a ``python -c`` in the run environment)
    loads the probe as the start-up cell does, and leaves only the listing on stdout."""
    from importlib.metadata import version

    from harness.execution.probes import installed_source

    code = installed_source() + "import sys\nassert '_colab_ci_probe' in sys.modules\n"
    out = subprocess.run([sys.executable, "-B", "-c", code], capture_output=True, text=True, check=True, timeout=60)
    installed = json.loads(out.stdout.strip().splitlines()[-1])
    assert installed["pytest"] == version("pytest") and installed["nbformat"] == version("nbformat")
    assert "def _colab_ci_load_probe(source):" in installed_source()
    assert "def _colab_ci_load_probe(source):" in startup_source()
