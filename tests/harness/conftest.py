"""Fixtures for the execution tests: a real target venv, fixture notebooks, the CLI."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.conftest import built_once
from tests.harness import alert_runs

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"

# The target venv: numpy 2.0.2 (what Colab shipped when the '_center' reports came in), ipykernel,
# and tabulate, which no kernel imports (the "changed but never imported" case).
TARGET_NUMPY = "2.0.2"
UPGRADE_NUMPY = "2.1.3"     # 2.0.2 in memory + 2.1.3 on disk: np.char -> cannot import name '_center'
DOWNGRADE_NUMPY = "1.26.4"  # 2.0.2 in memory + 1.26.4 on disk: numpy.random -> dtype size changed
TARGET_TABULATE = "0.8.10"
OTHER_TABULATE = "0.10.0"


def base_python() -> Path:
    """The interpreter the test venv was made from (not a venv itself)."""
    out = subprocess.run([sys.executable, "-c", "import sys; print(sys._base_executable)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return Path(out)


@pytest.fixture(scope="session")
def target_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain venv with numpy==2.0.2, ipykernel and tabulate==0.8.10, one for every xdist worker (no test
    writes into it: tests/harness/test_target_untouched.py); returns its python."""
    def build(folder: Path) -> None:
        subprocess.run([str(base_python()), "-m", "venv", str(folder / "venv")], check=True, timeout=300)
        subprocess.run([str(folder / "venv" / "bin" / "python"), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", f"numpy=={TARGET_NUMPY}", "ipykernel",
                        f"tabulate=={TARGET_TABULATE}"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    return built_once(tmp_path_factory, "target", build) / "venv" / "bin" / "python"


@pytest.fixture(scope="session")
def colab_ci_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One colab-ci cache (mirrors, metadata environments) for every test that only reads what it holds:
    each mirror or metadata environment is built once per test run, by whichever test asks first (the
    harness's own build lock serialises xdist workers asking for the same one)."""
    return built_once(tmp_path_factory, "colab-ci-cache", lambda _folder: None)


def version_in(python: Path, module: str) -> str:
    """``module.__version__`` as the interpreter ``python`` itself sees it (or 'absent'); ``-B`` so
    that asking writes no .pyc into the environment being compared."""
    code = (f"try:\n import {module} as m; print(m.__version__)\n"
            "except ImportError:\n print('absent')")
    return subprocess.run([str(python), "-B", "-c", code], capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip()


def tree_digest(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (followed if ``root`` is a symlink): relative path -> mode and
    content hash (files), link target (symlinks) or mode (folders). Equal digests: nothing written."""
    root = Path(os.path.realpath(root))
    digest: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = os.lstat(path)
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                digest[rel] = f"-> {os.readlink(path)}"
            elif stat.S_ISDIR(st.st_mode):
                digest[rel] = f"dir {st.st_mode:o}"
            else:
                digest[rel] = f"{st.st_mode:o} {hashlib.sha256(path.read_bytes()).hexdigest()}"
    return digest


def make_notebook(path: Path, cells: list[tuple[str, list[str]]]) -> Path:
    """Write a notebook of code cells ``(source, tags)``."""
    nb = nbformat.v4.new_notebook()
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def ctrl_c_as_from_a_terminal() -> None:
    """``preexec_fn`` for a run the test will Ctrl-C: SIGINT at its default, as a terminal starts it. A test
    runner started in the background (``nohup make test &``) ignores SIGINT, every child inherits that,
    and an ignored SIGINT never reaches the run (it then waits out its test's limit)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m harness ARGS`` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_ROOT)


def stream_text(cell: dict) -> str:
    """A cell's stdout/stderr as one string (on disk, nbformat stores it as a list of lines)."""
    texts = (o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    return "".join("".join(t) if isinstance(t, list) else t for t in texts)


# -- workflow-run folders for aggregate and alert ------------------------------------------------------

@pytest.fixture(scope="session")
def preflights(tmp_path_factory) -> dict[str, Path]:
    return alert_runs.cached_preflights(tmp_path_factory.getbasetemp())


@pytest.fixture()
def runs(tmp_path: Path, preflights: dict[str, Path]):
    """``runs(name, {image: recorded run}, smoke=..., preflight=...)``: one workflow run's folder."""
    def build(name: str, images: dict[str, str], smoke: str | None = "local_pass", preflight: str | None = "ok") -> Path:
        return alert_runs.make_run(tmp_path / name, images, smoke, preflights[preflight] if preflight else None)
    return build
