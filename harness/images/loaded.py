"""What a live kernel has loaded when an install runs: the one notion of "loaded" (issue 14, item 3).

At an install in cell ``c``, line ``l``: what Colab's kernel imports at start-up and runs on, and every
import of the notebook in a cell before ``c`` or on a line before ``l`` in ``c`` (``ImportSite``, read by
``harness.source.needs``), closed over what those distributions require: their ``Requires-Dist`` in the
image (the metadata environment's, at the image's versions), markers evaluated for the image's Python,
an extra followed only where a requirement asks for it (``datasets`` -> ``fsspec[http]`` -> aiohttp).

Replacing a loaded distribution corrupts the kernel; replacing one the notebook imports only later
does not (the later import loads the new version): a replacement, named with both versions.

The closure counts a requirement as loaded even where the package imports it lazily: a requirement that
was not loaded may then be called corrupting (``run``'s probes, which see what was loaded, settle it),
but a loaded one is never called safe.

Pure: the requirements come in as data (``environment_state`` of the metadata environment).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from packaging.markers import default_environment
from packaging.utils import canonicalize_name

from harness.images.closure import requirements_that_apply

STARTUP = "Colab's kernel imports {it} at start-up"
KERNEL = "the kernel runs on {it}"
NOTEBOOK = "the notebook imports {it} ({where})"


@dataclass(frozen=True)
class Root:
    """A distribution loaded by name: at start-up (``cell`` None) or by an import at ``cell``/``line``."""

    distribution: str           # canonical
    subject: str                # who loads it, with ``{it}`` for the distribution ("the kernel runs on {it}")
    cell: int | None = None
    line: int = 0

    def before(self, cell: int, line: int) -> bool:
        """Loaded before an install at ``cell``/``line`` runs (``line`` 0: the line is not known, so the
        whole cell counts as before it: a replacement is then never called safe for want of a line)."""
        if self.cell is None or self.cell < cell:
            return True
        return self.cell == cell and (line <= 0 or self.line < line)


@dataclass
class LoadOrder:
    """The roots in notebook order and the image's requirements: ``loaded_at`` any install's position."""

    roots: list[Root]
    requires: dict[str, list[str]]          # canonical name -> its Requires-Dist lines, for what the image has
    marker_env: dict[str, Any]
    _paths: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict, repr=False)

    def loaded_at(self, cell: int | None, line: int = 0) -> dict[str, str]:
        """Distribution -> who has it loaded when an install at ``cell``/``line`` runs (``cell`` None: an
        install from outside the notebook, run after it: everything it imports counts)."""
        return self._who([r for r in self.roots if cell is None or r.before(cell, line)])

    def imported_later(self, cell: int | None, line: int = 0) -> dict[str, str]:
        """Distribution -> who imports it after an install at ``cell``/``line``, for those not loaded then."""
        if cell is None:
            return {}
        loaded = self.loaded_at(cell, line)
        later = self._who([r for r in self.roots if not r.before(cell, line)])
        return {name: who for name, who in later.items() if name not in loaded}

    def closure(self, distribution: str) -> dict[str, tuple[str, ...]]:
        """What importing ``distribution`` may load: name -> the shortest chain of requirements to it."""
        if distribution not in self._paths:
            self._paths[distribution] = dependency_paths(distribution, self.requires, self.marker_env)
        return self._paths[distribution]

    def _who(self, roots: list[Root]) -> dict[str, str]:
        found = {}
        for root in roots:                  # a distribution loaded by name is said so, before any chain
            found.setdefault(root.distribution, root.subject.format(it="it"))
        for root in roots:
            for name, path in self.closure(root.distribution).items():
                found.setdefault(name, f"{root.subject.format(it=root.distribution)}, which requires it "
                                       f"({' -> '.join(path)})")
        return found


def dependency_paths(root: str, requires: dict[str, list[str]],
                     marker_env: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Every distribution of ``requires`` that ``root`` needs, directly or not: name -> (root, ..., name).
    A requirement on a distribution the image lacks ends there (nothing of it can be loaded)."""
    root = canonicalize_name(root)
    paths: dict[str, tuple[str, ...]] = {root: (root,)}
    expanded: dict[str, set[str]] = {}
    queue: deque[tuple[str, frozenset[str]]] = deque([(root, frozenset())])
    while queue:
        name, extras = queue.popleft()
        if name in expanded and extras <= expanded[name]:
            continue
        expanded.setdefault(name, set()).update(extras)
        for req in requirements_that_apply(requires.get(name, []), marker_env, extras):
            child = canonicalize_name(req.name)
            if child not in requires:
                continue
            paths.setdefault(child, (*paths[name], child))
            queue.append((child, frozenset(req.extras)))
    return paths


def marker_environment(python_version: str) -> dict[str, str]:
    """Markers as the image's Python evaluates them (``python_version``: X.Y.Z of the environment that
    holds the image's metadata), on this machine's platform (Linux x86-64, as Colab's)."""
    env = dict(default_environment())
    if python_version:
        env.update(python_version=".".join(python_version.split(".")[:2]), python_full_version=python_version,
                   implementation_version=python_version)
    return env
