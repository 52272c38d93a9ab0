"""Several notebooks on one command line: paths and globs expanded, and each notebook's folder name.

``run``, ``preflight``, ``matrix`` and ``smoke`` take notebooks and globs (``notebooks/**/*.ipynb``,
quoted so that the shell leaves them to us; ``**`` matches folders at any depth). A glob that matches
no notebook is an error (exit 2): a typo must never read as "nothing failed". A plain path is kept as
given, so the verb says that it does not exist, as it always has.

With several notebooks each gets its own sub-folder of ``--out``, named by ``notebook_slugs``: the
notebook's path (relative to the working directory when every notebook is under it, else to the
folder above the notebooks' common folder) without ``.ipynb``, its
folders joined by ``-``, anything but letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``;
two notebooks that would share a name each get a short digest of their path after it. The same
paths give the same names on every run, so a folder's history can be compared month to month.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.core.errors import HarnessError

_GLOB_CHARACTERS = re.compile(r"[*?\[]")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def is_glob(pattern: str) -> bool:
    return bool(_GLOB_CHARACTERS.search(pattern))


def expand_notebooks(patterns: Iterable[str | Path]) -> list[Path]:
    """Each pattern's notebooks, in the order given (a glob's matches sorted), each once. A glob
    matching no ``.ipynb`` file raises HarnessError naming it."""
    found: dict[Path, None] = {}
    for pattern in patterns:
        text = str(pattern)
        if not is_glob(text):
            found.setdefault(Path(text), None)
            continue
        matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True)
                         if p.endswith(".ipynb") and Path(p).is_file() and ".ipynb_checkpoints" not in Path(p).parts)
        if not matches:
            raise HarnessError(f"{text!r} matches no notebook (.ipynb file)")
        for path in matches:
            found.setdefault(path, None)
    return list(found)


def notebook_slugs(notebooks: Sequence[Path]) -> dict[Path, str]:
    """Each notebook's folder name under ``--out`` (see the module's docstring): readable, stable, unique."""
    absolute = {path: Path(os.path.abspath(path)) for path in notebooks}
    base = Path.cwd()
    if not all(a.is_relative_to(base) for a in absolute.values()) and absolute:
        base = Path(os.path.commonpath([a.parent for a in absolute.values()])).parent
    names = {path: _slug(absolute[path].relative_to(base)) for path in notebooks}
    taken: dict[str, int] = {}
    for name in names.values():
        taken[name.casefold()] = taken.get(name.casefold(), 0) + 1
    return {path: (name if taken[name.casefold()] == 1 else f"{name}-{_digest(absolute[path])}") for path, name in names.items()}


def _slug(shown: Path) -> str:
    parts = [p for p in (*shown.parent.parts, shown.stem if shown.suffix == ".ipynb" else shown.name)
             if p not in ("/", "", ".", "..")]
    slug = "-".join(_UNSAFE.sub("_", part) for part in parts).strip(".-") or "notebook"
    return slug


def _digest(path: Path) -> str:
    return hashlib.sha256(str(path).encode()).hexdigest()[:6]
