"""One notion of "loaded" (issue 14, item 3): at each install, what the kernel imported at start-up and
what the notebook imported before it (earlier cells, earlier lines of its cell), closed over what those
distributions require. Replacing a loaded distribution corrupts; replacing one imported only later is a
replacement naming both versions.

The first tests are pure (``harness.images.loaded``, ``harness.source.needs``). The preflight tests
resolve with real pip and uv against a venv holding tiny metadata-only wheels (``tiny_wheels``: no
index, no network): tabulate 0.8.10, and ``colabci-app`` 1.0 which requires ``colabci-base``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.images.build import BuiltEnv
from harness.images.closure import Pin
from harness.images.loaded import LoadOrder, Root, dependency_paths, marker_environment
from harness.source.needs import ImportSite, notebook_needs
from harness.images.profiles import Profile
from harness.source.installs import find_installs
from harness.preflight.evaluate import preflight_image
from harness.preflight.model import exit_code
from harness.preflight.render import render_text
from tests.harness.alert_runs import offline_index
from tests.harness.test_notebook_needs import notebook
from tests.harness.tiny_wheels import IMPORTED, IMPORTED_VERSION, NEWER, tiny_index, tiny_wheel

LINUX_311 = marker_environment("3.11.7")


# ------------------------------------------------------------------------------------ pure

def test_the_closure_applies_markers_and_follows_only_the_extras_asked_for():
    requires = {
        "app": ["base>=1", "winonly; sys_platform == 'win32'", "old; python_version < '3.9'",
                "plotting; extra == 'plot'", "store[http]"],
        "base": [], "winonly": [], "old": [], "plotting": [],
        "store": ["aiohttp; extra == 'http'", "s3fs; extra == 's3'"], "aiohttp": ["yarl"], "yarl": [], "s3fs": [],
    }
    paths = dependency_paths("app", requires, LINUX_311)
    assert paths == {"app": ("app",), "base": ("app", "base"), "store": ("app", "store"),
                     "aiohttp": ("app", "store", "aiohttp"), "yarl": ("app", "store", "aiohttp", "yarl")}


def test_loaded_at_an_install_is_what_ran_before_it():
    order = LoadOrder([Root("numpy", "Colab's kernel imports {it} at start-up"),
                       Root("app", "the notebook imports {it} (cell 2: import app)", cell=2, line=3),
                       Root("late", "the notebook imports {it} (cell 5: import late)", cell=5, line=1)],
                      {"numpy": [], "app": ["base"], "base": [], "late": ["numpy", "tail"], "tail": []}, LINUX_311)
    assert order.loaded_at(2, 3) == {"numpy": "Colab's kernel imports it at start-up"}    # same line: not before
    assert set(order.loaded_at(2, 4)) == {"numpy", "app", "base"}
    assert order.loaded_at(3, 1)["base"] == ("the notebook imports app (cell 2: import app), which requires it "
                                             "(app -> base)")
    assert order.loaded_at(2, 0).keys() == {"numpy", "app", "base"}      # line unknown: the whole cell counts
    assert set(order.imported_later(2, 3)) == {"app", "base", "late", "tail"}   # numpy: loaded at start-up
    assert order.imported_later(4, 1) == {"late": "the notebook imports it (cell 5: import late)",
                                          "tail": "the notebook imports late (cell 5: import late), which "
                                                  "requires it (late -> tail)"}
    assert set(order.loaded_at(None)) == {"numpy", "app", "base", "late", "tail"}   # after the notebook


def test_the_notebooks_imports_are_kept_with_their_cell_and_line(tmp_path: Path):
    (tmp_path / "helpers.py").write_text("import tqdm\n")
    nb = notebook(tmp_path / "nb.ipynb", ["!pip install -qq diffusers==0.11.1\nimport torch",
                                          "x = 1\nfrom diffusers import DDPMScheduler\nimport helpers"],
                  markdown="# Title")
    needs = notebook_needs(nb, {"torch": "2.9.0", "diffusers": "0.35.2", "tqdm": "4.67.1"})
    assert needs.sites == [ImportSite("torch", "torch", 1, 2), ImportSite("diffusers", "diffusers", 2, 2),
                           ImportSite("tqdm", "tqdm", 2, 3, via="helpers")]
    assert needs.sites[2].describe() == "cell 2: import helpers -> tqdm"
    [install] = find_installs(nb)
    assert (install.cell_index, install.line) == (1, 1)        # the positions sites are compared with


def test_a_requirement_that_is_no_name_does_not_stop_the_reading(tmp_path: Path):
    nb = notebook(tmp_path / "nb.ipynb", ["!pip install git+https://github.com/huggingface/diffusers.git tabulate",
                                          "import tabulate"])
    needs = notebook_needs(nb, {"tabulate": "0.8.10"})
    assert needs.installs == ["tabulate"]
    assert needs.notes == ["cell 0 !pip: 'git+https://github.com/huggingface/diffusers.git' is not a requirement by "
                           "name: not a root of the mirror"]


# ------------------------------------------------------------------------------------ preflight, real resolvers

@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """A venv holding tabulate 0.8.10, colabci-base 1.0 and colabci-app 1.0 (requires colabci-base),
    its profile, and the wheels pip and uv resolve against (tabulate 0.9.0, colabci-base 2.0 too)."""
    root = tmp_path_factory.mktemp("load-order")
    wheels = tiny_index(root / "wheels")
    tiny_wheel(wheels, "colabci-base", "1.0")
    tiny_wheel(wheels, "colabci-base", "2.0")
    tiny_wheel(wheels, "colabci-app", "1.0", ("colabci-base>=1",))
    venv = root / "venv"
    base = subprocess.run([sys.executable, "-c", "import sys; print(sys._base_executable)"], check=True,
                          capture_output=True, text=True, timeout=60).stdout.strip()
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    image = {IMPORTED: IMPORTED_VERSION, "colabci-base": "1.0", "colabci-app": "1.0"}
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links",
                    str(wheels), "--disable-pip-version-check", *(f"{n}=={v}" for n, v in image.items())],
                   check=True, timeout=300, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    profile = Profile(name="tiny-load-order", date="2026-01-15", runtime="cpu", python="3.11.7", os="", source={},
                      platform="", roots={}, pins=[Pin(n, v, ["(root)"]) for n, v in image.items()],
                      outside_image={}, gpu_only={}, dropped=[], image=image, freeze_sha256="", closure={})
    env = BuiltEnv(profile.name, venv, "tiny", "local", "3.11.7", [], image, 0.0, True, "")
    return {"profile": profile, "env": env, "wheels": wheels, "root": root}


def _preflight(tiny: dict, path: Path, cells: list[str]):
    nb = notebook(path, cells)
    with offline_index(tiny["wheels"]):
        verdict = preflight_image(find_installs(nb), tiny["profile"], tiny["env"],
                                  needs=notebook_needs(nb, tiny["profile"].image))
    return verdict


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_install_before_the_first_import_is_a_replacement_naming_both_versions(tiny: dict, tmp_path: Path):
    # the diffusers case: pip install in cell 0, the first import in cell 1
    verdict = _preflight(tiny, tmp_path / "later.ipynb", [f"!pip install -qq {IMPORTED}=={NEWER}",
                                                          f"from {IMPORTED} import tabulate"])
    [install] = verdict.installs
    assert install.status == "replaces" and exit_code([verdict]) == 0
    [change] = install.replaced
    assert (change.name, change.before, change.after, change.imported) == (IMPORTED, IMPORTED_VERSION, NEWER, "")
    assert change.later == f"the notebook imports it (cell 1: import {IMPORTED})"
    assert (f"    {IMPORTED} {IMPORTED_VERSION} -> {NEWER} (not loaded yet: the notebook imports it (cell 1: import "
            f"{IMPORTED}), and gets {NEWER})") in render_text([verdict]).splitlines()
    # in one cell, the lines decide: install first, then import
    verdict = _preflight(tiny, tmp_path / "same-cell.ipynb",
                         [f"!pip install {IMPORTED}=={NEWER}\nimport {IMPORTED}"])
    assert verdict.installs[0].status == "replaces" and exit_code([verdict]) == 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_import_before_the_install_of_the_same_distribution_corrupts(tiny: dict, tmp_path: Path):
    verdict = _preflight(tiny, tmp_path / "before.ipynb", [f"import {IMPORTED}", f"%pip install {IMPORTED}=={NEWER}"])
    [install] = verdict.installs
    assert install.status == "corrupts" and exit_code([verdict]) == 1
    [change] = install.corrupting
    assert (change.before, change.after) == (IMPORTED_VERSION, NEWER)
    assert change.imported == f"the notebook imports it (cell 0: import {IMPORTED})"
    # an earlier line of the install's own cell is before it too
    verdict = _preflight(tiny, tmp_path / "same-cell.ipynb",
                         [f"import {IMPORTED}\n!pip install {IMPORTED}=={NEWER}"])
    assert verdict.installs[0].status == "corrupts" and exit_code([verdict]) == 1


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_replacing_what_an_earlier_import_requires_corrupts(tiny: dict, tmp_path: Path):
    # the sklearn -> scipy case in small: colabci-app requires colabci-base; the notebook never
    # imports colabci-base itself
    cells = ["import colabci_app", "!pip install colabci-base==2.0"]
    verdict = _preflight(tiny, tmp_path / "closure.ipynb", cells)
    [install] = verdict.installs
    assert install.status == "corrupts" and exit_code([verdict]) == 1
    [change] = install.corrupting
    assert (change.name, change.before, change.after) == ("colabci-base", "1.0", "2.0")
    assert change.imported == ("the notebook imports colabci-app (cell 0: import colabci_app), which requires it "
                               "(colabci-app -> colabci-base)")
    # the same install before that import: a replacement, with the later import named
    verdict = _preflight(tiny, tmp_path / "closure-later.ipynb", cells[::-1])
    [install] = verdict.installs
    assert install.status == "replaces" and exit_code([verdict]) == 0
    assert install.replaced[0].later.startswith("the notebook imports colabci-app (cell 1: import colabci_app)")
