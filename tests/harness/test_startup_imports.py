"""Colab's start-up imports in a real kernel: one that is installed but fails to import is a fidelity
error that reaches the report, never swallowed (the run cannot pass: its kernel does not hold what
Colab's holds, so a later replacement of that module would be judged against the wrong state)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.harness.conftest import base_python, make_notebook, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

BROKEN = "numpy._core.multiarray failed to import (a numpy whose extension does not load)"


@pytest.fixture(scope="module")
def broken_numpy_python(target_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv that sees the target venv's distributions (a ``.pth`` naming its site-packages: ipykernel,
    pip, the real numpy behind) and installs its own numpy 2.0.2 in front of them, which raises
    ImportError when imported, as a numpy whose C extension does not load does."""
    root = tmp_path_factory.mktemp("broken-numpy") / "venv"
    subprocess.run([str(base_python()), "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    site = next(root.glob("lib/python*/site-packages"))
    target_site = subprocess.run([str(target_venv), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    (site / "target-venv.pth").write_text(target_site + "\n")
    (site / "numpy").mkdir()
    (site / "numpy" / "__init__.py").write_text(f"raise ImportError({BROKEN!r})\n")
    meta = site / "numpy-2.0.2.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 2.0.2\n")
    (meta / "top_level.txt").write_text("numpy\n")
    (meta / "RECORD").write_text("numpy/__init__.py,,\n")
    return root / "bin" / "python"


def test_a_startup_module_that_fails_to_import_is_a_fidelity_error(broken_numpy_python: Path,
                                                                    tmp_path: Path) -> None:
    notebook = make_notebook(tmp_path / "nb.ipynb", [("print('the cell ran')", [])])
    out = tmp_path / "out"
    proc = run_cli("run", str(notebook), "--python", str(broken_numpy_python), "--out", str(out))
    report = json.loads((out / "report.json").read_text())
    assert proc.returncode == 2, proc.stdout + proc.stderr   # could not tell: never green
    assert report["verdict"] == "error"
    assert report["record"]["cells"][0]["status"] == "ok"
    [error] = [f for f in report["findings"] if f["severity"] == "error"]
    assert error["check"] == "corruption"
    assert error["message"].startswith(f"Colab's start-up import of numpy failed in this environment "
                                       f"(ImportError: {BROKEN})")
    [line] = [line for line in report["record"]["fidelity"] if line.startswith("import numpy failed at start-up")]
    assert BROKEN in line, report["record"]["fidelity"]
    assert "ERROR corruption: Colab's start-up import of numpy failed" in proc.stdout


def test_a_startup_module_that_is_not_installed_is_not_an_error(target_venv: Path, tmp_path: Path) -> None:
    # the target has no PIL and no psutil: absent modules are a fidelity note, not a failure to import
    notebook = make_notebook(tmp_path / "nb.ipynb", [("print('the cell ran')", [])])
    out = tmp_path / "out"
    proc = run_cli("run", str(notebook), "--python", str(target_venv), "--out", str(out))
    report = json.loads((out / "report.json").read_text())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not [f for f in report["findings"] if f["severity"] == "error"]
    assert any(line.startswith("PIL is not installed in ") for line in report["record"]["fidelity"])
