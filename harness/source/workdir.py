"""Where the kernel finds a file a cell names: its working directory, what ``--content`` copies there, the
notebook's folder, and where ``%cd`` moved it. Used to find each requirements file, project and wheel an
install names as a headless run's kernel would (``harness.source.installs``)."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

# What ``colab-ci run`` sets for a notebook in a colab-ci checkout (the tiers library it imports is there).
CHECKOUT_VARIABLE = "COLAB_CI_CHECKOUT"


@dataclass(frozen=True)
class Workdir:
    """Where the kernel finds a file a cell names by a relative path, in order: a folder standing for its
    working directory, what ``--content`` copies there (a file by its name, a folder with its name),
    then the notebook's own folder. ``environ``: what a headless run sets that cells may read."""

    notebook_dir: Path
    content: tuple[Path, ...] = ()
    folder: Path | None = None
    environ: tuple[tuple[str, str], ...] = ()
    cwd: str = ""                    # where ``%cd`` moved the kernel, relative to its working directory

    def relative(self, value: str) -> str:
        """``value`` as a path from the kernel's working directory (``/content/x`` is ``x`` there)."""
        if value == "/content" or value.startswith("/content/"):
            return os.path.normpath(value.removeprefix("/content").lstrip("/") or ".")
        return value if os.path.isabs(value) else os.path.normpath(os.path.join(self.cwd, value))

    def find(self, value: str, folders: bool = False) -> tuple[Path | None, str]:
        """The file (or, with ``folders``, the file or folder: a project pip installs) ``value`` names and
        where it was found, or (None, "") when it is nowhere."""
        def exists(candidate: Path) -> bool:
            return candidate.is_file() or (folders and candidate.is_dir())

        value = self.relative(value)
        path = Path(value)
        if path.is_absolute():
            return (path, "an absolute path") if exists(path) else (None, "")
        if self.folder is not None and exists(self.folder / path):
            return self.folder / path, "the kernel's working directory"
        for item in self.content:
            if exists(item) and value == item.name:
                return item, "--content"
            head, _, rest = value.partition("/")
            if item.is_dir() and head == item.name and rest and exists(item / rest):
                return item / rest, "--content"
        if exists(self.notebook_dir / path):
            return self.notebook_dir / path, "the notebook's folder"
        return None, ""


def workdir_for(notebook: str | Path, content: tuple[Path, ...] | list[Path] = (),
                folder: Path | None = None) -> Workdir:
    """The ``Workdir`` of a headless run of ``notebook``: ``COLAB_CI_CHECKOUT`` set for a notebook in a
    colab-ci checkout, as ``colab-ci run`` sets it."""
    checkout = checkout_for(notebook)
    environ = ((CHECKOUT_VARIABLE, str(checkout)),) if checkout else ()
    return Workdir(Path(os.path.abspath(notebook)).parent, tuple(Path(p) for p in content), folder, environ)


def callers_checkout() -> Path | None:
    """The checkout the caller names in ``COLAB_CI_CHECKOUT`` (for a notebook outside one, such as a copy
    of the template): the kernel is given the caller's variable, so the notebook's cells read it too."""
    from harness.core.checkout import find_checkout

    value = os.environ.get(CHECKOUT_VARIABLE, "")
    return find_checkout(value) if value and os.path.isdir(value) else None


def checkout_for(notebook: str | Path) -> Path | None:
    """The checkout whose tiers library a run of ``notebook`` imports: the one it lies in, else the
    caller's ``COLAB_CI_CHECKOUT``."""
    from harness.core.checkout import checkout_of

    return checkout_of(notebook) or callers_checkout()


CD_LINE = re.compile(r"^\s*%?cd\s+(?P<folder>\S.*?)\s*$")


def cwd_after(source: str, root: Workdir) -> Workdir:
    """``root`` as the cell's ``%cd`` lines leave it (for the cells after it)."""
    for line in source.splitlines():
        cd = CD_LINE.match(line)
        if cd:
            root = dataclasses.replace(root, cwd=root.relative(cd.group("folder").strip("'\"")))
    return root
