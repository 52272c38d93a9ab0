"""Mirrors built ahead of the matrix (``matrix --build-only``, what ``make ci-colab`` starts beside
preflight) and runs that start while other mirrors still build: real uv builds of tiny profiles, real
runs. Orders are read from the progress events the matrix shows, never from the wall clock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.core import progress
from harness.images import build as build_module
from harness.images.build import BUILD_FILE, build_env
from harness.images.closure import Pin
from harness.images.profiles import Profile, save_profile
from harness.matrix import run as matrix_module
from harness.matrix.run import matrix
from tests.harness.conftest import make_notebook

REPO_ROOT = Path(__file__).resolve().parents[2]
OWN = "3.11.7"


def _tiny(name: str, six: str) -> Profile:
    return Profile(name=name, date="2026-01-15", runtime="cpu", python=OWN, os="", source={}, platform="",
                   roots={}, pins=[Pin("six", six, ["(root)"])], outside_image={}, gpu_only={}, dropped=[],
                   image={"six": six}, freeze_sha256="", closure={})


class Recorded:
    """A display that keeps every event, in the order shown (from any thread)."""

    def __init__(self) -> None:
        self.events: list[progress.Event] = []
        self.lock = threading.Lock()
        self.shown = threading.Condition(self.lock)

    def show(self, event: progress.Event) -> None:
        with self.lock:
            self.events.append(event)
            self.shown.notify_all()

    def close(self) -> None:
        pass

    def index(self, scope: str, starts: str) -> int:
        with self.lock:
            return next((i for i, e in enumerate(self.events) if e.scope == scope and e.message.startswith(starts)), -1)

    def wait_for(self, scope: str, starts: str, timeout: float) -> bool:
        with self.shown:
            return self.shown.wait_for(lambda: any(e.scope == scope and e.message.startswith(starts)
                                                   for e in self.events), timeout=timeout)


# Two builders of one mirror (the matrix and the prebuild beside preflight) build it once:
# tests/harness/test_build_envs.py::test_two_processes_building_one_mirror_build_it_once.


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_matrix_finds_the_prebuilt_mirror_up_to_date_and_does_not_rebuild_it(tmp_path: Path):
    """``matrix --build-only`` builds what the matrix would run in and runs nothing; the matrix then
    finds that very mirror (its build record untouched) and runs in it."""
    save_profile(_tiny("tiny-prebuilt", "1.16.0"), tmp_path / "profiles")
    notebook = make_notebook(tmp_path / "uses-six.ipynb", [("import six\nprint(six.__version__)", [])])
    common = [str(notebook), "--images", "tiny-prebuilt", "--mode", "local", "--profiles-dir",
              str(tmp_path / "profiles"), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]

    def harness(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness", "matrix", *args], capture_output=True, text=True,
                              timeout=500, cwd=tmp_path, env={**os.environ, "CI": "true"})

    prebuilt = harness(*common, "--build-only")
    assert prebuilt.returncode == 0, prebuilt.stdout + prebuilt.stderr
    assert "tiny-prebuilt: " in prebuilt.stdout and "(built, " in prebuilt.stdout
    assert not (tmp_path / "out").exists()          # nothing ran
    records = list((tmp_path / "cache" / "envs").glob(f"*/{BUILD_FILE}"))
    assert len(records) == 1
    before = records[0].stat().st_mtime_ns, records[0].read_text()

    ran = harness(*common, "--baselines", str(tmp_path / "none"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "environment up to date, build skipped" in ran.stderr, ran.stderr
    assert "building (" not in ran.stderr, ran.stderr
    assert (records[0].stat().st_mtime_ns, records[0].read_text()) == before
    report = json.loads((tmp_path / "out" / "tiny-prebuilt" / "report.json").read_text())
    assert report["verdict"] == "pass"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_an_images_run_starts_while_another_images_mirror_still_builds(tmp_path: Path, monkeypatch):
    """Mirrors built one at a time here (BUILD_JOBS 1): the first image's run starts before the second
    image's mirror is built. The second build waits (up to 120 s) for the first run's start: before
    runs overlapped builds it never came, and the order of events said so."""
    shown = Recorded()
    first, second = _tiny("first", "1.17.0"), _tiny("second", "1.16.0")
    real_build_env = build_module.build_env

    def build_env_after_first_run(profile, **kwargs):
        if profile.name == "second":
            shown.wait_for("first", "running ", timeout=120)
        return real_build_env(profile, **kwargs)

    monkeypatch.setattr(build_module, "build_env", build_env_after_first_run)
    monkeypatch.setattr(matrix_module, "BUILD_JOBS", 1)
    notebook = make_notebook(tmp_path / "ok.ipynb", [("print(1 + 1)", [])])
    runs = matrix([first, second], notebook, tmp_path / "out", cache_dir=tmp_path / "cache", mode="local",
                  baselines=None, shown=shown)
    assert [r.verdict for r in runs] == ["pass", "pass"], [(r.image, r.error) for r in runs]
    first_run, second_built = shown.index("first", "running "), shown.index("second", "built in ")
    assert 0 <= first_run < second_built, [(e.scope, e.message) for e in shown.events]
    assert shown.index("second", "running ") > second_built


@pytest.mark.timeout(300)
def test_the_mirror_is_compiled_once_but_its_distributions_test_suites(tmp_path: Path):
    """Every module the kernel may import has its .pyc (PYTHONDONTWRITEBYTECODE: the kernel writes none);
    a distribution's own tests/ is left to compile on import, should a notebook ever import it."""
    profile = Profile(name="compiled", date="2026-01-15", runtime="cpu", python=OWN, os="", source={}, platform="",
                      roots={}, pins=[Pin("jsonschema-specifications", "2025.9.1", ["(root)"])], outside_image={},
                      gpu_only={}, dropped=[], image={"jsonschema-specifications": "2025.9.1"}, freeze_sha256="",
                      closure={})
    built = build_env(profile, cache_dir=tmp_path, mode="local", log=lambda _line: None)
    package = next(built.path.glob("lib/python*/site-packages/jsonschema_specifications"))
    compiled = {p.name.split(".")[0] for p in (package / "__pycache__").glob("*.pyc")}
    assert {"__init__", "_core"} <= compiled
    assert not list((package / "tests").rglob("*.pyc"))
    ipykernel = next(built.path.glob("lib/python*/site-packages/ipykernel"))   # the last step's installs too
    assert list((ipykernel / "__pycache__").glob("kernelapp.*.pyc"))


@pytest.mark.timeout(300)
def test_a_file_two_mirrors_share_is_compiled_once_and_its_pyc_is_valid_in_both(tmp_path: Path, monkeypatch):
    """uv links the same release's files from its cache into every mirror: the second mirror links the
    first one's .pyc for them (one inode), and its interpreter takes it as up to date (it would write a
    new one, a new inode, if it were stale)."""
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv"))   # uv's cache on the mirrors' file system
    spec = Pin("jsonschema-specifications", "2025.9.1", ["(root)"])

    def profile(name: str, six: str) -> Profile:
        return Profile(name=name, date="2026-01-15", runtime="cpu", python=OWN, os="", source={}, platform="",
                       roots={}, pins=[spec, Pin("six", six, ["(root)"])], outside_image={}, gpu_only={},
                       dropped=[], image={"jsonschema-specifications": "2025.9.1", "six": six}, freeze_sha256="",
                       closure={})

    lines: list[str] = []
    one = build_env(profile("one", "1.17.0"), cache_dir=tmp_path / "cache", mode="local", log=lines.append)
    two = build_env(profile("two", "1.16.0"), cache_dir=tmp_path / "cache", mode="local", log=lines.append)

    first, second = (next(e.glob("lib/python*/site-packages/jsonschema_specifications/__pycache__/_core.*.pyc"))
                     for e in (one.path, two.path))
    assert first.stat().st_ino == second.stat().st_ino, lines
    assert any(line.startswith("one: bytecode compiled in") and "(0 files'" in line for line in lines), lines
    assert any(line.startswith("two: bytecode compiled in") and "(0 files'" not in line for line in lines), lines
    # six differs between them: each mirror has its own six.pyc
    six_one, six_two = (next(e.glob("lib/python*/site-packages/__pycache__/six.*.pyc")) for e in (one.path, two.path))
    assert six_one.stat().st_ino != six_two.stat().st_ino
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    # the import system's own check of the .pyc (source mtime and size), without running the module
    check = ("import importlib.machinery as m, sys; m.SourceFileLoader('core', sys.argv[1]).get_code('core')")
    done = subprocess.run([str(two.python), "-c", check, str(second.parent.parent / "_core.py")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert second.stat().st_ino == first.stat().st_ino   # not rewritten: valid for the second mirror's path


@pytest.mark.serial
@pytest.mark.timeout(300)
def test_a_matrix_interrupted_while_it_builds_begins_no_more_builds_and_runs_nothing(tmp_path: Path, monkeypatch,
                                                                                     request):
    """Ctrl-C (or SIGTERM) while the mirrors build: the build under way ends, the next is not begun, no
    run starts, and the matrix returns every leg with what happened to it (its reports are written)."""
    interrupted = threading.Event()
    real_build_env = build_module.build_env
    # interrupt_main() does nothing where SIGINT is ignored (a test runner started with `nohup ... &`)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))

    def build_env_interrupted(profile, **kwargs):
        if profile.name == "first":
            import _thread
            _thread.interrupt_main()            # Ctrl-C reaches the matrix's thread ...
            assert interrupted.wait(60)         # ... while this build is under way
        return real_build_env(profile, **kwargs)

    monkeypatch.setattr(build_module, "build_env", build_env_interrupted)
    monkeypatch.setattr(matrix_module, "BUILD_JOBS", 1)
    notebook = make_notebook(tmp_path / "ok.ipynb", [("print(1 + 1)", [])])
    shown = Recorded()
    runs = matrix([_tiny("first", "1.17.0"), _tiny("second", "1.16.0")], notebook, tmp_path / "out",
                  cache_dir=tmp_path / "cache", mode="local", baselines=None, shown=shown, interrupted=interrupted)
    assert interrupted.is_set()
    said = [(e.scope, e.message) for e in shown.events]
    assert [r.error for r in runs] == ["not run: the matrix was interrupted",
                                       "environment build failed: second: not built: the matrix was interrupted"], said
    assert shown.index("first", "built in ") >= 0 and shown.index("second", "building (") == -1
    assert shown.index("first", "running ") == -1 and not (tmp_path / "out" / "first").exists()
