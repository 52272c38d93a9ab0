"""Real environments for the shipped profiles (uv, PyPI, the local CPU torch wheel), and preflight on them.

One module-scoped fixture builds all three shipped profiles (~15 s each with uv's cache warm); the
tests then check the builds, the fidelity report, the skip on an unchanged profile, and preflight's
verdicts with the real resolver. Marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.images.build import (
    BUILD_FILE,
    FIDELITY_FILE,
    BuildError,
    _pytorch_index_unreachable,
    build_env,
)
from harness.images.closure import Pin
from harness.images.profiles import Profile, available_profiles, get_profile
from harness.images.uvtool import local_wheels
from harness.images.fidelity import read_fidelity
from harness.install_cells import InstallSpec
from harness.preflight import environment_state, evaluate_install, preflight_image

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
NUMPY_2 = ("2026-08-19-a724079-cpu", "2025-11-24-13d109b-cpu")
NUMPY_1 = "2025-03-12-184db90-cpu"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("colab-ci-cache")


@pytest.fixture(scope="module")
def envs(cache: Path) -> dict:
    return {p.name: build_env(p, cache_dir=cache, mode="local", log=lambda _line: None) for p in available_profiles()}


def test_each_shipped_profile_builds(envs: dict):
    for name, env in envs.items():
        profile = get_profile(name)
        assert not env.skipped and env.python.exists()
        assert env.installed["numpy"] == profile.version("numpy")
        assert env.installed["pip"] == profile.version("pip") and "ipykernel" in env.installed
        assert "captum" not in env.installed                      # the notebook installs it; the image lacks it
        state = environment_state(env.python)
        assert state["numpy"]["version"] == profile.version("numpy")
        # every deviation is named: the Python, and every pin that differs (here torch: the image's build
        # comes from download.pytorch.org, so a CPU wheel from pip's find-links or the CPU index stands in)
        assert (env.python_version == profile.python) != any(
            line.startswith(f"python {profile.python} -> {env.python_version}:") for line in env.fidelity)
        for pin in profile.pins:
            if env.installed.get(pin.name) != pin.version:
                assert any(line.startswith(f"{pin.name} {pin.version} -> {env.installed.get(pin.name)}: ")
                           for line in env.fidelity), pin.name
        assert any(line.startswith("torch ") for line in env.fidelity) == (
            env.installed["torch"] != profile.version("torch"))
        assert json.loads((env.path / FIDELITY_FILE).read_text()) == env.fidelity
        assert read_fidelity(env.python) == env.fidelity


@pytest.mark.skipif(not local_wheels("torch"), reason="no torch wheel in pip's find-links on this machine")
def test_the_local_torch_wheel_stands_in_and_moves_what_it_needs(envs: dict):
    if not _pytorch_index_unreachable():
        pytest.skip("download.pytorch.org answers: the image's own torch release is used instead")
    for name, env in envs.items():
        profile = get_profile(name)
        torch = next(line for line in env.fidelity if line.startswith("torch "))
        assert torch.startswith(f"torch {profile.version('torch')} -> {env.installed['torch']}: ")
        assert "the CPU wheel in pip's find-links" in torch
    assert any(line.startswith("sympy 1.13.1 -> ") and "requires sympy>=" in line for line in envs[NUMPY_1].fidelity)


def test_an_unchanged_profile_is_not_rebuilt(envs: dict, cache: Path, capsys):
    again = build_env(get_profile(NUMPY_1), cache_dir=cache, mode="local")
    assert again.skipped and again.path == envs[NUMPY_1].path and again.fidelity == envs[NUMPY_1].fidelity
    assert "environment up to date, build skipped" in capsys.readouterr().out
    assert again.seconds < 5


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
    # Django 6.0 requires Python >= 3.12: on this machine's Python the newest earlier release stands in
    profile = _tiny("py312-only", {"django": "6.0", "six": "1.16.0"}, python="3.12.12")
    env = build_env(profile, cache_dir=tmp_path, mode="local", log=lambda _line: None)
    if env.python_version.startswith(("3.12", "3.13", "3.14")):
        pytest.skip("this interpreter can install Django 6.0: nothing to substitute")
    line = next(line for line in env.fidelity if line.startswith("django 6.0 -> "))
    assert "has no wheel or sdist for Python" in line
    assert env.installed["django"].startswith("5.")


# ------------------------------------------------------------------------------------ preflight

def _requirement(text: str, guarded: bool = False) -> InstallSpec:
    return InstallSpec(-1, "", "-r", f"requirements: {text}", requirements=[text], guarded=guarded)


def test_preflight_flags_captum_0_8_moving_numpy_with_its_chain(envs: dict):
    for name in NUMPY_2:
        profile, env = get_profile(name), envs[name]
        verdict = preflight_image([_requirement("captum==0.8.0")], profile, env).installs[0]
        assert verdict.status == "corrupts" and verdict.resolver == "pip"
        numpy = next(c for c in verdict.corrupting if c.name == "numpy")
        assert (numpy.before, numpy.after) == (profile.version("numpy"), "1.26.4")
        assert numpy.imported == "Colab's kernel imports it at start-up"
        assert numpy.chain == "captum==0.8.0 -> numpy<2.0 -> numpy 1.26.4"
        assert verdict.fixes[0].startswith("captum==0.9.0: the newest release whose requirements accept numpy ")
        assert any(fix.startswith("pip install --no-deps captum==0.8.0") for fix in verdict.fixes)
    # numpy 1.26.4 already satisfies numpy<2.0: nothing moves in the numpy 1.x image
    old = preflight_image([_requirement("captum==0.8.0")], get_profile(NUMPY_1), envs[NUMPY_1]).installs[0]
    assert old.status == "ok" and [c.name for c in old.changes] == ["captum"]


def test_the_guard_turns_the_replacement_into_a_failed_install(envs: dict):
    env = envs[NUMPY_2[0]]
    state = environment_state(env.python)
    imported = {"numpy": "Colab's kernel imports it at start-up"}
    verdict = evaluate_install(_requirement("captum==0.8.0", guarded=True), env.python, state, imported)
    assert verdict.status == "corrupts"                     # raw: what pip would do without the guard
    assert verdict.guard.startswith("guarded: with every installed distribution pinned, pip refuses")


def test_preflight_passes_the_template_and_requirements_on_every_image(envs: dict, cache: Path, capsys, tmp_path):
    report = tmp_path / "preflight.json"
    assert main(["preflight", "--cache-dir", str(cache), "--mode", "local", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    for name in envs:
        assert f"{name}: OK" in out
    verdicts = json.loads(report.read_text())
    assert {v["image"] for v in verdicts} == set(envs)
    for verdict in verdicts:
        labels = {i["install"] for i in verdict["installs"]}
        assert {"cell 3 [install] install()", "cell 7 [tier2-install] install()",
                "cell 9 [tier3-install] install()"} <= labels
        assert all(i["status"] == "ok" for i in verdict["installs"])
        assert verdict["fidelity"]
    assert main(["preflight", "--requirements", str(REPO / "requirements-colab.txt"), "--cache-dir", str(cache),
                 "--mode", "local"]) == 0
    assert "adds torchinfo 1.8.0" in capsys.readouterr().out


def test_preflight_cli_exits_1_when_numpy_would_move(envs: dict, cache: Path, tmp_path: Path, capsys):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("captum==0.8.0\n")
    status = main(["preflight", "--requirements", str(requirements), "--images", NUMPY_2[1], "--cache-dir",
                   str(cache), "--mode", "local", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert status == 1
    assert f"{NUMPY_2[1]}: CORRUPTS" in out
    assert "numpy 2.0.2 -> 1.26.4 (CORRUPTS: Colab's kernel imports it at start-up)" in out
    assert "chain: captum==0.8.0 -> numpy<2.0 -> numpy 1.26.4" in out
    # --out: the versioned preflight.json the combined report and the alert read, and preflight.md
    written = json.loads((tmp_path / "out" / "preflight.json").read_text())
    assert (written["preflight_schema_version"], written["verdict"], written["exit_code"]) == (1, "fail", 1)
    assert [(v["image"], v["status"]) for v in written["images"]] == [(NUMPY_2[1], "corrupts")]
    assert (tmp_path / "out" / "preflight.md").read_text().startswith(
        "## colab-ci preflight: CORRUPTION OR FAILED INSTALL PREDICTED\n")


# ------------------------------------------------------------------------------------ matrix

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
        assert set(image["checks"]) == {"corruption", "install-time", "cells", "tiers"}
        assert image["fidelity"] == envs[image["image"]].fidelity
        assert (out / image["image"] / "report.json").is_file()        # each run in its own folder
    assert "| 2025-11-24-13d109b-cpu | 3.12.12 -> " in (out / "matrix.md").read_text()
    assert b'<testsuite name="colab-ci matrix"' in (out / "junit.xml").read_bytes()
