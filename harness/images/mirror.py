"""What a run's mirror of an image holds: the profile's pins, and what the notebook needs of the image.

``--closure notebook`` (the default): the dependency closure, at the image's versions
(``harness.images.closure``, uv's resolver), of the profile's roots (Colab's kernel, pip) and of the
notebook's needs (``harness.source.needs``): the distributions of its imports, its install cells'
requirements (one the image has is a root by name: the mirror holds the image's version, which the
install cell then moves, or not, as it does in Colab; one the image lacks is a root as written, so
that its requirements the image has are held at the image's versions), and ``--with``.

``--closure full``: every distribution of the image an index serves (CUDA-only ones aside: the
mirror's torch is a CPU build); what could not be installed here is said in the fidelity report.

The environment's cache key depends on ``roots`` (what the notebook adds to the profile's pins), so
notebooks that need the same get the same environment, one that needs nothing beyond the pins gets
the profile's own, and an unchanged one is found without resolving anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from harness.core.errors import HarnessError
from harness.images.closure import CUDA_ONLY, Closure, Pin, ResolutionError, compute_closure
from harness.images.optional import optional_imports
from harness.images.plan import pytorch_index_unreachable
from harness.images.profiles import Profile
from harness.source.needs import NotebookNeeds, install_roots

CLOSURES = ("notebook", "full")
FULL = "(every distribution of the image an index serves)"


@dataclass
class MirrorClosure:
    pins: list[Pin]
    lines: list[str] = field(default_factory=list)       # fidelity lines about what the mirror holds
    modules: list[str] = field(default_factory=list)     # the notebook's imports the mirror should provide


def mirror_roots(profile: Profile, needs: NotebookNeeds | None, closure: str) -> list[str]:
    """What the mirror adds to the profile's pins, as closure roots (sorted; [] for the profile's own)."""
    if closure not in CLOSURES:
        raise HarnessError(f"--closure {closure!r}: expected one of {', '.join(CLOSURES)}")
    if closure == "full":
        return [FULL]
    if needs is None:
        return []
    pinned = {p.name for p in profile.pins} | {r for group in profile.roots.values() for r in group}
    written, _by_name = install_roots(needs.installs, profile.image)
    wanted = set(needs.import_distributions()) | set(written) | set(needs.with_) | set(needs.added)
    return sorted(r for r in wanted if r not in pinned)


def mirror_closure(profile: Profile, needs: NotebookNeeds | None, closure: str) -> MirrorClosure:
    """The pins of the mirror for ``needs``, and the fidelity lines that say what it holds."""
    if closure == "full":
        return _full(profile)
    extra = mirror_roots(profile, needs, closure)
    pins = {p.name: p for p in profile.pins}
    lines: list[str] = []
    if extra:
        base = [r for group in profile.roots.values() for r in group]
        try:
            found = compute_closure(profile.freeze(), list(dict.fromkeys(base + extra)), profile.python)
            found_roots = extra
        except ResolutionError as exc:
            assert needs is not None
            found, lines, found_roots = _without_unresolvable(profile, base, extra, needs, exc)
        pins.update({p.name: p for p in found.pins})
        found, optional_lines = _with_optional_imports(profile, base, list(found_roots), found)
        pins.update({p.name: p for p in found.pins})
        lines += optional_lines
    held = sorted(pins.values(), key=lambda p: p.name)
    lines.insert(0, _summary(profile, needs, len(held)))
    modules: list[str] = []
    if needs is not None:
        installed_names = {canonicalize_name(Requirement(r).name) for r in needs.installs}
        for module in needs.unresolved_imports():
            if canonicalize_name(module.split(".")[0]) not in installed_names:
                lines.append(f"import {module}: no distribution of the image provides it (by its name or colab-ci's "
                             "import-name list, harness/source/import_names.py), so the mirror lacks it; "
                             "--with DIST adds one")
        lines += [f"{sentence}; what it installs is not held at the image's versions" for sentence in needs.missing_files]
        modules = sorted({m.split(".")[0] for m, d in needs.imports.items() if d and d in pins})
    return MirrorClosure(held, lines, modules)


def _without_unresolvable(profile: Profile, base: list[str], extra: list[str], needs: NotebookNeeds,
                          first: ResolutionError) -> tuple[Closure, list[str], list[str]]:
    """The closure of everything the notebook needs but the install requirements that cannot be resolved
    against the image (``captum==9.9.9``, a release that does not exist; ``foo`` requiring ``numpy<2``
    where the image has numpy 2): those are left out, one by one, and said; what they name that the image
    has is still held, at the image's version. What the notebook imports (torch) is never left out: a run
    in the mirror then fails where Colab fails, at the install, not at an import Colab never lacks."""
    written, _by_name = install_roots(needs.installs, profile.image)
    candidates = [r for r in extra if r in written and r not in profile.image]   # installs as written
    kept = [r for r in extra if r not in candidates]

    def resolve(roots: list[str]) -> Closure:
        return compute_closure(profile.freeze(), list(dict.fromkeys(base + roots)), profile.python)

    try:
        found = resolve(kept)
    except ResolutionError:
        raise first from None      # the conflict is not an install's: nothing to leave out
    left_out: dict[str, str] = {}
    remaining, error = list(candidates), first
    while remaining:               # uv names the requirement at fault: leave it out, resolve the rest
        culprit = _named(error.reason, remaining)
        if culprit is None:
            break
        remaining.remove(culprit)
        left_out[culprit] = error.reason
        try:
            found = resolve(kept + remaining)
            remaining = []
        except ResolutionError as exc:
            error = exc
    if remaining:                  # uv's message names none of them: each on its own
        accepted: list[str] = []
        for requirement in remaining:
            try:
                resolve(kept + accepted + [requirement])
                accepted.append(requirement)
            except ResolutionError as exc:
                left_out[requirement] = exc.reason
        found = resolve(kept + accepted)
    lines = [f"install requirement {requirement} cannot be resolved against the image ({reason[:300]}): the mirror "
             "holds everything else the notebook needs, without it (the notebook's install of it fails in "
             "the run, as in Colab)" for requirement, reason in left_out.items()]
    return found, lines, [r for r in extra if r not in left_out]


def _with_optional_imports(profile: Profile, base: list[str], roots: list[str],
                           found: Closure) -> tuple[Closure, list[str]]:
    """``found`` with what its packages use when present (``harness.images.optional``), and the line
    that lists it; an optional import that cannot be resolved with the rest is left out, and said."""
    # the extras of what the notebook itself names (imports, installs, --with), not of everything they
    # require: pandas' and fsspec's extras alone would add ~140 distributions to the template's mirror
    optional = optional_imports(profile, found.pins, of=[_root_name(r) for r in roots])
    if optional.unread:
        return found, [f"optional imports: the metadata of the closure's packages could not be read "
                       f"({optional.unread}), so the mirror holds none of what they use only when present"]
    if not optional.named:
        return found, []
    names = sorted(optional.named)
    previous = {p.name for p in found.pins}
    base_closure, left_out, not_matching, unreachable = found, [], [], None
    while True:
        found, names, unresolved = _resolve_with(profile, base + roots, names, base_closure)
        left_out += unresolved
        # torchvision, torchaudio (torch aside): the image's builds come from the PyTorch index (a local label, +cu126);
        # where it cannot be reached, PyPI's release stands in, built for another torch than the stand-in
        # one, and fails on import (transformers imports torchvision when present): a failure Colab never
        # has. The optional imports that bring one in are left out.
        pytorch_builds = {p.name for p in found.pins if p.name not in previous and p.name != "torch"   # (its stand-in
                          and _pytorch_build(profile.image.get(p.name, ""))}                        # is a CPU build)
        if pytorch_builds and unreachable is None:
            unreachable = pytorch_index_unreachable()
        bringing = _bringing(pytorch_builds, found.pins) & set(names) if unreachable else set()
        if not bringing:
            break
        names = [n for n in names if n not in bringing]
        not_matching += sorted(bringing)
    required = sorted({p.name for p in found.pins} - previous - set(names))
    lines = [f"optional imports: the mirror holds {len(names)} of the image's distributions that its packages' extras "
             f"name (used when present), and {len(required)} more that they require: "
             + "; ".join(f"{n} ({', '.join(optional.named[n])})" for n in names)
             + (f"; required by them: {', '.join(required)}" if required else "")] if names else []
    if left_out:
        lines.append(f"optional imports not held (they cannot be resolved with the rest): {', '.join(left_out)}")
    if not_matching:
        lines.append(f"optional imports not held: {', '.join(not_matching)} (they are, or bring in, the image's builds "
                     f"of the PyTorch index; {unreachable}, and PyPI's release would not match the stand-in torch)")
    return found, lines


def _resolve_with(profile: Profile, roots: list[str], names: list[str],
                  without: Closure) -> tuple[Closure, list[str], list[str]]:
    """The closure of ``roots`` + the optional ``names`` (``without`` when none is left): (closure, the
    names held, those left out because they cannot be resolved with the rest)."""
    names, left_out = list(names), []
    while names:
        try:
            closure = compute_closure(profile.freeze(), list(dict.fromkeys(roots + names)), profile.python)
            return closure, names, left_out
        except ResolutionError as exc:
            culprit = _named(exc.reason, names)
            if culprit is None:
                return without, [], left_out + names
            names.remove(culprit)
            left_out.append(culprit)
    return without, [], left_out


def _bringing(targets: set[str], pins: list[Pin]) -> set[str]:
    """``targets`` and every distribution of the closure that requires one of them, however indirectly."""
    parents = {p.name: p.required_by for p in pins}
    seen: set[str] = set()
    todo = list(targets)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += [parent for parent in parents.get(name, []) if parent != "(root)"]
    return seen


def _pytorch_build(version: str) -> bool:
    """Whether the image's ``version`` is a build of the PyTorch index (a local label: ``0.24.0+cu126``)."""
    try:
        return bool(Version(version).local)
    except InvalidVersion:
        return False


def _root_name(requirement: str) -> str:
    return canonicalize_name(Requirement(requirement).name)


def _named(message: str, requirements: list[str]) -> str | None:
    """The first of ``requirements`` that uv's message names (by canonical name), or None."""
    by_name = {canonicalize_name(Requirement(r).name): r for r in requirements}
    for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", message):
        found = by_name.get(canonicalize_name(word.rstrip(".")))
        if found is not None:
            return found
    return None


def _summary(profile: Profile, needs: NotebookNeeds | None, count: int) -> str:
    held = f"closure notebook: the mirror holds {count} of the image's {len(profile.image)} distributions: " \
           "Colab's kernel and pip"
    if needs is not None and needs.import_distributions():
        held += f", what the notebook imports ({', '.join(needs.import_distributions())})"
    if needs is not None and needs.installs:
        held += f", what its installs require ({', '.join(needs.installs)})"
    if needs is not None and needs.with_:
        held += f", --with {' '.join(needs.with_)}"
    if needs is not None and needs.added:
        held += f", what earlier runs of the notebook missed ({', '.join(needs.added)}: mirror misses)"
    return held + "; each with its requirements (--closure full installs every distribution an index serves)"


def _full(profile: Profile) -> MirrorClosure:
    freeze = profile.freeze()
    pins, unserved = [], []
    for name, entry in freeze.entries.items():
        if entry.unavailable or not entry.version:
            unserved.append(f"{name} ({entry.unavailable or 'no version in the freeze'})")
        elif not CUDA_ONLY.match(name) and name not in profile.gpu_only:
            pins.append(Pin(name, entry.version, ["(image)"], entry.url, entry.source))
    lines = [f"closure full: the mirror holds every distribution of the image an index serves ({len(pins)} of "
             f"{len(profile.image)}; CUDA-only ones aside)"]
    if unserved:
        lines.append(f"{len(unserved)} distribution{'s' if len(unserved) != 1 else ''} of the image no index serves, "
                     f"not installed: {'; '.join(unserved)}")
    return MirrorClosure(pins, lines)
