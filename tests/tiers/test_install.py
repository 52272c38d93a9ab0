"""tiers.install: real pip installs from the index into a throwaway venv (not --system-site-packages).

The venv gets numpy==2.1.3 as its "pre-installed" package; ``install`` then runs inside that venv
(through its own interpreter, PYTHONPATH pointing at the checkout's ``notebook/``) and must add a
harmless package, and refuse, leaving numpy as it was, anything that would move numpy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiers import install as install_mod

NOTEBOOK_DIR = Path(install_mod.__file__).resolve().parents[1]
NUMPY = "2.1.3"
MARK = "REPORT-JSON:"


def _run(python: Path, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(NOTEBOOK_DIR), PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONHOME", None)
    return subprocess.run([str(python), *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain venv (no system site-packages) with numpy==2.1.3 installed from the index."""
    root = tmp_path_factory.mktemp("install-venv") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(root)], check=True, timeout=300)
    python = root / "bin" / "python"
    done = _run(python, ["-m", "pip", "install", "--progress-bar", "off", f"numpy=={NUMPY}"])
    if done.returncode != 0:
        pytest.fail(f"could not install numpy=={NUMPY} into the test venv:\n{done.stdout}\n{done.stderr}")
    return python


def run_install(python: Path, call: str) -> tuple[dict, str]:
    """Run ``tiers.install.<call>`` in the venv; (report as a dict, everything it printed)."""
    script = ("import dataclasses, json\nfrom tiers.install import install\n"
              f"report = {call}\nprint({MARK!r} + json.dumps(dataclasses.asdict(report)))\n")
    done = _run(python, ["-c", script])
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output, output
    line = next(line for line in done.stdout.splitlines() if line.startswith(MARK))
    return json.loads(line[len(MARK):]), output


def dist_version(python: Path, name: str) -> str | None:
    code = ("import importlib.metadata as m\ntry:\n    print(m.version(%r))\n"
            "except m.PackageNotFoundError:\n    print('absent')\n") % name
    out = _run(python, ["-c", code]).stdout.strip()
    return None if out == "absent" else out


def numpy_imported_version(python: Path) -> str:
    return _run(python, ["-c", "import numpy; print(numpy.__version__)"]).stdout.strip()


@pytest.mark.slow
def test_adds_a_new_package_and_reports_it(venv_python: Path) -> None:
    report, output = run_install(venv_python, f"install(requirement_files=[{str(install_mod.REQUIREMENTS_COLAB)!r}])")
    assert report["ok"], output
    assert report["added"] == {"torchinfo": "1.8.0"}
    assert report["changed"] == {} and report["removed"] == {}
    assert report["duration_s"] > 0 and "-c" in report["command"]
    assert "Successfully installed torchinfo-1.8.0" in output  # streamed for the harness
    assert "Collecting torchinfo==1.8.0" in output  # kept by quiet=True: the harness reads who pulled what
    assert "installed: added torchinfo 1.8.0" in output
    assert dist_version(venv_python, "torchinfo") == "1.8.0"


@pytest.mark.slow
def test_no_deps_install(venv_python: Path) -> None:
    report, output = run_install(venv_python, "install(['six==1.17.0'], no_deps=True)")
    assert report["ok"] and report["added"] == {"six": "1.17.0"}, output
    assert "--no-deps" in report["command"]


@pytest.mark.slow
def test_direct_numpy_move_is_refused(venv_python: Path) -> None:
    report, output = run_install(venv_python, "install(['numpy==2.0.2'])")
    assert not report["ok"]
    assert report["blocked_by"] == {"numpy": NUMPY}
    assert "pre-installed numpy 2.1.3" in report["message"] and "nothing was changed" in report["message"]
    assert "INSTALL FAILED" in output and "+---" in output
    assert report["added"] == {} and report["changed"] == {} and report["removed"] == {}
    assert dist_version(venv_python, "numpy") == NUMPY and numpy_imported_version(venv_python) == NUMPY


@pytest.mark.slow
def test_package_capped_below_numpy_2_is_refused(venv_python: Path) -> None:
    """captum 0.8.0's metadata says ``Requires-Dist: numpy<2.0``: unguarded, pip would downgrade numpy."""
    report, output = run_install(venv_python, "install(['captum==0.8.0'])")
    assert not report["ok"], output
    assert report["blocked_by"] == {"numpy": NUMPY}
    assert "captum 0.8.0 depends on numpy<2.0" in report["message"]
    assert "pick a release of captum that supports numpy 2.1.3" in report["message"]
    assert dist_version(venv_python, "numpy") == NUMPY and numpy_imported_version(venv_python) == NUMPY
    assert dist_version(venv_python, "captum") is None


@pytest.mark.slow
def test_pip_error_is_a_box_not_a_traceback(venv_python: Path) -> None:
    report, output = run_install(venv_python, "install(['not a requirement!!'])")
    assert not report["ok"] and report["returncode"] == 1
    assert report["message"] == "pip install failed (exit code 1): Invalid requirement: 'not a requirement!!'"
    assert "INSTALL FAILED" in output


# ------------------------------------------------------------------------ in-process, no pip run


def test_constraints_skip_what_pip_cannot_parse() -> None:
    text = install_mod.constraints_text({"numpy": "2.1.3", "torch": "2.13.0+cpu", "bad name": "1.0",
                                         "weird": "not.a.version!", "zope-interface": "7.0"})
    pins = [line for line in text.splitlines() if not line.startswith("#")]
    assert pins == ["numpy==2.1.3", "torch==2.13.0+cpu", "zope-interface==7.0"]


def test_installed_distributions_are_canonical() -> None:
    found = install_mod.installed_distributions()
    assert "torch" in found and all(name == install_mod.canonicalize(name) for name in found)


def test_not_installed_judges_names_versions_and_markers_only() -> None:
    installed = {"numpy": "2.1.3", "captum": "0.9.0", "torch": "2.8.0+cu126"}
    assert install_mod.not_installed(["captum==0.9.0", "numpy>=2", "torch==2.8.0", "Captum"], installed) == []
    assert install_mod.not_installed(["captum==99.0.0", "optuna", "numpy<2"], installed) == \
        ["captum==99.0.0", "optuna", "numpy<2"]
    # markers that exclude this interpreter, paths, URLs and options are pip's to judge (its exit status)
    assert install_mod.not_installed(['optuna; python_version < "3"', "./local", "git+https://x/y.git", "-U"],
                                     installed) == []


def test_the_result_is_published_for_the_harness(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[dict] = []
    import IPython
    import IPython.display

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda bundle, raw: shown.append(bundle))
    report = install_mod.InstallReport({}, {}, {}, 1.5, False, "pip install failed (exit code 1): ...", returncode=1,
                                       pip_lines=["Collecting captum==99.0.0", "ERROR: No matching distribution "
                                                  "found for captum==99.0.0"], not_installed=["captum==99.0.0"])
    payload = install_mod.publish_result(report, ["captum==99.0.0"], [])
    assert shown == [{install_mod.INSTALL_MIME: payload, "text/plain": ""}]
    assert payload["schema_version"] == 1 and payload["ok"] is False and payload["returncode"] == 1
    assert payload["pip_messages"] == ["ERROR: No matching distribution found for captum==99.0.0"]
    assert payload["requirements"] == ["captum==99.0.0"] and payload["not_installed"] == ["captum==99.0.0"]


def test_pip_exiting_0_without_installing_the_requirement_is_a_failure(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    """``--dry-run`` makes a real pip resolve (from a local wheel, offline), exit 0 and install nothing."""
    from tests.harness.tiny_wheels import tiny_wheel

    tiny_wheel(tmp_path, "colabci-tiny", "1.0")
    report = install_mod.install(["colabci-tiny==1.0"],
                                 extra_args=["--dry-run", "--no-index", "--find-links", str(tmp_path)])
    assert report.returncode == 0 and not report.ok
    assert report.not_installed == ["colabci-tiny==1.0"]
    assert "pip exited 0, but colabci-tiny==1.0 is not installed afterwards" in report.message
    assert "INSTALL FAILED" in capsys.readouterr().out


def test_nothing_to_install_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert install_mod.install().ok
    report = install_mod.install(requirement_files=[str(tmp_path / "nope.txt")])
    assert not report.ok and "nope.txt does not exist" in report.message
    assert "INSTALL FAILED" in capsys.readouterr().out


def test_a_requirements_file_given_as_a_url_is_pip_s_to_fetch(tmp_path: Path) -> None:
    """The template outside a checkout (in Colab) names its requirements file by URL: pip reads it (here a
    file:// URL, offline); it was refused as a file that "does not exist", so nothing was installed."""
    from tests.harness.tiny_wheels import tiny_wheel

    tiny_wheel(tmp_path, "colabci-tiny", "1.0")
    (tmp_path / "requirements.txt").write_text("colabci-tiny==1.0\n")
    report = install_mod.install(requirement_files=[(tmp_path / "requirements.txt").as_uri()],
                                 extra_args=["--dry-run", "--no-index", "--find-links", str(tmp_path)])
    assert "does not exist" not in report.message
    assert report.returncode == 0, report.message   # pip fetched the file and resolved what it names


def test_restart_recovery_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(install_mod, "install", lambda *a, **k: calls.append(k) or "report")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    assert install_mod.restart_recovery(str(tmp_path)) is None  # torchinfo is installed here
    assert install_mod.restart_recovery(str(tmp_path)) is None
    assert sys.path.count(str(tmp_path)) == 1 and calls == []
    real_find_spec = install_mod.importlib.util.find_spec
    monkeypatch.setattr(install_mod.importlib.util, "find_spec",
                        lambda name, *a: None if name == "torchinfo" else real_find_spec(name, *a))
    assert install_mod.restart_recovery(str(tmp_path)) == "report"
    assert calls == [{"requirement_files": [str(install_mod.REQUIREMENTS_COLAB)]}]
