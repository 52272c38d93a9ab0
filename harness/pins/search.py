"""The newest versions of what the installs ask for that keep an image's pre-installed distributions,
asked of the resolver preflight asks (``harness.preflight.resolve``: uv screens, pip decides), in the
image's metadata environment (``harness.images.metadata_env``) with the image's freeze as constraints.

Three tries per image, strongest first: every pre-installed distribution pinned at the image's version
(``keeps-image``); only what the kernel has loaded when the first install runs pinned (``keeps-loaded``,
``harness.images.loaded``: the weaker fallback, named as such); else the fewest pre-installed
distributions that must move, found by freeing, one at a time, only those pip's own answer moves
(a minimal set, not always the minimum), each with its requirement chain (``harness.preflight.explain``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.core.errors import HarnessError
from harness.images.build import BuiltEnv
from harness.images.metadata_env import MetadataEnv
from harness.preflight import resolve
from harness.preflight.explain import changes_from_report
from harness.pins.model import KEEPS_IMAGE, KEEPS_LOADED, ImagePins, MustMove
from harness.source.install_spec import InstallSpec

Changes = dict[str, tuple[str | None, str]]   # name -> (version before or None, version after)


def requested_names(requirements: list[str]) -> dict[str, str]:
    """Canonical name -> the requirement as written, for each named requirement."""
    found = {}
    for text in requirements:
        try:
            found[canonicalize_name(Requirement(text).name)] = text
        except InvalidRequirement:
            continue
    return found


def resolve_keeping(python: Path, requirements: list[str], keep: dict[str, str]) -> Changes | None:
    """What ``pip install REQUIREMENTS`` installs with every distribution of ``keep`` constrained to its
    version, or None when no such install exists (the resolver refuses, or would still move one kept)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="colab-ci-keep-", delete=False) as handle:
        handle.write("".join(f"{name}=={version}\n" for name, version in sorted(keep.items())))
        constraints = handle.name
    try:
        args = ["-c", constraints, *requirements]
        changes = resolve.uv_dry_run(python, args)
        if changes is None:      # uv refused or could not say: pip, the authority, decides
            report, error = resolve.pip_dry_run(python, args)
            if error:
                return None
            changes = {canonicalize_name(i["metadata"]["name"]): (None, i["metadata"]["version"])
                       for i in report.get("install", [])}
    finally:
        os.unlink(constraints)
    if any(name in keep and after != keep[name] for name, (_before, after) in changes.items()):
        return None
    return changes


def image_pins(image: ImagePins, env: MetadataEnv | BuiltEnv, requirements: list[str], state: dict[str, dict],
               loaded: dict[str, str]) -> ImagePins:
    """Fill ``image`` with the newest pins for ``requirements`` (``state``: the image's distributions;
    ``loaded``: what the kernel has loaded when the first install runs), or with what must move."""
    installed = {name: info["version"] for name, info in state.items() if info.get("version")}
    keeps = ((KEEPS_IMAGE, installed), (KEEPS_LOADED, {n: installed[n] for n in loaded if n in installed}))
    for level, keep in keeps:
        changes = resolve_keeping(env.python, requirements, keep)
        if changes is None:
            continue
        wanted = requested_names(requirements)
        image.level = level
        for name in wanted:
            version = changes[name][1] if name in changes else installed.get(name)
            if version:                       # absent: a marker leaves it out on this Python
                image.pins[name] = version
        image.added = {n: a for n, (b, a) in changes.items() if n not in wanted and n not in installed}
        image.moved = {n: [installed[n], a] for n, (_b, a) in changes.items() if n in installed}
        return image
    must_move(image, env.python, requirements, state, installed, loaded)
    return image


def must_move(image: ImagePins, python: Path, requirements: list[str], state: dict[str, dict],
              installed: dict[str, str], loaded: dict[str, str]) -> None:
    """The fewest pre-installed distributions the request cannot do without moving, and why (pip's chains)."""
    report, error = resolve.pip_dry_run(python, requirements)
    if error:
        image.error = error
        return
    spec = InstallSpec(-1, "", "-r", "pins", requirements=list(requirements))
    replaced = {c.name: c for c in changes_from_report(report, spec, state, loaded) if c.before is not None}
    if not replaced:
        raise HarnessError(f"{image.image}: the resolvers disagree: no pin set keeps what the kernel loaded, yet pip's "
                           "own answer moves no pre-installed distribution; cannot tell which to believe")
    free = set(replaced)
    for name in sorted(replaced, key=lambda n: (n not in loaded, n)):   # keep a loaded one first where possible
        trial = free - {name}
        if resolve_keeping(python, requirements, {n: v for n, v in installed.items() if n not in trial}) is not None:
            free = trial
    image.must_move = [MustMove(n, replaced[n].before or "", replaced[n].after, replaced[n].chain, loaded.get(n, ""))
                       for n in sorted(free)]
