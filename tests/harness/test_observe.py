"""Executed notebook -> RunRecord parts, on hand-made executed notebooks (fast)."""

from __future__ import annotations

from typing import Any

import nbformat

from harness.core.contract import PROBE_MIME, TIER_MIME
from harness.execution.probes import instrument
from harness.observations.observe import observe, pip_lines


def _source() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cells = [("X = 1", ["parameters"]), ("import numpy", []), ("%pip install numpy==2.1.3", ["install"]),
             ("np.char", []), ("publish(result)", ["tier1"]), ("print('never')", [])]
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("# title"))
    return nb


def _pm(status: str, duration: float | None = None) -> dict[str, Any]:
    return {"status": status, "duration": duration, "start_time": None, "end_time": None, "exception": None}


def _probe(phase: str, **payload: Any) -> dict[str, Any]:
    data = {"schema_version": 2, "phase": phase, "execution_count": payload.pop("execution_count", None),
            "loaded_new": {}, "replaced": [], "tracked_files": 100, "checked_files": 10, "probe_ms": 1.5, **payload}
    if phase == "cell":
        data.setdefault("installed_changed", {})
    return nbformat.v4.new_output("display_data", data={PROBE_MIME: data, "text/plain": ""})


REPLACED_NUMPY = {"distribution": "numpy", "version_loaded": "2.0.2", "version_on_disk": "2.1.3", "modules": ["numpy"],
                  "module_count": 82, "module": "numpy._core._multiarray_umath",
                  "path": "/env/lib/python3.11/site-packages/numpy/_core/_multiarray_umath.so",
                  "identity_loaded": {"device": 1, "inode": 2, "size": 3, "mtime_ns": 4},
                  "identity_now": {"device": 1, "inode": 9, "size": 3, "mtime_ns": 5}, "loaded_at": None}


def _executed() -> nbformat.NotebookNode:
    """What an upgrade run leaves: probe outputs after every cell, pip lines, an error, a tier output."""
    nb = instrument(_source())
    # papermill's injected-parameters cell goes after the parameters cell
    injected = nbformat.v4.new_code_cell("X = 2")
    injected.metadata["tags"] = ["injected-parameters"]
    injected.metadata["papermill"] = _pm("completed", 0.1)
    injected.outputs = [_probe("cell", execution_count=3)]
    nb.cells.insert(3, injected)
    for cell in nb.cells:
        meta = cell.metadata.get("colab_ci", {})
        phase, index = meta.get("probe"), meta.get("source_index")
        if "injected-parameters" in cell.metadata.get("tags", []):
            continue
        cell.metadata["papermill"] = _pm("completed", 0.5)
        if phase == "startup":
            cell.outputs = [_probe("startup", installed={"numpy": "2.0.2", "tabulate": "0.8.10"},
                                   loaded_new={"numpy": "2.0.2"},
                                   environment={"python": "3.11.7", "numpy": "2.0.2", "torch": "absent"})]
        elif index in (1, 2):
            cell.execution_count = index + 1
            cell.outputs = [_probe("cell", execution_count=index + 1)]
        elif index == 3:
            cell.execution_count = 4
            cell.metadata["papermill"] = _pm("completed", 4.25)
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=(
                "Collecting numpy==2.1.3\n  Using cached numpy-2.1.3.whl\n"
                "Installing collected packages: numpy\n  Attempting uninstall: numpy\n"
                "    Found existing installation: numpy 2.0.2\n    Uninstalling numpy-2.0.2:\n"
                "      Successfully uninstalled numpy-2.0.2\n"
                "\x1b[31mERROR: pip's dependency resolver does not currently take into account all the "
                "packages that are installed.\x1b[0m\n"
                "scipy 1.13.1 requires numpy<2.1, but you have numpy 2.1.3 which is incompatible.\n"
                "Successfully installed numpy-2.1.3\n"
                "Note: you may need to restart the kernel to use updated packages.\n")),
                _probe("cell", execution_count=4, installed_changed={"numpy": ["2.0.2", "2.1.3"]},
                       replaced=[REPLACED_NUMPY])]
        elif index == 4:
            cell.execution_count = 5
            cell.metadata["papermill"] = _pm("failed", 0.2)
            cell.outputs = [nbformat.v4.new_output(
                "error", ename="ImportError", evalue="cannot import name '_center' from 'numpy._core.umath'",
                traceback=["\x1b[0;31m----------\x1b[0m", "\x1b[0;31mImportError\x1b[0m   Traceback",
                           "Cell \x1b[0;32mIn[5], line 1\x1b[0m\n----> 1 np.char"]), _probe("cell", execution_count=5)]
        elif index == 5:
            cell.metadata["papermill"] = _pm("pending")
            cell.outputs = [nbformat.v4.new_output("display_data", data={
                TIER_MIME: {"schema_version": 1, "tier": "tier1", "status": "pass", "tests": []},
                "text/plain": "tier1: PASS"})]
        elif index == 6:
            cell.metadata["papermill"] = _pm("pending")
    return nb


def test_cells_map_back_to_source_indices_with_status_duration_and_error() -> None:
    seen = observe(_executed())
    assert [c.index for c in seen.cells] == [0, 1, 2, 3, 4, 5, 6]
    assert [c.status for c in seen.cells] == ["ok", "ok", "ok", "ok", "error", "not-run", "not-run"]
    assert seen.cells[3].duration_s == 4.25 and seen.cells[3].tags == ["install"]
    err = seen.cells[4].error
    assert err is not None and err.ename == "ImportError" and "_center" in err.evalue
    assert err.traceback_head[-1] == "----> 1 np.char"
    assert not any("\x1b" in line for line in err.traceback_head)
    assert seen.cells[1].source_head == "X = 1"


def test_install_observation_and_replacement_from_the_probe_after_the_cell() -> None:
    seen = observe(_executed())
    (obs,) = seen.installs
    assert obs.cell_index == 3 and obs.cell_tag == "install" and obs.duration_s == 4.25
    assert obs.changed_pairs() == {"numpy": ("2.0.2", "2.1.3")} and obs.recognised == ["%pip"]
    assert obs.loaded == {"numpy": "2.0.2"}
    assert obs.pip_lines == [
        "Collecting numpy==2.1.3",
        "Attempting uninstall: numpy",
        "Found existing installation: numpy 2.0.2",
        "Uninstalling numpy-2.0.2:",
        "Successfully uninstalled numpy-2.0.2",
        "ERROR: pip's dependency resolver does not currently take into account all the packages that are installed.",
        "scipy 1.13.1 requires numpy<2.1, but you have numpy 2.1.3 which is incompatible.",
        "Successfully installed numpy-2.1.3",
    ]
    (replaced,) = seen.replaced
    assert (replaced.cell_index, replaced.distribution, replaced.version_loaded, replaced.version_on_disk) == \
        (3, "numpy", "2.0.2", "2.1.3")
    assert replaced.loaded_in_cell is None and replaced.evidence == "files" and replaced.module_count == 82
    assert seen.stats.cells_probed == 5 and seen.stats.missing == [] and seen.stats.errors == []


def test_a_cell_that_changed_distributions_is_an_install_even_when_no_rule_recognised_it() -> None:
    nb = _executed()
    cell = next(c for c in nb.cells if c.metadata.get("colab_ci", {}).get("source_index") == 2)
    cell.outputs = [_probe("cell", execution_count=3, installed_changed={"tabulate": ["0.8.10", "0.9.0"]})]
    installs = {o.cell_index: o for o in observe(nb).installs}
    assert installs[2].recognised == [] and installs[2].changed_pairs() == {"tabulate": ("0.8.10", "0.9.0")}


def test_a_cell_that_ran_without_a_probe_is_listed_and_a_failed_probe_is_an_error() -> None:
    nb = _executed()
    cells = {c.metadata.get("colab_ci", {}).get("source_index"): c for c in nb.cells}
    cells[2].outputs = []
    cells[4].outputs = [nbformat.v4.new_output("display_data", data={PROBE_MIME: {
        "schema_version": 2, "phase": "cell", "execution_count": 5, "error": "OSError: boom\ntraceback"}})]
    stats = observe(nb).stats
    assert stats.missing == [2]
    assert stats.errors == ["cell 4: the probe failed: OSError: boom"]


def test_tier_outputs_and_environment_come_from_mime_payloads_only() -> None:
    seen = observe(_executed())
    (tier,) = seen.tiers
    assert tier.cell_index == 5 and tier.cell_tag == "tier1" and tier.payload["tier"] == "tier1"
    assert seen.environment == {"python": "3.11.7", "numpy": "2.0.2", "torch": "absent"}


def test_the_cell_the_kernel_died_in_is_judged_from_the_environment_read_after_the_run() -> None:
    nb = _executed()
    cells = {c.metadata.get("colab_ci", {}).get("source_index"): c for c in nb.cells}
    cells[3].outputs = cells[3].outputs[:1]                 # pip's lines, then the kernel died: no probe
    cells[3].metadata["papermill"] = _pm("failed", 2.0)
    for index in (4, 5, 6):
        cells[index].metadata["papermill"] = _pm("pending")
        cells[index].outputs = []
    seen = observe(nb, final_installed={"numpy": "2.1.3", "tabulate": "0.8.10"})
    (obs,) = seen.installs
    assert obs.changed_pairs() == {"numpy": ("2.0.2", "2.1.3")}
    (replaced,) = seen.replaced
    assert replaced.evidence == "versions" and replaced.version_loaded == "2.0.2"
    assert seen.stats.missing == [3]


def test_noted_errors_without_outputs_and_injected_parameter_errors() -> None:
    nb = _executed()
    died = next(c for c in nb.cells if c.metadata.get("colab_ci", {}).get("source_index") == 2
                and "probe" not in c.metadata["colab_ci"])
    died.metadata["papermill"] = _pm("failed", 1.0)
    died.metadata["colab_ci"]["error"] = {"ename": "DeadKernelError", "evalue": "kernel died (SIGKILL) in cell 2"}
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    injected.outputs = [nbformat.v4.new_output("error", ename="NameError", evalue="name 'q' is not defined",
                                               traceback=["NameError: name 'q' is not defined"])]
    seen = observe(nb)
    assert seen.cells[2].status == "error" and seen.cells[2].error.ename == "DeadKernelError"
    assert seen.cells[1].status == "error" and seen.cells[1].error.ename == "NameError"  # the parameters cell


def test_pip_lines_ignore_everything_else() -> None:
    cell = {"outputs": [{"output_type": "stream", "name": "stdout",
                         "text": "Requirement already satisfied: numpy in ./lib\nhello\n"
                                 "Not uninstalling numpy at /usr/lib/python3/dist-packages, outside environment /tmp/x\n"}]}
    assert pip_lines(cell) == ["Not uninstalling numpy at /usr/lib/python3/dist-packages, outside environment /tmp/x"]
