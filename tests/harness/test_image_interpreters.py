"""A mirror is built with the interpreter of its image's minor where this machine has one (pyenv, PATH,
uv), else with the harness's own, said in the fidelity report; and where that minor has no torch wheel
and the mirror holds torch, the harness's own Python (which has one) builds it, said so.

``COLAB_CI_PYTHONS`` controls where interpreters are looked for: an empty folder simulates a machine
without the image's minor; a folder holding a link to a real interpreter, one with it. The builds are
real (uv, PyPI); the one that runs a notebook in a Python 3.12 mirror is marked slow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.execution.probes import installed_source
from harness.images.build import build_env
from harness.images.closure import Pin
from harness.images.interpreters import SEARCH_VARIABLE, find_interpreter
from harness.images.plan import local_torch_or_none, machine_plan, pytorch_index_unreachable
from harness.images.profiles import Profile, get_profile
from tests.harness.conftest import make_notebook

OWN = ".".join(str(p) for p in sys.version_info[:3])
OWN_MINOR = ".".join(OWN.split(".")[:2])
OTHER_MINOR = "3.12" if OWN_MINOR != "3.12" else "3.13"
IMAGE_312 = "2025-11-24-13d109b-cpu"      # a shipped profile whose Python is 3.12


def _real_interpreter(minor: str) -> Path | None:
    """A real Python ``minor`` on this machine (what the default search finds), or None."""
    found = find_interpreter(minor)
    return Path(found.path) if found else None


OTHER = _real_interpreter(OTHER_MINOR)
needs_other = pytest.mark.skipif(OTHER is None, reason=f"no Python {OTHER_MINOR} on this machine")


def _tiny(pins: dict[str, str], python: str, image: dict[str, str] | None = None) -> Profile:
    return Profile(name=f"tiny-{python}", date="2026-01-15", runtime="cpu", python=python, os="", source={},
                   platform="", roots={}, pins=[Pin(n, v, ["(root)"]) for n, v in pins.items()], outside_image={},
                   gpu_only={}, dropped=[], image={**pins, **(image or {})}, freeze_sha256="", closure={})


@pytest.fixture
def with_other(tmp_path: Path, monkeypatch) -> Path:
    """A search path holding only a link to the real Python OTHER_MINOR."""
    assert OTHER is not None
    folder = tmp_path / "pythons"
    folder.mkdir()
    (folder / f"python{OTHER_MINOR}").symlink_to(OTHER)
    monkeypatch.setenv(SEARCH_VARIABLE, str(folder))
    return folder


@pytest.fixture
def without_any(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "no-pythons"
    folder.mkdir()
    monkeypatch.setenv(SEARCH_VARIABLE, str(folder))
    return folder


@pytest.mark.timeout(120)
def test_no_interpreter_of_the_minor_falls_back_to_the_harnesss_own_and_says_so(without_any: Path, tmp_path: Path):
    profile = _tiny({"six": "1.17.0"}, python=f"{OTHER_MINOR}.7")
    assert find_interpreter(profile.python) is None
    env = build_env(profile, cache_dir=tmp_path / "cache", mode="local", log=lambda _line: None)
    assert env.python_version == OWN
    line = next(line for line in env.fidelity if line.startswith(f"python {OTHER_MINOR}.7 -> {OWN}: "))
    assert f"no Python {OTHER_MINOR} found on this machine ({SEARCH_VARIABLE}={without_any})" in line


@needs_other
@pytest.mark.timeout(120)
def test_the_images_minor_builds_the_mirror_where_one_is_found(with_other: Path, tmp_path: Path):
    profile = _tiny({"six": "1.17.0"}, python=f"{OTHER_MINOR}.99")
    found = find_interpreter(profile.python)
    assert found is not None and found.minor == OTHER_MINOR and found.found_by == SEARCH_VARIABLE
    env = build_env(profile, cache_dir=tmp_path / "cache", mode="local", log=lambda _line: None)
    assert env.python_version == found.version
    said = subprocess.run([str(env.python), "-c", "import platform, six; print(platform.python_version())"],
                          capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert said == found.version
    line = next(line for line in env.fidelity if line.startswith(f"python {OTHER_MINOR}.99 -> {found.version}: "))
    assert "the image's minor, as found here" in line


@needs_other
@pytest.mark.timeout(120)
def test_without_a_torch_wheel_for_the_minor_a_mirror_with_torch_falls_back(with_other: Path):
    if not pytorch_index_unreachable():
        pytest.skip("download.pytorch.org answers: torch comes from there for any Python")
    if local_torch_or_none("2.9.0", OWN) is None or local_torch_or_none("2.9.0", f"{OTHER_MINOR}.0") is not None:
        pytest.skip(f"pip's find-links need a torch wheel for Python {OWN_MINOR} and none for {OTHER_MINOR}")
    profile = _tiny({"six": "1.17.0"}, python=f"{OTHER_MINOR}.99", image={"torch": "2.9.0+cu126"})
    plan = machine_plan(profile, "local", log=lambda _line: None)
    assert plan.python.startswith(OTHER_MINOR) and plan.fallback is not None
    without_torch = plan.for_pins([Pin("six", "1.17.0", ["(root)"])])
    assert without_torch is plan
    with_torch = plan.for_pins([Pin("six", "1.17.0", ["(root)"]), Pin("torch", "2.9.0+cu126", ["(root)"])])
    assert with_torch.python == OWN and with_torch.torch_source.endswith(".whl")
    assert f"Python {plan.python} ({SEARCH_VARIABLE}) has no torch wheel" in with_torch.reasons["python"]


@pytest.mark.parametrize("minor", ["3.12", "3.13"])
@pytest.mark.timeout(60)
def test_the_kernel_probe_runs_on_the_images_newer_pythons(minor: str, monkeypatch):
    # the probe is stdlib-only source run in the mirror's interpreter: it must load there, warnings as errors
    monkeypatch.delenv(SEARCH_VARIABLE, raising=False)
    found = find_interpreter(minor)
    if found is None:
        pytest.skip(f"no Python {minor} on this machine")
    done = subprocess.run([found.path, "-I", "-W", "error::SyntaxWarning", "-W", "error::DeprecationWarning",
                           "-c", installed_source()], capture_output=True, text=True, timeout=50, check=False)
    assert done.returncode == 0, done.stderr
    assert "pip" in json.loads(done.stdout)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_run_in_an_image_on_python_312_runs_on_python_312(tmp_path: Path):
    if get_profile(IMAGE_312).python.rsplit(".", 1)[0] != "3.12" or _real_interpreter("3.12") is None:
        pytest.skip("needs a shipped 3.12 image and a Python 3.12 on this machine")
    notebook = make_notebook(tmp_path / "py.ipynb", [
        ("import sys, numpy\nprint(sys.version_info[:2], numpy.__version__)", []),
        ("assert sys.version_info[:2] == (3, 12), sys.version", [])])
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(notebook), "--image", IMAGE_312,
                           "--out", str(out)],
                          capture_output=True, text=True, timeout=840, env=_env(tmp_path), check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads((out / "report.json").read_text())["record"]
    assert record["environment"]["python"].startswith("3.12."), record["environment"]
    assert not any(line.startswith("python 3.12.12 -> 3.11") for line in record["fidelity"])
    assert "python 3.12" in (out / "report.md").read_text()


def _env(tmp_path: Path) -> dict[str, str]:
    import os

    return {**os.environ, "COLAB_CI_CACHE": str(tmp_path / "cache")}
