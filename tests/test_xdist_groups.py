"""`make test` spreads the suite over pytest-xdist workers; tests sharing a module-scoped fixture (a built
mirror, a dozen real runs) must stay on one worker, so the fixture is built once (tests/conftest.py).

pytest 9.2 silently broke xdist's grouping (pytest-xdist#1386: its ``@group`` node-id suffix no longer
takes), which made the suite build every such fixture once per worker; pyproject.toml bounds pytest below
it. This test is what says when the bound can go: a real inner pytest run with two workers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

MODULE = '''
import os, pytest
from pathlib import Path

@pytest.fixture(scope="module")
def built():
    with open(Path(__file__).with_name("built.txt"), "a") as log:
        log.write(os.environ.get("PYTEST_XDIST_WORKER", "main") + "\\n")

@pytest.mark.parametrize("n", range(6))
def test_shares_the_fixture(built, n):
    with open(Path(__file__).with_name("ran.txt"), "a") as log:
        log.write(os.environ.get("PYTEST_XDIST_WORKER", "main") + "\\n")

@pytest.mark.parametrize("n", range(6))
def test_alone(n):
    pass
'''


@pytest.mark.timeout(180)
def test_tests_sharing_a_module_fixture_run_on_one_worker_and_build_it_once(tmp_path: Path):
    (tmp_path / "test_grouped.py").write_text(MODULE)
    (tmp_path / "none.toml").write_text("[tool.pytest.ini_options]\n")   # not the repository's addopts
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
                           "-n", "2", "--dist", "loadgroup", "-q", "-c", str(tmp_path / "none.toml"),
                           "--rootdir", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, timeout=150, cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert len((tmp_path / "built.txt").read_text().split()) == 1      # built once ...
    assert len(set((tmp_path / "ran.txt").read_text().split())) == 1   # ... because its tests ran on one worker
