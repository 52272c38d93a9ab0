"""Which interpreter on this machine builds an image's mirror in ``local`` mode: one of the image's minor.

A mirror built with another minor than the image's (3.11 for an image on 3.12) runs another
language and standard library, and installs other wheels. So ``local`` mode looks for an
interpreter of the image's minor (X.Y) wherever one usually lies, without downloading anything:

* pyenv's versions (``$PYENV_ROOT/versions/X.Y.*``, default ``~/.pyenv``);
* ``pythonX.Y`` on ``PATH`` (a pyenv shim for a version that is not active fails to run: skipped);
* uv's managed Pythons (``uv python find``, downloads off);
* the harness's own interpreter, where its minor is the image's.

Each candidate is run once to learn its version. The image's exact version wins, then the
harness's own (its mirrors are already built), then the highest patch release. ``COLAB_CI_PYTHONS``
(folders, separated by ``os.pathsep``: ``bin`` folders holding ``pythonX.Y``, or pyenv-style
folders of versions) replaces the search with exactly those folders: a machine that keeps its
interpreters elsewhere names them, and a test controls what is found. None found: the caller falls
back to the harness's own interpreter and says so in the fidelity report.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from harness.core.errors import HarnessError
from harness.images.uvtool import run_uv

SEARCH_VARIABLE = "COLAB_CI_PYTHONS"


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str          # X.Y.Z, as the interpreter itself says
    found_by: str         # "pyenv", "PATH", "uv", "COLAB_CI_PYTHONS", "the harness's own"

    @property
    def minor(self) -> str:
        return minor_of(self.version)


def minor_of(version: str) -> str:
    return ".".join(version.split(".")[:2])


def find_interpreter(version: str) -> Interpreter | None:
    """An interpreter of ``version``'s minor (X.Y or X.Y.Z) on this machine, nearest to ``version``."""
    return _find(version, os.environ.get(SEARCH_VARIABLE))


def searched_places(minor: str) -> str:
    """Where ``find_interpreter`` looks, in words (for the fidelity line of a fallback)."""
    custom = os.environ.get(SEARCH_VARIABLE)
    if custom is not None:
        return f"{SEARCH_VARIABLE}={custom}"
    return f"pyenv's versions, python{minor} on PATH, uv's managed Pythons"


@lru_cache(maxsize=16)
def _find(version: str, custom: str | None) -> Interpreter | None:
    minor = minor_of(version)
    found: dict[str, Interpreter] = {}
    for path, source in _candidates(minor, custom):
        real = os.path.realpath(path)
        if real in found:
            continue
        said = _version_of(path)
        if said is not None and minor_of(said) == minor:
            found[real] = Interpreter(path, said, source)
    if not found:
        return None
    own = os.path.realpath(sys.executable)

    def rank(item: tuple[str, Interpreter]) -> tuple:
        real, interpreter = item
        return (interpreter.version != version, real != own, [-int(p) for p in _numbers(interpreter.version)])

    return min(found.items(), key=rank)[1]


def _candidates(minor: str, custom: str | None) -> list[tuple[str, str]]:
    """(path, how it was found) of every executable that may be Python ``minor``."""
    name = f"python{minor}"
    if custom is not None:
        folders = [Path(f) for f in custom.split(os.pathsep) if f]
        return [(str(p), SEARCH_VARIABLE) for folder in folders for p in _in_folder(folder, name, minor)]
    candidates: list[tuple[str, str]] = []
    if minor_of(_own_version()) == minor:
        candidates.append((sys.executable, "the harness's own"))
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += [(str(p), "pyenv") for p in _in_folder(pyenv / "versions", name, minor)]
    on_path = shutil.which(name)
    if on_path and Path(on_path).parent != pyenv / "shims":   # a shim runs one of pyenv's versions, seen above
        candidates.append((on_path, "PATH"))
    try:
        # --managed-python: pyenv and PATH are searched above; without it uv queries every python on PATH
        # again, pyenv's shims included (1.6 s here, on every build and preflight)
        uv = run_uv(["python", "find", "--managed-python", "--no-project", minor], timeout=60)
    except HarnessError:      # no uv here: its managed Pythons cannot be there either
        return candidates
    if uv.ok and uv.stdout.strip():
        candidates.append((uv.stdout.strip().splitlines()[-1], "uv"))
    return candidates


def _in_folder(folder: Path, name: str, minor: str) -> list[Path]:
    """``folder/pythonX.Y`` (a bin folder) and ``folder/X.Y.*/bin/pythonX.Y`` (a folder of versions)."""
    paths = [folder / name] + sorted(folder.glob(f"{minor}.*/bin/{name}"))
    return [p for p in paths if p.is_file() and os.access(p, os.X_OK)]


def _version_of(path: str) -> str | None:
    try:
        done = subprocess.run([path, "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    said = done.stdout.strip()
    return said if done.returncode == 0 and re.fullmatch(r"\d+\.\d+\.\d+\S*", said) else None


@lru_cache(maxsize=1)
def _own_version() -> str:
    return ".".join(str(p) for p in sys.version_info[:3])


def _numbers(version: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", version)[:3]]
