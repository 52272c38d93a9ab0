"""The release check (.github/scripts/release_check.py), the script release.yml runs on a version tag, run here.

For real: `python -m build` makes the sdist and wheel of colab-ci and colab-ci-tiers, each kind is installed
by uv in a fresh venv outside the checkout (with pip's find-links, as tests/test_package.py installs), and
the installed `colab-ci --version` and `colab-ci run` on a small notebook must work. A tag that is not the
version of both distributions fails before anything is built.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import harness
from harness.images.uvtool import pip_find_links

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / ".github" / "scripts" / "release_check.py"
VERSION = harness.__version__


def release_check(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT)


@pytest.mark.parametrize("tag", ["v9.9.9", VERSION, f"v{VERSION}.1", f"release-{VERSION}"])
def test_a_tag_that_is_not_the_version_fails_before_anything_is_built(tmp_path: Path, tag: str):
    done = release_check("--tag", tag, "--dist", str(tmp_path / "dist"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "release-check: FAIL: tag" in done.stdout
    assert not (tmp_path / "dist").exists()


def copy_of_the_versions(root: Path, tiers_pyproject: str | None = None) -> Path:
    """The three files the check reads the versions from, copied; notebook/pyproject.toml's version replaced."""
    for relative in ("harness/__init__.py", "notebook/pyproject.toml", "notebook/tiers/__init__.py"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / relative, root / relative)
    if tiers_pyproject:
        path = root / "notebook" / "pyproject.toml"
        text = path.read_text()
        assert f'version = "{VERSION}"' in text
        path.write_text(text.replace(f'version = "{VERSION}"', f'version = "{tiers_pyproject}"'))
    return root


def test_a_tiers_distribution_of_another_version_fails_the_tag(tmp_path: Path):
    root = copy_of_the_versions(tmp_path / "checkout", tiers_pyproject="9.0.0")
    done = release_check("--tag", f"v{VERSION}", "--dist", str(tmp_path / "dist"), "--root", str(root))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"tag v{VERSION} names {VERSION}, but colab-ci-tiers (notebook/pyproject.toml) is '9.0.0'" in done.stdout
    assert "harness/__init__.py" not in done.stdout.split("but", 1)[1]     # only what differs is named
    assert not (tmp_path / "dist").exists()


def test_a_dist_folder_with_files_in_it_is_refused(tmp_path: Path):
    """A stale file left in dist/ would be published with the release: could not check, nothing built."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "colab_ci-0.0.1-py3-none-any.whl").write_bytes(b"stale")
    done = release_check("--tag", f"v{VERSION}", "--dist", str(dist))
    assert done.returncode == 2 and "is not empty" in done.stdout
    assert sorted(p.name for p in dist.iterdir()) == ["colab_ci-0.0.1-py3-none-any.whl"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_release_check_builds_installs_and_runs_both_distributions(tmp_path: Path):
    dist, work = tmp_path / "dist", tmp_path / "work"
    links = [arg for link in pip_find_links() for arg in ("--find-links", link)]
    done = release_check("--tag", f"v{VERSION}", "--dist", str(dist), "--work", str(work), *links, timeout=840)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert sorted(p.name for p in dist.iterdir()) == [
        f"colab_ci-{VERSION}-py3-none-any.whl", f"colab_ci-{VERSION}.tar.gz",
        f"colab_ci_tiers-{VERSION}-py3-none-any.whl", f"colab_ci_tiers-{VERSION}.tar.gz"]
    for kind in ("wheel", "sdist"):
        assert f"release-check: {kind}: colab-ci {VERSION}\n" in done.stdout
        assert f"release-check: {kind}: colab-ci run passed; the kernel imported tiers and harness {VERSION}" in done.stdout
        assert (work / f"{kind}-run" / "out" / "report.json").is_file()
        assert (work / f"{kind}-venv" / "bin" / "colab-ci").is_file()
    assert done.stdout.rstrip().endswith("is ready to publish")
