"""Judging a ``--no-deps`` install from its words alone: a pinned requirement or a wheel's file name
says what it installs (its distribution and version), so no resolver is asked and nothing is downloaded.
"""

from __future__ import annotations

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from harness.preflight.model import Change
from harness.source.install_spec import InstallSpec
from harness.source.pip_command import wheel_of, word_kind


def no_deps_changes(spec: InstallSpec, installed: dict[str, str], imported: dict[str, str]) -> list[Change] | None:
    """What a ``--no-deps`` install changes, from its words alone: a pinned requirement, a wheel's file
    name (its distribution and version: nothing is downloaded). None when some word's version is known
    only by fetching it (an sdist, a VCS URL, a project folder, an unpinned requirement it upgrades):
    then the resolver is asked."""
    moves = spec.upgrade or any(option == "--force-reinstall" for option, _value in spec.options)
    changes = []
    for text in spec.all_requirements():
        kind = word_kind(text)
        wheel = wheel_of(text) if kind == "wheel" else None
        if kind == "requirement":
            req = Requirement(text)
            name = canonicalize_name(req.name)
            wheel = wheel_of(req.url) if req.url else None
            pins = [s.version for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
            if req.url and wheel is None and name not in installed:
                changes.append(Change(name, None, "from " + req.url))    # an addition replaces nothing
                continue
            if req.url and wheel is None:
                return None
            if wheel is None and pins:
                wheel = (name, pins[0])
            elif wheel is None and name in installed and not moves:
                continue          # already satisfied: pip leaves it
            elif wheel is None and name not in installed:
                changes.append(Change(name, None, "newest"))
                continue
            elif wheel is None:
                return None
        if wheel is None:
            return None
        name, after = wheel
        if name not in installed:
            changes.append(Change(name, None, after))
        elif not _same_version(installed[name], after):
            changes.append(Change(name, installed[name], after, imported.get(name, "")))
    return changes


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b
