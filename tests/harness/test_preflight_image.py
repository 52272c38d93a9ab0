"""Preflight against the whole image: the November 2025 image's 706 distributions as metadata, real resolvers.

The issue's cases, on the image where they were seen (``2025-11-24-13d109b-cpu``): a requirements file
that moves pre-installed distributions the notebook does not import (datasets, fsspec, pytest), one that
moves torch below the image's own release, and a notebook whose install cell reads its own
``requirements-colab.txt``. The metadata environment is built once (its metadata is read from the
index the first time on a machine, ~3 minutes, then cached: seconds). Marked slow; needs the index.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.images.build import inspect_env
from harness.images.metadata_env import MetadataEnv, metadata_env
from harness.images.profiles import get_profile
from harness.source.install_spec import InstallSpec
from harness.preflight.evaluate import evaluate_install, preflight_image
from tests.harness.test_notebook_needs import notebook

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[2]
IMAGE = "2025-11-24-13d109b-cpu"
ISSUE_REQUIREMENTS = "datasets>=2.16,<3\npytest>=7.4,<8\noptuna<4\n"


@pytest.fixture(scope="module")
def cache(colab_ci_cache: Path) -> Path:
    return colab_ci_cache


@pytest.fixture(scope="module")
def image(cache: Path) -> MetadataEnv:
    return metadata_env(get_profile(IMAGE), cache_dir=cache, mode="local", log=lambda _line: None)


def _preflight(cache: Path, capsys, *args: str) -> tuple[int, dict]:
    status = main(["preflight", *args, "--images", IMAGE, "--cache-dir", str(cache), "--mode", "local", "--json"])
    return status, json.loads(capsys.readouterr().out)


def _changes(document: dict) -> dict[str, list[tuple[str, str | None, str]]]:
    """install label -> [(name, before, after)] of what it would change."""
    [verdict] = document["images"]
    return {i["install"]: [(c["name"], c["before"], c["after"]) for c in i["changes"]] for i in verdict["installs"]}


def test_the_metadata_environment_is_the_whole_image_at_its_versions(image: MetadataEnv):
    profile = get_profile(IMAGE)
    installed = {name: info["version"] for name, info in inspect_env(image.python)[0].items()}
    with_version = {name: version for name, version in profile.image.items() if version}
    assert installed == with_version                                  # every distribution, the image's version
    assert installed["torch"] == "2.9.0+cu126"                        # the image's own torch, never a stand-in
    assert (installed["datasets"], installed["pytest"], installed["fsspec"]) == ("4.0.0", "8.4.2", "2025.3.0")
    requires = inspect_env(image.python)[0]["torch"]["requires"]
    assert any(r.startswith("nvidia-cudnn-cu12==" + profile.image["nvidia-cudnn-cu12"]) for r in requires)
    assert image.counts["wheel"] > 600 and sum(image.counts.values()) == len(profile.image)
    assert image.fidelity[1].startswith(f"preflight resolves against all {len(profile.image)} distributions of the "
                                        "image as metadata only")
    assert any(line.startswith("google-colab 1.0.0: requirements unknown (a local file inside the image")
               for line in image.fidelity)
    assert any(line.startswith("torch 2.9.0+cu126: read from torch 2.9.0 on the index") for line in image.fidelity)


def test_moved_preinstalled_distributions_are_named_with_the_images_versions(image, cache: Path, tmp_path: Path,
                                                                           capsys):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(ISSUE_REQUIREMENTS)
    status, document = _preflight(cache, capsys, "--requirements", str(requirements), "--resolver", "pip")
    assert status == 0                                   # nothing the kernel imported moves: exit 0 ...
    [verdict] = document["images"]
    [install] = verdict["installs"]
    assert install["status"] == "replaces" and install["resolver"] == "pip"   # ... but every replacement is named
    moved = {name: (before, after) for name, before, after in _changes(document)[install["install"]] if before}
    assert moved["datasets"] == ("4.0.0", "2.21.0")
    assert moved["fsspec"] == ("2025.3.0", "2024.6.1")
    assert moved["pytest"][0] == "8.4.2" and moved["pytest"][1].startswith("7.4.")
    fsspec = next(c for c in install["changes"] if c["name"] == "fsspec")
    assert fsspec["chain"].startswith("datasets>=2.16,<3 -> fsspec[http]") and not fsspec["imported"]
    assert install["files"] == [f"{requirements.resolve()} (--requirements)"]
    assert any(n == "optuna" and b is None for n, b, _a in _changes(document)[install["install"]])   # added


def test_uv_answers_alone_when_nothing_imported_moves(image: MetadataEnv):
    spec = InstallSpec(-1, "", "-r", "requirements: datasets", requirements=["datasets>=2.16,<3"])
    verdict = preflight_image([spec], get_profile(IMAGE), image).installs[0]
    assert verdict.resolver == "uv" and verdict.status == "replaces"
    assert ("datasets", "4.0.0", "2.21.0") in [(c.name, c.before, c.after) for c in verdict.changes]


def test_torch_below_the_images_release_names_the_images_own_torch(image, cache: Path, tmp_path: Path, capsys):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("torch>=2.2.2,<2.6.0\n")
    status, document = _preflight(cache, capsys, "--requirements", str(requirements))
    assert status == 0                                   # no notebook: nothing imported torch
    [install] = document["images"][0]["installs"]
    torch = next(c for c in install["changes"] if c["name"] == "torch")
    assert torch["before"] == "2.9.0+cu126" and torch["after"].startswith("2.5.")
    # A notebook that imports torch: the same install corrupts the kernel, and the fix is about the pin itself
    nb = notebook(tmp_path / "torchy.ipynb", ["import torch", "!pip install -r requirements.txt"])
    status, document = _preflight(cache, capsys, "--notebook", str(nb), "--resolver", "uv")
    assert status == 1
    [install] = document["images"][0]["installs"]
    assert install["status"] == "corrupts"
    torch = next(c for c in install["changes"] if c["name"] == "torch")
    assert (torch["before"], torch["imported"]) == ("2.9.0+cu126", "the notebook imports it (cell 0: import torch)")
    assert install["fixes"] == ["torch>=2.2.2,<2.6.0 excludes the image's torch 2.9.0+cu126, which Colab "
                                "pre-installs: leave torch out, or accept 2.9.0+cu126"]
    assert install["files"] == [f"{requirements} (the notebook's folder)"]


def test_the_notebooks_own_requirements_file_is_read_never_colab_cis(image, cache: Path, tmp_path: Path, capsys,
                                                                   monkeypatch):
    monkeypatch.chdir(REPO)          # colab-ci's own requirements-colab.txt is right here: it must not be read
    folder = tmp_path / "their-project"
    folder.mkdir()
    (folder / "requirements-colab.txt").write_text(ISSUE_REQUIREMENTS)
    nb = notebook(folder / "train.ipynb", ["import datasets", "!pip install -q -r requirements-colab.txt"])
    status, document = _preflight(cache, capsys, "--notebook", str(nb))
    assert status == 1                                   # datasets is imported, and moves
    [install] = document["images"][0]["installs"]
    assert install["install"] == "cell 1 !pip" and install["status"] == "corrupts"
    assert next(c for c in install["changes"] if c["name"] == "datasets")["imported"] == \
        "the notebook imports it (cell 0: import datasets)"
    assert install["files"] == [f"{folder / 'requirements-colab.txt'} (the notebook's folder)"]
    assert install["requirements"] == ["datasets>=2.16,<3", "pytest>=7.4,<8", "optuna<4"]
    # --content is where the kernel finds it first
    uploaded = tmp_path / "upload" / "requirements-colab.txt"
    uploaded.parent.mkdir()
    uploaded.write_text("tabulate\n")
    status, document = _preflight(cache, capsys, "--notebook", str(nb), "--content", str(uploaded))
    [install] = document["images"][0]["installs"]
    assert status == 0 and install["files"] == [f"{uploaded} (--content)"] and install["status"] == "ok"
    # and a file that is nowhere is said, per cell: could not check (exit 2)
    (folder / "requirements-colab.txt").unlink()
    status, document = _preflight(cache, capsys, "--notebook", str(nb))
    assert status == 2
    [install] = document["images"][0]["installs"]
    assert install["status"] == "unchecked" and install["files"] == []
    assert install["unchecked"] == ("cell 1 reads requirements-colab.txt, which a headless run does not have: pass "
                                    "it with --content")


def test_captum_0_8_moves_numpy_with_its_chain_and_the_guard_refuses(image: MetadataEnv):
    profile = get_profile(IMAGE)
    spec = InstallSpec(-1, "", "-r", "requirements: captum==0.8.0", requirements=["captum==0.8.0"])
    verdict = preflight_image([spec], profile, image).installs[0]
    assert verdict.status == "corrupts" and verdict.resolver == "pip"
    numpy = next(c for c in verdict.corrupting if c.name == "numpy")
    assert (numpy.before, numpy.after) == ("2.0.2", "1.26.4")
    assert numpy.imported == "Colab's kernel imports it at start-up"
    assert numpy.chain == "captum==0.8.0 -> numpy<2.0 -> numpy 1.26.4"
    assert verdict.fixes[0].startswith("captum==0.9.0: the newest release whose requirements accept numpy 2.0.2")
    state = inspect_env(image.python)[0]
    guarded = evaluate_install(InstallSpec(-1, "", "-r", "guarded", requirements=["captum==0.8.0"], guarded=True),
                               image.python, state, {"numpy": "Colab's kernel imports it at start-up"})
    assert guarded.guard.startswith("guarded: with every installed distribution pinned, pip refuses")


@pytest.mark.network      # scipy 1.13.1 is resolved from the index
def test_replacing_what_an_imported_package_loaded_corrupts_in_notebook_order(image, cache: Path, tmp_path: Path,
                                                                             capsys):
    """The issue's case: ``import sklearn`` loads scipy (scikit-learn requires it), so replacing scipy in a
    later cell corrupts, though the notebook never imports scipy itself (``run`` agrees:
    tests/harness/test_third_party_notebooks.py, the online run of REPO_DEMO). Before that import, the
    same install is a replacement naming both versions."""
    nb = notebook(tmp_path / "sk.ipynb", ["import sklearn", "!pip install scipy==1.13.1"])
    status, document = _preflight(cache, capsys, "--notebook", str(nb))
    assert status == 1
    [install] = document["images"][0]["installs"]
    assert (install["install"], install["status"]) == ("cell 1 !pip", "corrupts")
    [scipy] = [c for c in install["changes"] if c["imported"]]
    assert (scipy["name"], scipy["before"], scipy["after"]) == ("scipy", "1.16.3", "1.13.1")
    assert scipy["imported"] == ("the notebook imports scikit-learn (cell 0: import sklearn), which requires it "
                                 "(scikit-learn -> scipy)")
    nb = notebook(tmp_path / "sk-later.ipynb", ["!pip install scipy==1.13.1", "import sklearn"])
    status, document = _preflight(cache, capsys, "--notebook", str(nb))
    assert status == 0
    [install] = document["images"][0]["installs"]
    assert install["status"] == "replaces"
    [scipy] = [c for c in install["changes"] if c["name"] == "scipy"]
    assert (scipy["before"], scipy["after"], scipy["imported"]) == ("1.16.3", "1.13.1", "")
    assert scipy["later"].startswith("the notebook imports scikit-learn (cell 1: import sklearn), which requires it")


def test_the_template_passes_and_knows_what_it_imports(image, cache: Path, capsys):
    status, document = _preflight(cache, capsys)
    [verdict] = document["images"]
    assert status == 0, verdict
    assert {"cell 3 [install] install()", "cell 7 [tier2-install] install()", "cell 9 [tier3-install] install()"} <= \
        {i["install"] for i in verdict["installs"]}
    assert all(i["status"] == "ok" for i in verdict["installs"])
    assert {"torch", "numpy", "pandas", "matplotlib", "psutil", "ipykernel"} <= set(verdict["imported"])
    install = next(i for i in verdict["installs"] if i["install"] == "cell 3 [install] install()")
    assert install["files"] == [f"{REPO / 'requirements-colab.txt'} (the checkout (COLAB_CI_CHECKOUT))"]


def test_choosing_the_metadata_reader_leaves_setuptools_importable(tmp_path: Path):
    """On Python < 3.12 a finder lookup of ``pip`` (``importlib.util.find_spec("pip")``) makes setuptools'
    distutils shim give up for the rest of the process: a later ``import setuptools`` (torch.utils.benchmark
    does one) then fails. The harness's own process must never do that."""
    import subprocess
    import sys

    code = ("from pathlib import Path\n"
            "from harness.images.metadata_env import _reader\n"
            f"_reader(Path({str(tmp_path)!r}))\n"
            "import setuptools, distutils.core\n"
            "assert '_distutils' in distutils.core.__file__, distutils.core.__file__\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_no_deps_numpy_wheel_url_over_the_images_numpy_corrupts_by_its_name(image, cache: Path, tmp_path: Path,
                                                                            capsys):
    """The classic swap, written as a wheel URL: judged by the wheel's file name, nothing downloaded (the
    host does not exist), while the notebook's other install is still judged."""
    wheel = "https://files.colab-ci.invalid/numpy-2.1.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    nb = notebook(tmp_path / "swap.ipynb", ["import numpy as np", f"!pip install -q --no-deps {wheel}",
                                            "!pip install $EXTRA_PACKAGES"])
    status, document = _preflight(cache, capsys, "--notebook", str(nb))
    assert status == 1
    installs = {i["install"]: i for i in document["images"][0]["installs"]}
    swap = installs["cell 1 !pip"]
    assert swap["status"] == "corrupts" and swap["resolver"] == "static"
    assert [(c["name"], c["before"], c["after"]) for c in swap["changes"]] == [("numpy", "2.0.2", "2.1.3")]
    assert installs["cell 2 !pip"]["status"] == "unknown" and "`$EXTRA_PACKAGES`" in installs["cell 2 !pip"]["unknown"]
