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

from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from harness.core.errors import HarnessError
from harness.images.closure import CUDA_ONLY, Pin, compute_closure
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
    wanted = set(needs.import_distributions()) | set(written) | set(needs.with_)
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
        except HarnessError as exc:
            # An install that conflicts with the image (datasets<3 where the image has datasets 4.0.0): its
            # distributions are held by name, at the image's versions, which the install cell then moves.
            assert needs is not None
            _written, by_name = install_roots(needs.installs, profile.image)
            named = sorted({canonicalize_name(Requirement(r).name) for r in extra if r not in needs.installs}
                           | {n for n in by_name if n in profile.image})
            found = compute_closure(profile.freeze(), list(dict.fromkeys(base + named)), profile.python)
            lines.append(f"the notebook's install requirements conflict with the image ({str(exc)[:300]}); the mirror "
                         "holds the distributions they name at the image's versions, not their requirements")
        pins.update({p.name: p for p in found.pins})
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


def _summary(profile: Profile, needs: NotebookNeeds | None, count: int) -> str:
    held = f"closure notebook: the mirror holds {count} of the image's {len(profile.image)} distributions: " \
           "Colab's kernel and pip"
    if needs is not None and needs.import_distributions():
        held += f", what the notebook imports ({', '.join(needs.import_distributions())})"
    if needs is not None and needs.installs:
        held += f", what its installs require ({', '.join(needs.installs)})"
    if needs is not None and needs.with_:
        held += f", --with {' '.join(needs.with_)}"
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
