"""Never touch the target: every verb that starts a kernel or a resolver leaves the environment it
was pointed at exactly as it was, byte for byte, mode for mode, link for link.

Each verb gets a notebook that pip-installs (numpy moved under the kernel, tabulate replaced), and the
target is reached directly and through a symlinked folder (a checkout whose ``.venv`` links to a venv
elsewhere, the case that once rewrote a venv's scripts). ``tree_digest`` covers bin/, pyvenv.cfg
and site-packages: everything under the venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.execution import overlayfs
from harness.images.build import build_env
from harness.images.profiles import available_profiles, get_profile
from tests.harness.conftest import OTHER_TABULATE, REPO_ROOT, UPGRADE_NUMPY, make_notebook, run_cli, tree_digest

pytestmark = pytest.mark.slow

INSTALLING = [
    ("import numpy as np, tabulate", []),
    (f"%pip install -q numpy=={UPGRADE_NUMPY} tabulate=={OTHER_TABULATE}", ["install"]),
    ("print('after the install')", []),
]


def _reach(prefix: Path, tmp_path: Path, how: str) -> Path:
    """The target's interpreter, directly or through a checkout whose .venv is a symlink to it."""
    if how == "directly":
        return prefix / "bin" / "python"
    link = tmp_path / "checkout" / ".venv"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(prefix, target_is_directory=True)
    return link / "bin" / "python"


@pytest.mark.parametrize("isolation", ["overlayfs", "copy"])
@pytest.mark.parametrize("how", ["directly", "through-a-symlinked-folder"])
def test_run(target_venv: Path, tmp_path: Path, isolation: str, how: str) -> None:
    if isolation == "overlayfs" and overlayfs.available() is None:
        pytest.skip(f"overlay mounts are unavailable here: {overlayfs.unavailable_reason()}")
    prefix = target_venv.parent.parent
    before = tree_digest(prefix)
    nb = make_notebook(tmp_path / "installs.ipynb", INSTALLING)
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(nb), "--python", str(_reach(prefix, tmp_path, how)),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
                          cwd=REPO_ROOT, env={**os.environ, "COLAB_CI_ISOLATION": isolation})
    assert proc.returncode == 1, proc.stdout + proc.stderr     # numpy moved under the kernel: caught ...
    assert tree_digest(prefix) == before                      # ... in the run's environment only


@pytest.fixture(scope="module")
def mirror(colab_ci_cache: Path) -> tuple[Path, Path, str, str]:
    """The newest shipped profile's environment, built as `images build` builds it, its cache, and
    a numpy release other than the image's (for an install that moves it)."""
    profile = available_profiles()[0]
    env = build_env(profile, cache_dir=colab_ci_cache, mode="local", log=lambda _line: None)
    return colab_ci_cache, env.path, profile.name, "2.0.2" if profile.version("numpy") != "2.0.2" else UPGRADE_NUMPY


@pytest.mark.timeout(900)
def test_matrix_and_preflight(mirror: tuple[Path, Path, str, str], tmp_path: Path) -> None:
    cache, env, image, other_numpy = mirror
    before = tree_digest(env)
    nb = make_notebook(tmp_path / "installs.ipynb", [
        ("import numpy as np", []), (f"%pip install -q numpy=={other_numpy}", ["install"]), ("print('after')", [])])
    matrix = run_cli("matrix", str(nb), "--images", image, "--cache-dir", str(cache), "--mode", "local",
                     "--out", str(tmp_path / "matrix"), "--baselines", str(tmp_path / "no-baselines"), timeout=600)
    assert matrix.returncode == 1, matrix.stdout + matrix.stderr   # numpy replaced under the kernel
    report = json.loads((tmp_path / "matrix" / image / "report.json").read_text())
    assert any(f["check"] == "corruption" and f["severity"] == "fail" for f in report["findings"])
    preflight = run_cli("preflight", "--notebook", str(nb), "--images", image, "--cache-dir", str(cache),
                        "--mode", "local", timeout=600)
    image_numpy = get_profile(image).version("numpy")
    assert preflight.returncode == 1, preflight.stdout + preflight.stderr     # the same swap, predicted
    assert f"numpy {image_numpy} -> {other_numpy} (CORRUPTS" \
        in preflight.stdout, preflight.stdout
    assert tree_digest(env) == before


def test_smoke(target_venv: Path, tmp_path: Path) -> None:
    prefix = target_venv.parent.parent
    before = tree_digest(prefix)
    nb = make_notebook(tmp_path / "installs.ipynb", INSTALLING)
    proc = subprocess.run([sys.executable, "-m", "harness", "smoke", "--notebook", str(nb), "--python",
                           str(_reach(prefix, tmp_path, "through-a-symlinked-folder")), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr   # every cell ran in the page
    assert "all 3 code cells ran without an error" in proc.stdout
    assert tree_digest(prefix) == before
