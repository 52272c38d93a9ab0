#!/usr/bin/env python3
"""Build and verify a release of colab-ci: what .github/workflows/release.yml runs before publishing.

    python .github/scripts/release_check.py --tag v0.2.0 [--dist dist] [--work DIR] [--find-links URL ...]

1. The tag names the version of both distributions: ``colab-ci`` (``harness.__version__``) and
   ``colab-ci-tiers`` (notebook/pyproject.toml, and ``tiers.__version__``, which the notebook prints).
2. ``python -m build`` makes the sdist and the wheel of each (the wheel from the sdist, so a file
   missing from the sdist fails here, not on a user's machine) into ``--dist``, which must be empty.
3. Each kind (wheels, then sdists) is installed with uv into a fresh venv outside the checkout;
   ``colab-ci --version`` must name the version, and ``colab-ci run`` must run a small notebook (in
   that venv's own kernel) that imports ``tiers`` and ``harness`` from the venv, not from a checkout.

Needs Python >= 3.11 (tomllib), ``build`` (pip install build) and ``uv`` on PATH or beside this
interpreter. ``--find-links`` is handed to uv (the test suite passes pip's configured folders).
Exit status: 0 the files in --dist are ready to publish; 1 a check failed (the tag and a version
differ, a file is missing, the installed command or the notebook failed); 2 could not check (a tool
missing, --dist not empty, a build or an install failed).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

# The exit codes of harness/core/verdicts.py (this script runs before anything is installed).
EXIT_OK, EXIT_FAIL, EXIT_HARNESS = 0, 1, 2
REPO_ROOT = Path(__file__).resolve().parents[2]
# distribution -> (its folder in the checkout, its file-name stem in sdist and wheel names)
DISTRIBUTIONS = {"colab-ci": (".", "colab_ci"), "colab-ci-tiers": ("notebook", "colab_ci_tiers")}
MARKER = "release-check:"          # the notebook's printed line starts with it


class CheckFailed(Exception):
    """A release check failed (exit 1)."""


class CannotCheck(Exception):
    """The check could not be made (exit 2)."""


def say(message: str) -> None:
    print(f"release-check: {message}", flush=True)


# ------------------------------------------------------------------------------------------- versions

def assigned_version(path: Path) -> str:
    """The string assigned to ``__version__`` in a module, read without importing it."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value
    raise CannotCheck(f"{path}: no __version__ = '...'")


def versions(root: Path) -> dict[str, str]:
    """Each place a version is written, by what it is: they must all equal the tag's."""
    tiers = tomllib.loads((root / "notebook" / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {
        "colab-ci (harness/__init__.py __version__)": assigned_version(root / "harness" / "__init__.py"),
        "colab-ci-tiers (notebook/pyproject.toml)": str(tiers.get("version", "")),
        "tiers.__version__ (notebook/tiers/__init__.py)": assigned_version(root / "notebook" / "tiers" / "__init__.py"),
    }


def version_of_tag(tag: str, root: Path) -> str:
    """The version the tag names, once every version in the checkout equals it."""
    match = re.fullmatch(r"v(\d+(?:\.\d+)*(?:(?:a|b|rc|\.post|\.dev)\d+)*)", tag)
    if not match:
        raise CheckFailed(f"tag {tag!r} is not v<version> (e.g. v0.2.0)")
    wanted = match.group(1)
    found = versions(root)
    wrong = {where: version for where, version in found.items() if version != wanted}
    if wrong:
        raise CheckFailed(f"tag {tag} names {wanted}, but " + "; ".join(f"{w} is {v!r}" for w, v in wrong.items()))
    return wanted


# ------------------------------------------------------------------------------------------- build

def run(args: list[str], *, cwd: Path, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    say("$ " + " ".join(args))
    try:
        return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        raise CannotCheck(f"{args[0]} took more than {timeout:.0f} s") from exc


def expected_files(version: str) -> dict[str, dict[str, str]]:
    """distribution -> {"sdist": file name, "wheel": file name} (PEP 625 and PEP 427 names)."""
    return {name: {"sdist": f"{stem}-{version}.tar.gz", "wheel": f"{stem}-{version}-py3-none-any.whl"}
            for name, (_, stem) in DISTRIBUTIONS.items()}


def build(root: Path, dist: Path, version: str) -> dict[str, dict[str, Path]]:
    if dist.exists() and any(dist.iterdir()):
        raise CannotCheck(f"{dist} is not empty: a stale file there would be published too")
    dist.mkdir(parents=True, exist_ok=True)
    for name, (folder, _) in DISTRIBUTIONS.items():
        done = run([sys.executable, "-m", "build", "--outdir", str(dist), str(root / folder)], cwd=root, timeout=900)
        if done.returncode != 0:
            if "No module named build" in done.stderr:
                raise CannotCheck("`build` is not installed: pip install build")
            raise CannotCheck(f"python -m build {folder} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    want = expected_files(version)
    made = sorted(p.name for p in dist.iterdir())
    missing = sorted({f for files in want.values() for f in files.values()} - set(made))
    extra = sorted(set(made) - {f for files in want.values() for f in files.values()})
    if missing or extra:
        raise CheckFailed(f"{dist} holds {made}: missing {missing}, unexpected {extra}")
    say(f"built {', '.join(made)}")
    return {name: {kind: dist / file for kind, file in files.items()} for name, files in want.items()}


# ------------------------------------------------------------------------------------------- verify

def uv() -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if not found:
        raise CannotCheck("uv is not on PATH (pip install uv)")
    return found


def outside_environment(work: Path) -> dict[str, str]:
    """This environment without what would let a checkout leak in (PYTHONPATH, COLAB_CI_CHECKOUT)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COLAB_CI_CHECKOUT", "VIRTUAL_ENV")}
    env["HOME"] = env.get("HOME", str(work))
    return env


def notebook(path: Path) -> Path:
    """One code cell: where the kernel imports tiers and harness from, on a line starting with MARKER."""
    source = ("import harness, tiers\n"
              f"print({MARKER!r}, tiers.__version__, tiers.__file__, harness.__version__, harness.__file__)\n")
    cell = {"cell_type": "code", "execution_count": None, "id": "release-check", "metadata": {}, "outputs": [],
            "source": source}
    nb = {"cells": [cell], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                       "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def printed_line(executed: Path) -> list[str]:
    """The words of the notebook's MARKER line in the executed notebook."""
    try:
        nb = json.loads(executed.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckFailed(f"no readable executed notebook at {executed}: {exc}") from exc
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            for line in text.splitlines():
                if line.startswith(MARKER):
                    return line.split()[1:]
    raise CheckFailed(f"{executed}: the notebook printed no {MARKER!r} line")


def verify(kind: str, files: dict[str, dict[str, Path]], version: str, work: Path, find_links: list[str],
           root: Path) -> None:
    """Install the ``kind`` files of both distributions in a fresh venv; run the command and a notebook."""
    venv = work / f"{kind}-venv"
    env = outside_environment(work)
    links = [arg for link in find_links for arg in ("--find-links", link)]
    for args, timeout in (([uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], 120),
                          ([uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *links,
                            *(str(files[name][kind]) for name in DISTRIBUTIONS)], 900)):
        done = run(args, cwd=work, timeout=timeout, env=env)
        if done.returncode != 0:
            raise CannotCheck(f"installing the {kind}s failed:\n{done.stderr[-3000:]}")
    command = venv / "bin" / "colab-ci"
    done = run([str(command), "--version"], cwd=work, timeout=120, env=env)
    if done.returncode != 0 or done.stdout.strip() != f"colab-ci {version}":
        raise CheckFailed(f"{command} --version said {done.stdout.strip()!r} (exit {done.returncode}), "
                          f"not 'colab-ci {version}': {done.stderr[-2000:]}")
    say(f"{kind}: {done.stdout.strip()}")
    folder = work / f"{kind}-run"
    notebook(folder / "check.ipynb")
    done = run([str(command), "run", "check.ipynb", "--out", "out", "--timeout", "300"], cwd=folder, timeout=420,
               env=env)
    if done.returncode != 0:
        raise CheckFailed(f"colab-ci run exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    # The kernel runs in a disposable copy of the venv (docs/harness.md): its site-packages, not a checkout.
    tiers_version, tiers_file, harness_version, harness_file = printed_line(folder / "out" / "executed.ipynb")
    for what, got, where in (("tiers", tiers_version, tiers_file), ("harness", harness_version, harness_file)):
        installed = "site-packages" in Path(where).parts and not Path(where).resolve().is_relative_to(root)
        if got != version or not installed:
            raise CheckFailed(f"the notebook imported {what} {got} from {where}, not {version} as installed")
    say(f"{kind}: colab-ci run passed; the kernel imported tiers and harness {version} from site-packages "
        f"({Path(tiers_file).parent.parent})")


# ------------------------------------------------------------------------------------------- main

def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", required=True, help="the release tag, v<version> (the workflow: GITHUB_REF_NAME)")
    parser.add_argument("--dist", type=Path, default=Path("dist"), help="where the four files are built (empty)")
    parser.add_argument("--work", type=Path, help="the venvs and notebook runs (default: a temporary folder)")
    parser.add_argument("--find-links", action="append", default=[], metavar="URL", help="handed to uv pip install")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)   # the tests' copies
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        version = version_of_tag(args.tag, args.root)
        say(f"tag {args.tag}: colab-ci and colab-ci-tiers {version}")
        files = build(args.root, args.dist.resolve(), version)
        with tempfile.TemporaryDirectory(prefix="colab-ci-release-") as temporary:
            work = (args.work or Path(temporary)).resolve()
            work.mkdir(parents=True, exist_ok=True)
            if work.is_relative_to(args.root.resolve()):
                raise CannotCheck(f"--work {work} lies in the checkout: the installed files must be run outside it")
            for kind in ("wheel", "sdist"):
                verify(kind, files, version, work, args.find_links, args.root.resolve())
    except CheckFailed as exc:
        say(f"FAIL: {exc}")
        return EXIT_FAIL
    except CannotCheck as exc:
        say(f"could not check: {exc}")
        return EXIT_HARNESS
    say(f"pass: {args.dist} is ready to publish")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
