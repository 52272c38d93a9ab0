"""The disposable environment: hard-link copy, relocation, overlay, kernelspec (real venvs, real pip)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.execution.environment import inspect_target, make_kernelspec, prepare_environment
from tests.harness.conftest import OTHER_TABULATE, TARGET_NUMPY, TARGET_TABULATE, base_python, version_in

pytestmark = pytest.mark.slow


def _digest(site: Path) -> dict[str, str]:
    """Content and inode of every file of numpy and tabulate in ``site``."""
    files = [*sorted((site / "numpy").rglob("*")), *sorted(site.glob("tabulate*")), *sorted(site.glob("numpy-*"))]
    return {str(p.relative_to(site)): f"{hashlib.sha256(p.read_bytes()).hexdigest()} {os.stat(p).st_ino}"
            for p in files if p.is_file() and not p.is_symlink()}


def test_missing_python_is_a_harness_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"--python .*nope does not exist\."):
        inspect_target(tmp_path / "nope")


def test_copy_is_hard_linked_and_pip_in_it_leaves_the_target_pristine(target_venv: Path) -> None:
    target = inspect_target(target_venv)
    site = target.purelib
    before = _digest(site)
    assert any(name.startswith("tabulate") for name in before)
    before_files = {p.name: p.read_bytes() for p in (target.prefix / "bin").iterdir() if p.is_file()}
    env = prepare_environment(target_venv)
    try:
        assert env.mode == "venv-copy" and env.root != target.prefix and env.copy_s > 0
        copy_site = env.root / site.relative_to(target.prefix)
        numpy_init = Path("numpy") / "__init__.py"
        assert os.stat(copy_site / numpy_init).st_ino == os.stat(site / numpy_init).st_ino  # hard link
        # bin/ scripts name the copy, and are new files (not the target's inodes)
        pip_script = env.bin / "pip"
        assert pip_script.read_text().splitlines()[0].startswith(f"#!{env.bin}/python")
        assert os.stat(pip_script).st_ino != os.stat(target.prefix / "bin" / "pip").st_ino
        assert str(env.root) in (env.root / "pyvenv.cfg").read_text()
        # `!pip` (the copy's bin/pip on PATH) replaces tabulate in the copy only
        proc = subprocess.run([str(pip_script), "install", "-q", "--disable-pip-version-check",
                               f"tabulate=={OTHER_TABULATE}", "numpy==1.26.4"],
                              capture_output=True, text=True, env={**os.environ, **env.kernel_env()})
        assert proc.returncode == 0, proc.stderr
        assert version_in(env.python, "tabulate") == OTHER_TABULATE
        assert version_in(env.python, "numpy") == "1.26.4"
    finally:
        env.cleanup()
    assert not env.workdir.exists()
    assert version_in(target_venv, "tabulate") == TARGET_TABULATE
    assert version_in(target_venv, "numpy") == TARGET_NUMPY
    assert _digest(site) == before
    assert {p.name: p.read_bytes() for p in (target.prefix / "bin").iterdir() if p.is_file()} == before_files
    check = subprocess.run([str(target_venv), "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_keep_env_keeps_the_copy(target_venv: Path) -> None:
    env = prepare_environment(target_venv, keep=True)
    messages: list[str] = []
    env.cleanup(log=messages.append)
    try:
        assert env.root.is_dir() and "--keep-env" in messages[0]
    finally:
        env.keep = False
        env.cleanup()


def test_kernelspec_runs_the_copy_with_its_bin_first_on_path(target_venv: Path, tmp_path: Path) -> None:
    env = prepare_environment(target_venv)
    try:
        spec = make_kernelspec(env, tmp_path, {"COLAB_CI_CHECKOUT": "/repo"})
        data = json.loads((spec.kernels_dir / spec.name / "kernel.json").read_text())
        assert data["argv"] == [str(env.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        assert data["env"]["PATH"].split(os.pathsep)[0] == str(env.bin)
        assert data["env"]["VIRTUAL_ENV"] == str(env.root)
        assert data["env"]["COLAB_CI_CHECKOUT"] == "/repo"
    finally:
        env.cleanup()


def test_system_python_gets_an_overlay_with_a_fidelity_line(capfd: pytest.CaptureFixture[str]) -> None:
    base = base_python()
    target = inspect_target(base)
    assert not target.is_venv
    had_ipykernel = target.has_ipykernel
    base_tabulate = version_in(base, "tabulate")
    env = prepare_environment(base)
    try:
        assert env.mode == "overlay"
        assert any("not a venv" in line and "cannot reproduce" in line for line in env.fidelity)
        if not had_ipykernel:
            assert "installing ipykernel into" in capfd.readouterr().err
        # `!pip` in the overlay installs into the overlay, not the base
        proc = subprocess.run([str(env.bin / "pip"), "install", "-q", "--disable-pip-version-check",
                               f"tabulate=={OTHER_TABULATE}"], capture_output=True, text=True,
                              env={**os.environ, **env.kernel_env()})
        assert proc.returncode == 0, proc.stderr
        assert version_in(env.python, "tabulate") == OTHER_TABULATE
    finally:
        env.cleanup()
    assert inspect_target(base).has_ipykernel == had_ipykernel
    assert version_in(base, "tabulate") == base_tabulate


def test_deferred_copy_waits_for_imports_completes_and_leaves_no_trace(target_venv: Path) -> None:
    target = inspect_target(target_venv)
    env = prepare_environment(target_venv, defer=True)
    try:
        assert env._copier is not None  # numpy, pip, tabulate ... are copied while a kernel would start
        # A process started now (as the kernel is) that imports a package still being copied waits for it.
        code = ("import sys; hooked = [type(f).__name__ for f in sys.meta_path][0]\n"
                "import numpy, tabulate; print(hooked, numpy.__version__, tabulate.__version__)")
        proc = subprocess.run([str(env.python), "-c", code], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["DeferredCopyFinder", TARGET_NUMPY, TARGET_TABULATE]
        env.wait_ready()
        copy_site = env.root / target.purelib.relative_to(target.prefix)
        assert sorted(os.listdir(copy_site)) == sorted(n for n in os.listdir(target.purelib))
        assert not list(copy_site.glob("*colab_ci*")) and not list(copy_site.glob("*colab-ci*"))
        check = subprocess.run([str(env.python), "-c", "import sys; print([type(f).__name__ for f in sys.meta_path])"],
                               capture_output=True, text=True, check=True)
        assert "DeferredCopyFinder" not in check.stdout
    finally:
        env.cleanup()
