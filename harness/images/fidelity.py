"""How far a built environment is from the Colab image it mirrors: one line per deviation.

``deviations`` compares what is installed with the profile's pins, Python and OS, and explains each
difference with the reason the build recorded (``reasons``: name -> why it was substituted). A
difference the build did not plan is still listed ("not planned"), so the list is complete by
construction rather than by bookkeeping. The lines are printed with each run and stored in reports
(``RunRecord.fidelity``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.core.json_files import JsonFileError, read_json

if TYPE_CHECKING:
    from harness.images.profiles import Profile

# Installed only to run the kernel or the resolver, when the image itself lacks them.
RUNNER_NEEDS = ("pip", "ipykernel")
BUILD_FILE = "colab-ci-build.json"      # the build record, in the environment's folder
BUILD_SCHEMA = "built-env"                # core/schemas/built-env.schema.json: what the build record holds
FIDELITY_FILE = "fidelity.json"


def current_record(env: Path, filename: str, key: str, schema: str) -> dict | None:
    """The record ``filename`` colab-ci wrote in the environment ``env`` when it built it for ``key``,
    or None when there is none, it is unreadable or does not match ``schema`` (a half-written or foreign
    record: the environment is built again), it was built for another key, or its python is gone."""
    try:
        data = read_json(env / filename, schema)
    except JsonFileError:
        return None
    if data.get("key") != key or not (env / "bin" / "python").exists():
        return None
    return data


def read_fidelity(python: str | Path) -> list[str] | None:
    """The fidelity lines of the environment that ``python`` belongs to, or None if colab-ci did not build it."""
    path = Path(python).absolute()
    for folder in (path.parent.parent, path.parent):
        record = folder / BUILD_FILE
        if record.is_file():
            try:
                return list(read_json(record, BUILD_SCHEMA)["fidelity"])
            except JsonFileError:
                return None
    return None


def deviations(profile: "Profile", *, python: str, installed: dict[str, str], reasons: dict[str, str],
               os_name: str = "", gpu: bool = False, pins: dict[str, str] | None = None) -> list[str]:
    """Every way the environment (``python``, ``installed``: canonical name -> version) differs from
    ``profile``, whose part it mirrors is ``pins`` (canonical name -> the image's version; default: the
    profile's own pins)."""
    pins = {p.name: p.version for p in profile.pins} if pins is None else pins
    lines: list[str] = []
    if python != profile.python:
        lines.append(f"python {profile.python} -> {python}: {reasons.get('python', 'not planned')}")
    if profile.runtime == "gpu" and not gpu:
        lines.append(f"runtime GPU -> CPU: {reasons.get('runtime', 'no GPU here; CUDA code paths are not exercised')}")
    if profile.gpu_only and not gpu:
        names = sorted(profile.gpu_only)
        lines.append(f"{_count(names, 'CUDA-only distribution')} of the image not installed ({_sample(names)}): "
                     "the environment's torch is a CPU build")
    for name, version in pins.items():
        got = installed.get(name)
        if got != version:
            lines.append(f"{name} {version} -> {got or 'missing'}: {reasons.get(name, 'not planned')}")
    for name in sorted(set(installed) - set(pins)):
        where = f"the image has {profile.image[name]}, outside the closure" if profile.image.get(name) \
            else "not in the image"
        lines.append(f"{name} {installed[name]} added ({where}): {reasons.get(name, 'not planned')}")
    if os_name and profile.os and os_name != profile.os:
        lines.append(f"os {profile.os} -> {os_name}: system libraries differ; "
                     "Python wheels are the same manylinux builds")
    return lines


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _sample(names: list[str], limit: int = 4) -> str:
    return ", ".join(names[:limit]) + (f", ... {len(names) - limit} more" if len(names) > limit else "")
