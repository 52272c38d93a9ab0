"""A real Colab runtime against the profiles we ship: how faithful our mirrors are, measured.

``compare(installed, release_tag, kind)`` takes what the runtime's kernel listed at start-up (the
start-up probe's ``installed``: its ``pip freeze``, by canonical name) and compares it with the
newest shipped profile of the same kind (``cpu`` or ``gpu``). It also says when the runtime's
release is newer than every profile we ship: Colab moved, and ``colab-ci images sync`` is due.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.images.profiles import PROFILES_DIR, Profile, available_profiles

MOVED_NOTICE = "Colab moved: run `colab-ci images sync`"
_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")


@dataclass
class RuntimeComparison:
    profile: str                                           # "" when no profile of that kind is shipped
    same: int = 0
    differ: dict[str, tuple[str, str]] = field(default_factory=dict)   # name -> (runtime, profile)
    only_runtime: dict[str, str] = field(default_factory=dict)
    only_profile: dict[str, str] = field(default_factory=dict)
    moved: bool = False

    def summary(self) -> str:
        if not self.profile:
            return "no shipped profile of this kind to compare with"
        return (f"against {self.profile}: {self.same} the same, {len(self.differ)} at another version, "
                f"{len(self.only_runtime)} only on the runtime, {len(self.only_profile)} only in the profile")

    def to_json(self) -> dict[str, object]:
        return {"profile": self.profile, "same": self.same, "moved": self.moved,
                "differ": {k: list(v) for k, v in self.differ.items()},
                "only_runtime": self.only_runtime, "only_profile": self.only_profile}


def release_date(tag: str) -> str:
    """``release-colab_20260819-060048_RC00`` -> ``2026-08-19``; "" when the tag has no date."""
    found = _DATE.search(tag or "")
    return "-".join(found.groups()) if found else ""


def newest_profile(kind: str, directory: Path = PROFILES_DIR) -> Profile | None:
    return next((p for p in available_profiles(directory) if p.runtime == kind), None)


def compare(installed: dict[str, str], release_tag: str, kind: str,
            directory: Path = PROFILES_DIR) -> RuntimeComparison:
    profile = newest_profile(kind, directory)
    if profile is None:
        return RuntimeComparison(profile="")
    result = RuntimeComparison(profile=profile.name)
    image = {name: version for name, version in profile.image.items()}
    for name, version in sorted(installed.items()):
        if name not in image:
            result.only_runtime[name] = version
        elif image[name] and image[name] != version:
            result.differ[name] = (version, image[name])
        else:
            result.same += 1
    result.only_profile = {n: v for n, v in sorted(image.items()) if n not in installed}
    released = release_date(release_tag)
    newest = max((p.date for p in available_profiles(directory)), default="")
    result.moved = bool(released and newest and released > newest)
    return result
