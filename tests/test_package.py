"""colab-ci as other people install it: the wheel, in a fresh environment, outside any checkout.

The wheel is built from this checkout and installed (with its dependencies, by uv, into a new venv in a
temporary folder); everything then runs from a folder that is not a checkout, on a notebook that is not
ours: the shipped image profiles are listed, and the notebook runs in an image's mirror (`--image`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.images.uvtool import find_links_args, uv_binary
from tests.harness.conftest import make_notebook

REPO_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The console script ``colab-ci`` of a fresh venv holding only the wheel and its dependencies."""
    root = tmp_path_factory.mktemp("installed")
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO_ROOT), "-w", str(wheels)],
                   check=True, timeout=300)
    [wheel] = wheels.glob("colab_ci-*.whl")
    uv = uv_binary()
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(root / "venv")], check=True, timeout=120)
    subprocess.run([uv, "pip", "install", "-q", "--compile-bytecode", "--python", str(root / "venv" / "bin" / "python"),
                    *find_links_args(), str(wheel)], check=True, timeout=600)
    return root / "venv" / "bin" / "colab-ci"


@pytest.mark.timeout(900)
def test_the_wheel_lists_the_profiles_and_runs_a_notebook_with_image_from_any_folder(installed: Path,
                                                                                     tmp_path: Path) -> None:
    elsewhere = tmp_path / "their-project"
    elsewhere.mkdir()
    listed = subprocess.run([str(installed), "images", "list", "--json"], cwd=elsewhere, capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    names = [row["name"] for row in json.loads(listed.stdout)]
    shipped = sorted(p.stem for p in (REPO_ROOT / "harness" / "images" / "profiles").glob("*.json"))
    assert sorted(names) == shipped
    nb = make_notebook(elsewhere / "their.ipynb", [
        ("import numpy as np\nprint(np.__version__)", []),
        ("from google.colab import drive\ndrive.mount('/content/drive')", []),
    ])
    run = subprocess.run([str(installed), "run", nb.name, "--image", names[0], "--mode", "local",
                          "--cache-dir", str(tmp_path / "cache"), "--out", "out"],
                         cwd=elsewhere, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((elsewhere / "out" / "report.json").read_text())
    assert report["record"]["environment"]["numpy"] == next(
        row["numpy"] for row in json.loads(listed.stdout) if row["name"] == names[0])
    assert "COLAB_CI_CHECKOUT" not in (elsewhere / "out" / "executed.ipynb").read_text()
    assert [c["api"] for c in report["record"]["colab_calls"]] == ["drive.mount"]
    # no notebook and no checkout: the command says what to pass instead of guessing
    matrix = subprocess.run([str(installed), "matrix"], cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert matrix.returncode == 2 and "pass NOTEBOOK" in matrix.stderr
