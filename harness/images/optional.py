"""What a mirror's packages use when present: the image's distributions named in their extras.

A package's optional imports are declared, where they are declared at all, as extras
(``transformers``: ``Requires-Dist: torch>=2.2; extra == "torch"``). Colab pre-installs most of
them, so in Colab ``pipeline("sentiment-analysis")`` finds torch although transformers does not
require it; a mirror that holds only requirements lacks it, and the run fails where Colab works. So
the closure also holds, at the image's versions, every distribution of the image that an extra of a
closure's package names (one level: the extras of the closure's packages, not of what they add), its
marker true on Colab's platform. Extras for developing the package itself (``dev``, ``test``,
``docs``, ``quality``...) are not what it uses when present, and are left out, as are CUDA-only
distributions (the mirror's torch is a CPU build).

The metadata (``Requires-Dist``, ``Provides-Extra``) is pip's reading of the image's wheels
(``harness.images.image_metadata``, cached per release); where it cannot be had (no index), the
mirror holds no optional imports, and says so.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.core.errors import HarnessError
from harness.images.closure import CUDA_ONLY, COLAB_PLATFORM, Pin
from harness.images.image_metadata import DistMetadata, fetch_image_metadata
from harness.images.shipped_metadata import read_shipped
from harness.images.profiles import Profile

# extras for working on the package (dev, test, docs...; also as a part: deepspeed-testing, dev-torch), and
# the unions of all the others (all, full)
NOT_USED_EXTRA = re.compile(r"(^|[-_])(dev|develop|development|tests?|testing|docs?|documentation|lint|linting|"
                            r"quality|qa|style|typing|types|mypy|benchmarks?|ci|release|codestyle|check|examples?|"
                            r"all|full|complete|everything|ruff|testingfree)($|[-_])")
Reader = Callable[[Profile, list[str]], dict[str, DistMetadata]]


@dataclass
class OptionalImports:
    named: dict[str, list[str]] = field(default_factory=dict)   # image distribution -> ["transformers[torch]", ...]
    unread: str = ""                                            # why the metadata could not be had ("" when read)


def colab_markers(python: str) -> dict[str, str]:
    """Marker values on Colab (Linux, x86-64, CPython ``python``)."""
    arch = COLAB_PLATFORM.split("-", 1)[0]
    return dict(default_environment(), python_version=".".join(python.split(".")[:2]), python_full_version=python,
                implementation_version=python, implementation_name="cpython", platform_python_implementation="CPython",
                sys_platform="linux", platform_system="Linux", os_name="posix", platform_machine=arch)


def read_with_pip(profile: Profile, names: list[str]) -> dict[str, DistMetadata]:
    """The metadata of ``names`` from the image's shipped file (harness.images.shipped_metadata: no index
    needed), else as pip reads it from the index (cached)."""
    shipped = read_shipped(profile)
    if shipped is not None and all(n in shipped.distributions for n in names):
        return {n: shipped.distributions[n] for n in names}
    return fetch_image_metadata(profile, Path(sys.executable), log=lambda _line: None, only=names)


def optional_imports(profile: Profile, pins: list[Pin], reader: Reader = read_with_pip,
                     of: Collection[str] | None = None) -> OptionalImports:
    """The image's distributions that the extras of ``pins`` (or of those of them named in ``of``) name,
    and which extras name them; those the closure already holds are left out."""
    held = {p.name for p in pins}
    whose = held if of is None else held & {canonicalize_name(n) for n in of}
    try:
        metadata = reader(profile, sorted(whose & set(profile.image)))
    except HarnessError as exc:
        return OptionalImports(unread=str(exc)[:300])
    markers = colab_markers(profile.python)
    found = OptionalImports()
    for name, dist in sorted(metadata.items()):
        for extra in dist.provides_extra or []:
            if NOT_USED_EXTRA.search(extra):
                continue
            environment = {**markers, "extra": extra}
            for text in dist.requires_dist:
                try:
                    requirement = Requirement(text)
                except InvalidRequirement:
                    continue
                wanted = canonicalize_name(requirement.name)
                if requirement.marker is None or "extra" not in str(requirement.marker) \
                        or not requirement.marker.evaluate(environment):
                    continue
                if wanted in held or wanted not in profile.image or CUDA_ONLY.match(wanted) \
                        or wanted in profile.gpu_only:
                    continue
                where = f"{name}[{extra}]"
                if where not in found.named.setdefault(wanted, []):
                    found.named[wanted].append(where)
    return found
