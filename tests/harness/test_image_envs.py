"""Real mirror environments of the shipped profiles (uv, PyPI, the local CPU torch wheel).

One module-scoped fixture builds each shipped profile's mirror for the template (what it imports and
installs: ~15 s each with uv's cache warm); the tests then check what the mirrors hold, the fidelity
report, the skip on an unchanged mirror, and the matrix. Preflight against the whole image is
tests/harness/test_preflight_image.py. Marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.images.build import BUILD_FILE, FIDELITY_FILE, BuildError, build_env
from harness.images.closure import Pin
from harness.images.fidelity import read_fidelity
from harness.source.needs import notebook_needs
from harness.images.plan import pytorch_index_unreachable
from harness.images.profiles import Profile, get_profile, select_profiles
from harness.images.uvtool import local_wheels
from harness.preflight.evaluate import environment_state
from tests.harness.conftest import make_notebook

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "notebook" / "template.ipynb"
NUMPY_1 = "2025-03-12-184db90-cpu"
# what the template's tiers library imports, and the kernel: every template mirror must hold them
TEMPLATE_NEEDS = ("torch", "numpy", "pandas", "matplotlib", "psutil", "ipykernel", "pip")


@pytest.fixture(scope="module")
def cache(colab_ci_cache: Path) -> Path:
    return colab_ci_cache


@pytest.fixture(scope="module")
def envs(cache: Path) -> dict:
    return {p.name: build_env(p, cache_dir=cache, mode="local", log=lambda _line: None,
                              needs=notebook_needs(TEMPLATE, p.image)) for p in select_profiles([])}


@pytest.mark.timeout(1200)   # its fixture builds the three template mirrors (~110 distributions each, optional
def test_each_image_mirrors_what_the_template_needs(envs: dict):    # imports included): minutes on loaded cores
    for name, env in envs.items():
        profile = get_profile(name)
        assert not env.skipped and env.python.exists()
        assert set(TEMPLATE_NEEDS) <= set(env.installed), name
        assert env.installed["numpy"] == profile.version("numpy")
        assert env.installed["pip"] == profile.version("pip")
        assert env.installed["tqdm"] == profile.image["tqdm"]     # captum's and optuna's, held at the image's version
        assert "captum" not in env.installed and "transformers" not in env.installed   # installed by the notebook / not needed
        state = environment_state(env.python)
        assert state["numpy"]["version"] == profile.version("numpy")
        pins = json.loads((env.path / BUILD_FILE).read_text())["pins"]
        assert env.fidelity[0].startswith(f"closure notebook: the mirror holds {len(pins)} of the image's "
                                          f"{len(profile.image)} distributions: Colab's kernel and pip, what the "
                                          "notebook imports (")
        assert "torch" in env.fidelity[0] and "captum==0.9.0" in env.fidelity[0]
        # every deviation is named: the Python, and every pin that differs (here torch: the image's build
        # comes from download.pytorch.org, so a CPU wheel from pip's find-links or the CPU index stands in)
        assert (env.python_version == profile.python) != any(
            line.startswith(f"python {profile.python} -> {env.python_version}:") for line in env.fidelity)
        for pin, version in pins.items():
            if env.installed.get(pin) != version:
                assert any(line.startswith(f"{pin} {version} -> {env.installed.get(pin)}: ")
                           for line in env.fidelity), pin
        assert any(line.startswith("torch ") for line in env.fidelity) == (
            env.installed["torch"] != profile.version("torch"))
        assert json.loads((env.path / FIDELITY_FILE).read_text()) == env.fidelity
        assert read_fidelity(env.python) == env.fidelity


@pytest.mark.skipif(not local_wheels("torch"), reason="no torch wheel in pip's find-links on this machine")
def test_the_local_torch_wheel_stands_in_and_moves_what_it_needs(envs: dict):
    if not pytorch_index_unreachable():
        pytest.skip("download.pytorch.org answers: the image's own torch release is used instead")
    for name, env in envs.items():
        profile = get_profile(name)
        torch = next(line for line in env.fidelity if line.startswith("torch "))
        assert torch.startswith(f"torch {profile.version('torch')} -> {env.installed['torch']}: ")
        assert "the CPU wheel in pip's find-links" in torch
    assert any(line.startswith("sympy 1.13.1 -> ") and "requires sympy>=" in line for line in envs[NUMPY_1].fidelity)


def test_an_unchanged_mirror_is_not_rebuilt(envs: dict, cache: Path, capsys):
    profile = get_profile(NUMPY_1)
    again = build_env(profile, cache_dir=cache, mode="local", needs=notebook_needs(TEMPLATE, profile.image))
    assert again.skipped and again.path == envs[NUMPY_1].path and again.fidelity == envs[NUMPY_1].fidelity
    assert "environment up to date, build skipped" in capsys.readouterr().out
    assert again.seconds < 5


def test_a_notebook_that_needs_only_the_kernel_gets_the_profiles_own_mirror(cache: Path, tmp_path: Path):
    profile = get_profile(NUMPY_1)
    nb = make_notebook(tmp_path / "numpy.ipynb", [("import numpy as np\nprint(np.__version__)", [])])
    own = build_env(profile, cache_dir=cache, mode="local", log=lambda _line: None)
    for_it = build_env(profile, cache_dir=cache, mode="local", log=lambda _line: None,
                       needs=notebook_needs(nb, profile.image))
    assert for_it.skipped and for_it.path == own.path
    assert "torch" not in own.installed and own.installed["numpy"] == profile.version("numpy")
    assert set(own.installed) == {p.name for p in profile.pins}


def _tiny(name: str, pins: dict[str, str], python: str = "3.11.7", date: str = "2026-01-15") -> Profile:
    return Profile(name=name, date=date, runtime="cpu", python=python, os="", source={}, platform="",
                   roots={}, pins=[Pin(n, v, ["(root)"]) for n, v in pins.items()], outside_image={},
                   gpu_only={}, dropped=[], image=dict(pins), freeze_sha256="", closure={})


def test_a_failing_build_keeps_its_log_and_names_the_pin(tmp_path: Path):
    profile = _tiny("broken", {"six": "1.16.0", "idna": "999.0.1"})
    with pytest.raises(BuildError) as caught:
        build_env(profile, cache_dir=tmp_path, mode="local", log=lambda _line: None)
    error = caught.value
    assert error.pin == "idna==999.0.1"
    assert "at idna==999.0.1" in str(error) and str(error.log) in str(error)
    assert error.log.is_file() and "idna==999.0.1" in error.log.read_text()
    assert not list((tmp_path / "envs").glob(f"broken-*/{BUILD_FILE}"))     # no half-built env counts as built


def test_a_pin_without_a_release_for_this_python_is_substituted(tmp_path: Path):
    # Django 6.0 requires Python >= 3.12: on an image's Python 3.11 the newest earlier release stands in
    profile = _tiny("py312-only", {"django": "6.0", "six": "1.16.0"}, python="3.11.7")
    env = build_env(profile, cache_dir=tmp_path, mode="local", log=lambda _line: None)
    if env.python_version.startswith(("3.12", "3.13", "3.14")):
        pytest.skip("no Python 3.11 here: this interpreter can install Django 6.0, nothing to substitute")
    line = next(line for line in env.fidelity if line.startswith("django 6.0 -> "))
    assert "has no wheel or sdist for Python" in line
    assert env.installed["django"].startswith("5.")


# ------------------------------------------------------------------------------------ matrix

@pytest.mark.timeout(900)
def test_matrix_runs_the_template_in_every_image(envs: dict, cache: Path, tmp_path: Path, capsys):
    out = tmp_path / "matrix"
    # No baselines: this test is about the matrix; baselines/ (compared by default) hold this machine's numbers.
    status = main(["matrix", "--cache-dir", str(cache), "--mode", "local", "--out", str(out),
                   "--baselines", str(tmp_path / "no-baselines")])
    printed = capsys.readouterr().out
    assert status == 0, printed
    summary = json.loads((out / "matrix.json").read_text())
    assert summary["verdict"] == "pass"
    assert [i["image"] for i in summary["images"]] == list(envs)
    for image in summary["images"]:
        # a tier benchmark may warn when the runs share two busy cores; nothing may fail
        assert image["verdict"] == "pass" and set(image["checks"].values()) <= {"pass", "warn"}
        assert set(image["checks"]) == {"corruption", "headless", "install", "install-time", "cells", "tiers"}
        # the run's fidelity: its mirror's (built for the template's needs), then what the run adds
        assert any(line.startswith("python ") for line in image["fidelity"]) == (image["python"] != "3.11.7")
        assert any("google.colab: colab-ci's headless stand-in" in line for line in image["fidelity"])
        assert (out / image["image"] / "report.json").is_file()        # each run in its own folder
    assert "| 2025-11-24-13d109b-cpu | 3.12.12 -> " in (out / "matrix.md").read_text()
    assert b'<testsuite name="colab-ci matrix"' in (out / "junit.xml").read_bytes()


@pytest.mark.timeout(120)
def test_a_narrow_terminal_does_not_hide_why_a_pin_cannot_be_installed(tmp_path: Path, monkeypatch):
    # uv wraps its messages to COLUMNS; "does not satisfy Python>=3.12" split over lines once failed this
    # build in a pytest-xdist worker (what narrowed its COLUMNS was not traced)
    monkeypatch.setenv("COLUMNS", "40")
    profile = _tiny("py312-only-narrow", {"django": "6.0", "six": "1.16.0"}, python="3.11.7")
    env = build_env(profile, cache_dir=tmp_path, mode="local", log=lambda _line: None)
    assert env.installed["django"] != "6.0" and env.installed["six"] == "1.16.0"
