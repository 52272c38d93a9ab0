"""The disposable environment: overlay mount, hard-link copy, system overlay, kernelspec (real venvs, real pip).

The central guarantee, tested for both ways a venv is isolated and for a venv reached through a
symlinked folder: pip installing into the run's environment never changes one byte, mode or link of
the target venv.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.execution import overlayfs
from harness.execution.environment import RunEnvironment, prepare_environment
from harness.execution.target import inspect_target
from harness.execution.kernelspec import make_kernelspec
from harness.execution.relocate import relocate_prefix
from harness.execution.venv_copy import hardlink_tree, kernel_top_levels
from tests.harness.conftest import (
    OTHER_TABULATE,
    TARGET_NUMPY,
    TARGET_TABULATE,
    base_python,
    tree_digest,
    version_in,
)

pytestmark = pytest.mark.slow

ISOLATIONS = ["overlayfs", "copy"]


def _require(isolation: str) -> None:
    if isolation == "overlayfs" and overlayfs.available() is None:
        pytest.skip(f"overlay mounts are unavailable here: {overlayfs.unavailable_reason()}")


def run_in(env: RunEnvironment, *args: str) -> subprocess.CompletedProcess[str]:
    """A command inside the run's environment, as the kernel's ``!pip`` would run it."""
    return subprocess.run(env.argv(list(args)), capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env.kernel_env()})


def version_inside(env: RunEnvironment, module: str) -> str:
    proc = run_in(env, str(env.python), "-B", "-c", f"import {module} as m; print(m.__version__)")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_missing_python_is_a_harness_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"--python .*nope does not exist\."):
        inspect_target(tmp_path / "nope")


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("reached", ["directly", "through-a-symlinked-folder"])
def test_pip_in_the_run_environment_never_touches_the_target(target_venv: Path, tmp_path: Path,
                                                            isolation: str, reached: str) -> None:
    _require(isolation)
    prefix = target_venv.parent.parent
    python = target_venv
    if reached != "directly":
        (tmp_path / "checkout").mkdir()
        (tmp_path / "checkout" / ".venv").symlink_to(prefix, target_is_directory=True)
        python = tmp_path / "checkout" / ".venv" / "bin" / "python"
    before = tree_digest(prefix)
    env = prepare_environment(python, isolation=isolation)
    try:
        assert env.mode == ("overlayfs" if isolation == "overlayfs" else "venv-copy")
        pip = run_in(env, str(env.bin / "pip"), "install", "-q", "--disable-pip-version-check",
                     f"tabulate=={OTHER_TABULATE}", "numpy==1.26.4")
        assert pip.returncode == 0, pip.stderr
        assert version_inside(env, "tabulate") == OTHER_TABULATE
        assert version_inside(env, "numpy") == "1.26.4"
        shebang = run_in(env, "/bin/sh", "-c", f'head -n 1 "{env.bin}/pip"').stdout.strip()
        assert shebang.startswith(f"#!{env.bin}/python")   # the run's pip runs the run's interpreter
    finally:
        env.cleanup()
    assert not env.workdir.exists()
    assert tree_digest(prefix) == before
    assert version_in(target_venv, "tabulate") == TARGET_TABULATE
    assert version_in(target_venv, "numpy") == TARGET_NUMPY


def test_the_overlay_holds_only_the_relocated_files_whatever_the_venv_size(target_venv: Path) -> None:
    _require("overlayfs")
    env = prepare_environment(target_venv, isolation="overlayfs")
    try:
        assert env.view is not None and env.copy_s < 1.0
        written = [p for p in env.view.upper.rglob("*") if p.is_file() or p.is_symlink()]
        assert {p.parent.name for p in written} <= {"bin", env.view.upper.name}
        assert len(written) < 60       # bin/ scripts and pyvenv.cfg; the venv holds thousands of files
        assert not any(env.root.iterdir())   # mounted only inside the run's own processes
    finally:
        env.cleanup()


def test_the_copy_is_hard_linked_with_its_scripts_rewritten_as_new_files(target_venv: Path) -> None:
    target = inspect_target(target_venv)
    env = prepare_environment(target_venv, isolation="copy")
    try:
        copy_site = env.root / target.purelib.relative_to(target.prefix)
        numpy_init = Path("numpy") / "__init__.py"
        assert os.stat(copy_site / numpy_init).st_ino == os.stat(target.purelib / numpy_init).st_ino
        pip_script = env.bin / "pip"
        assert pip_script.read_text().splitlines()[0].startswith(f"#!{env.bin}/python")
        assert os.stat(pip_script).st_ino != os.stat(target.prefix / "bin" / "pip").st_ino
        assert str(env.root) in (env.root / "pyvenv.cfg").read_text()
    finally:
        env.cleanup()


def test_forcing_overlayfs_where_it_cannot_work_is_said(target_venv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overlayfs, "_availability", "the unshare command (util-linux) is not installed")
    with pytest.raises(HarnessError, match="COLAB_CI_ISOLATION=overlayfs, but the unshare command"):
        prepare_environment(target_venv, isolation="overlayfs")
    env = prepare_environment(target_venv)   # auto: the copy, and the reason in the log line
    try:
        assert env.mode == "venv-copy" and "no overlay mount: the unshare command" in env.describe()
    finally:
        env.cleanup()


def test_keep_env_keeps_it(target_venv: Path) -> None:
    env = prepare_environment(target_venv, keep=True)
    messages: list[str] = []
    env.cleanup(log=messages.append)
    try:
        assert env.workdir.is_dir() and "--keep-env" in messages[0]
    finally:
        env.keep = False
        env.cleanup()


def test_kernelspec_runs_the_environment_with_its_bin_first_on_path(target_venv: Path, tmp_path: Path) -> None:
    env = prepare_environment(target_venv)
    try:
        spec = make_kernelspec(env, tmp_path, {"COLAB_CI_CHECKOUT": "/repo"})
        data = json.loads((spec.kernels_dir / spec.name / "kernel.json").read_text())
        assert data["argv"] == env.argv([str(env.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"])
        assert data["argv"][-5:] == [str(env.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        assert data["env"]["PATH"].split(os.pathsep)[0] == str(env.bin)
        assert data["env"]["VIRTUAL_ENV"] == str(env.root)
        assert data["env"]["COLAB_CI_CHECKOUT"] == "/repo"
    finally:
        env.cleanup()


def test_system_python_gets_an_overlay_venv_with_a_fidelity_line(capfd: pytest.CaptureFixture[str]) -> None:
    base = base_python()
    target = inspect_target(base)
    assert not target.is_venv
    had_ipykernel = target.has_ipykernel
    base_tabulate = version_in(base, "tabulate")
    env = prepare_environment(base)
    try:
        assert env.mode == "system-overlay"
        assert any("not a venv" in line and "cannot reproduce" in line for line in env.fidelity)
        if not had_ipykernel:
            assert "installing ipykernel into" in capfd.readouterr().err
        # `!pip` in the overlay installs into the overlay, not the base
        proc = run_in(env, str(env.bin / "pip"), "install", "-q", "--disable-pip-version-check",
                      f"tabulate=={OTHER_TABULATE}")
        assert proc.returncode == 0, proc.stderr
        assert version_inside(env, "tabulate") == OTHER_TABULATE
    finally:
        env.cleanup()
    assert inspect_target(base).has_ipykernel == had_ipykernel
    assert version_in(base, "tabulate") == base_tabulate


def test_deferred_copy_waits_for_imports_completes_and_leaves_no_trace(target_venv: Path) -> None:
    target = inspect_target(target_venv)
    env = prepare_environment(target_venv, defer=True, isolation="copy")
    try:
        assert env.copy is not None and env.copy.copier is not None  # numpy, pip, ... copied while a kernel starts
        # A process started now (as the kernel is) that imports a package still being copied waits for it.
        code = ("import sys; hooked = [type(f).__name__ for f in sys.meta_path][0]\n"
                "import numpy, tabulate; print(hooked, numpy.__version__, tabulate.__version__)")
        proc = subprocess.run([str(env.python), "-c", code], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["DeferredCopyFinder", TARGET_NUMPY, TARGET_TABULATE]
        env.wait_ready()
        copy_site = env.root / target.purelib.relative_to(target.prefix)
        assert sorted(os.listdir(copy_site)) == sorted(n for n in os.listdir(target.purelib))
        assert not list(copy_site.glob("*colab_ci*")) and not list(copy_site.glob("*colab-ci*"))
        check = subprocess.run([str(env.python), "-c", "import sys; print([type(f).__name__ for f in sys.meta_path])"],
                               capture_output=True, text=True, check=True, timeout=120)
        assert "DeferredCopyFinder" not in check.stdout
    finally:
        env.cleanup()


def test_tree_digest_sees_content_modes_and_links(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    (tmp_path / "link").symlink_to("a")
    first = tree_digest(tmp_path)
    os.chmod(tmp_path / "a", 0o600)
    assert tree_digest(tmp_path) != first
    assert hashlib.sha256(b"x").hexdigest() in tree_digest(tmp_path)["a"]


def _dist(site: Path, name: str, version: str, requires: list[str], top: str | None = None,
          record: list[str] | None = None) -> None:
    meta = site / f"{name}-{version}.dist-info"
    meta.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {r}" for r in requires)]
    (meta / "METADATA").write_text("\n".join(lines) + "\n\nlong description\nRequires-Dist: not-a-header\n")
    if top is not None:
        (meta / "top_level.txt").write_text(top + "\n")
    if record is not None:
        (meta / "RECORD").write_text("".join(f"{path},," + "\n" for path in record))


def test_only_requirements_whose_markers_hold_are_followed_to_the_kernels_top_levels(tmp_path: Path) -> None:
    """The kernel's dependencies (copied before the deferred rest) are read with their markers: a
    requirement for another platform, an older Python or an extra is not the kernel's."""
    site = tmp_path / "site-packages"
    _dist(site, "ipykernel", "6.29.5", [
        "comm>=0.1.1", 'Jupyter_Client; python_version >= "3.0"', 'winonly; sys_platform == "win32"',
        "docsdep; extra=='docs'", 'py2only; python_version < "3"', 'py313only; python_version >= "3.13"'],
        top="ipykernel")
    _dist(site, "comm", "0.2.2", [], record=["comm/__init__.py", "comm-0.2.2.dist-info/METADATA",
                                             "comm_speedups.cpython-311-x86_64-linux-gnu.so", "../../bin/comm"])
    _dist(site, "jupyter_client", "8.6.3", [], top="jupyter_client")
    for name in ("winonly", "docsdep", "py2only", "py313only"):
        _dist(site, name, "1.0", [], top=name)
    tops = kernel_top_levels(site, "3.11.9")
    assert tops is not None
    assert {"ipykernel", "comm", "comm_speedups", "jupyter_client"} <= tops
    assert not tops & {"winonly", "docsdep", "py2only", "py313only"}
    assert not any(t.endswith(".dist-info") for t in tops)
    assert "py313only" in (kernel_top_levels(site, "3.13.1") or set())


def test_relocation_writes_new_files_and_never_the_hard_linked_original(tmp_path: Path) -> None:
    target, copy = tmp_path / "venv", tmp_path / "copy"
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "pip").write_text(f"#!{target}/bin/python\n")
    os.chmod(target / "bin" / "pip", 0o755)
    (target / "bin" / "python").symlink_to(target / "bin" / "python3.11")
    (target / "pyvenv.cfg").write_text(f"home = /usr/bin\ncommand = /usr/bin/python3 -m venv {target}\n")
    site = target / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "extra.pth").write_text("/somewhere\n")
    hardlink_tree(target, copy)
    written = relocate_prefix(copy, copy, str(copy), [str(target)], recreate_pth=True)
    assert (copy / "bin" / "pip").read_text() == f"#!{copy}/bin/python\n"
    assert os.access(copy / "bin" / "pip", os.X_OK)
    assert os.readlink(copy / "bin" / "python") == str(copy / "bin" / "python3.11")
    assert str(copy) in (copy / "pyvenv.cfg").read_text()
    # the target is untouched: each file written is a new inode, the .pth too (pip edits those in place)
    assert (target / "bin" / "pip").read_text() == f"#!{target}/bin/python\n"
    assert os.readlink(target / "bin" / "python") == str(target / "bin" / "python3.11")
    for rel in ("bin/pip", "pyvenv.cfg", "lib/python3.11/site-packages/extra.pth"):
        assert os.stat(copy / rel).st_ino != os.stat(target / rel).st_ino
        assert copy / rel in written
    assert not [p for p in copy.rglob(".*colab-ci-*")]   # no temporary file left behind


def test_relocation_into_another_folder_writes_only_what_names_the_prefix(tmp_path: Path) -> None:
    """The overlay's way: read the lower layer, write the relocated files into the upper one."""
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "bin").mkdir(parents=True)
    (lower / "bin" / "pip").write_text(f"#!{lower}/bin/python\n")
    (lower / "bin" / "tool").write_text("#!/usr/bin/env python\n")
    (lower / "pyvenv.cfg").write_text("home = /usr/bin\n")
    upper.mkdir()
    relocate_prefix(lower, upper, "/run/merged", [str(lower)])
    assert sorted(str(p.relative_to(upper)) for p in upper.rglob("*")) == ["bin", "bin/pip"]
    assert (upper / "bin" / "pip").read_text() == "#!/run/merged/bin/python\n"
    assert (lower / "bin" / "pip").read_text() == f"#!{lower}/bin/python\n"
