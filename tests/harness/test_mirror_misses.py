"""A mirror miss is not the notebook's failure (harness/images/mirror.py, optional.py, misses.py).

Real uv resolutions, real mirror builds (the November 2025 profile: the profile's own mirror, 29
distributions, plus what each test adds; ~10 s each with uv's cache warm) and real kernels.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from harness.images.closure import Pin
from harness.images.mirror import mirror_closure
from harness.core.records import CellError, CellRecord, RunRecord
from harness.images.misses import mirror_miss, misses_file, missing_module, recorded_additions
from harness.images.optional import optional_imports
from harness.images.profiles import get_profile
from harness.images.shipped_metadata import image_import_names
from harness.source.needs import notebook_needs
from tests.harness.conftest import make_notebook, run_cli

REPO = Path(__file__).resolve().parents[2]
IMAGE = "2025-11-24-13d109b-cpu"
ABSENT_CAPTUM = "captum==0.0.999"       # a release that does not exist


def _template_copy(folder: Path, captum: str) -> Path:
    """The template copied out of the checkout, its captum pin replaced."""
    nb = nbformat.read(str(REPO / "notebook" / "template.ipynb"), as_version=4)
    changed = 0
    for cell in nb.cells:
        if "captum==0.9.0" in cell.source:
            cell.source = cell.source.replace("captum==0.9.0", captum)
            changed += 1
    assert changed == 1
    path = folder / "template.ipynb"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@pytest.fixture()
def caller_checkout(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COLAB_CI_CHECKOUT", str(REPO))
    return REPO


@pytest.mark.timeout(240)
def test_an_unresolvable_install_is_left_out_alone(tmp_path: Path, caller_checkout: Path):
    profile = get_profile(IMAGE)
    notebook = _template_copy(tmp_path / "elsewhere", ABSENT_CAPTUM)
    needs = notebook_needs(notebook, profile.image)
    # the copy reads the checkout's tiers library, as its kernel will (COLAB_CI_CHECKOUT)
    assert {"torch", "numpy", "pandas"} <= set(needs.import_distributions())
    assert ABSENT_CAPTUM in needs.installs and "optuna==4.5.0" in needs.installs
    held = mirror_closure(profile, needs, "notebook")
    names = {p.name for p in held.pins}
    assert {"torch", "numpy", "pandas", "matplotlib", "psutil"} <= names      # what it imports
    assert {"sqlalchemy", "alembic", "tqdm"} <= names          # optuna==4.5.0's requirements the image has
    left_out = [line for line in held.lines if line.startswith("install requirement ")]
    assert len(left_out) == 1 and left_out[0].startswith(f"install requirement {ABSENT_CAPTUM} cannot be resolved")


@pytest.mark.timeout(240)
def test_transformers_extras_bring_the_images_torch(tmp_path: Path):
    profile = get_profile(IMAGE)
    transformers = Pin("transformers", profile.image["transformers"], ["(root)"])
    found = optional_imports(profile, [transformers])
    assert not found.unread, found.unread
    assert "transformers[torch]" in found.named["torch"]
    assert all(name in profile.image for name in found.named)
    assert not any(name.startswith("nvidia-") for name in found.named)     # CUDA-only: never
    assert "pytest" not in found.named                                    # a development extra's


@pytest.mark.slow
@pytest.mark.timeout(900)     # the template's mirror (114 distributions) is built: 4-7 minutes on 2 loaded cores
def test_the_copied_template_with_an_absent_captum_fails_at_the_install(tmp_path: Path, caller_checkout: Path):
    """issue 16's must-show: no ModuleNotFoundError for torch; the failed install is what the report names."""
    notebook = _template_copy(tmp_path / "elsewhere", ABSENT_CAPTUM)
    out = tmp_path / "out"
    done = run_cli("run", str(notebook), "--image", IMAGE, "--mode", "local", "--cache-dir", str(tmp_path / "cache"),
                   "--out", str(out), "-p", "ENABLE_TIER3", "False", timeout=860)
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((out / "report.json").read_text())
    record = report["record"]
    errors = [c["error"] for c in record["cells"] if c.get("error")]
    assert not any(e["ename"] in ("ModuleNotFoundError", "ImportError") for e in errors), errors
    assert not report.get("attempts")                 # nothing was missing: no mirror miss either
    failing = [f for f in report["findings"] if f["severity"] in ("fail", "error")]
    assert failing and failing[0]["cell_tag"] == "tier2-install", failing
    assert ABSENT_CAPTUM in (out / "report.md").read_text()
    assert any(line.startswith(f"install requirement {ABSENT_CAPTUM} cannot be resolved") for line in record["fidelity"])


def _dynamic_import_notebook(path: Path, module_words: tuple[str, str]) -> Path:
    # the module's name is built at run time: no static reading sees it
    return make_notebook(path, [(f"import importlib\nname = {module_words[0]!r} + {module_words[1]!r}\n"
                                 "module = importlib.import_module(name)\nprint(name, 'imported')", [])])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_module_the_image_has_is_added_rerun_and_recorded(tmp_path: Path):
    notebook = _dynamic_import_notebook(tmp_path / "nb" / "dynamic.ipynb", ("tab", "ulate"))
    cache, out = tmp_path / "cache", tmp_path / "out"
    done = run_cli("run", str(notebook), "--image", IMAGE, "--mode", "local", "--cache-dir", str(cache),
                   "--out", str(out), timeout=560)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "adding tabulate 0.9.0 to the mirror" in done.stderr
    report = json.loads((out / "report.json").read_text())
    first, final = report["attempts"]
    assert first["verdict"] == "fail" and first["retried"] and first["folder"] == "attempt-1"
    assert first["mirror_miss"]["distribution"] == "tabulate" and first["mirror_miss"]["module"] == "tabulate"
    assert first["mirror_miss"]["error"] == "ModuleNotFoundError: No module named 'tabulate'"
    assert final["verdict"] == "pass"
    assert "mirror miss: ModuleNotFoundError: No module named 'tabulate'" in (out / "report.md").read_text()
    assert any("what earlier runs of the notebook missed (tabulate" in line for line in report["record"]["fidelity"])
    recorded = recorded_additions(misses_file(cache, IMAGE, notebook))
    assert [(a["distribution"], a["version"]) for a in recorded] == [("tabulate", "0.9.0")]
    # the next run of that notebook builds its mirror with it: nothing is missed any more
    shutil.rmtree(out)
    again = run_cli("run", str(notebook), "--image", IMAGE, "--mode", "local", "--cache-dir", str(cache),
                    "--out", str(out), timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "environment up to date, build skipped" in again.stderr
    assert not json.loads((out / "report.json").read_text()).get("attempts")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_module_the_image_does_not_have_is_not_retried(tmp_path: Path):
    notebook = _dynamic_import_notebook(tmp_path / "nb" / "absent.ipynb", ("colab_ci_", "absent_module"))
    cache, out = tmp_path / "cache", tmp_path / "out"
    done = run_cli("run", str(notebook), "--image", IMAGE, "--mode", "local", "--cache-dir", str(cache),
                   "--out", str(out), timeout=280)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no distribution of the image provides colab_ci_absent_module" in done.stderr
    assert "not retried" in done.stderr
    assert not json.loads((out / "report.json").read_text()).get("attempts")
    assert not misses_file(cache, IMAGE, notebook).exists()
    assert not os.path.exists(out / "attempt-1")


def _died_of(ename: str, evalue: str) -> RunRecord:
    return RunRecord(notebook="nb.ipynb", output_notebook="executed.ipynb", python="python", parameters={},
                     started_at="2026-12-08T00:00:00Z", duration_s=1.0, outcome="cell-error",
                     cells=[CellRecord(0, "code", [], "import x", "ok"),
                            CellRecord(1, "code", ["model"], "from sklearn import linear_model", "error",
                                       error=CellError(ename, evalue))])


def test_a_miss_is_read_from_the_cells_error_and_named_by_the_images_distribution():
    image, provided = get_profile(IMAGE).image, image_import_names(get_profile(IMAGE))   # sklearn: from its wheel
    miss = mirror_miss(_died_of("ModuleNotFoundError", "No module named 'sklearn.linear_model'"), image, {}, provided)
    assert miss is not None and (miss.module, miss.distribution) == ("sklearn.linear_model", "scikit-learn")
    assert miss.version == image["scikit-learn"] and (miss.cell_index, miss.cell_tag) == (1, "model")
    # the mirror has it: the module is missing for another reason, which a rerun would not change
    assert mirror_miss(_died_of("ModuleNotFoundError", "No module named 'sklearn'"), image,
                       {"scikit-learn": image["scikit-learn"]}, provided) is None
    # a name that cannot be imported from a module that is there is not a missing module
    assert missing_module(_died_of("ImportError", "cannot import name 'foo' from 'numpy'"), image) is None
    absent = missing_module(_died_of("ModuleNotFoundError", "No module named 'colab_ci_absent'"), image)
    assert absent is not None and not absent.addable and "not retried" in absent.describe()
