"""``harness images sync``: has Colab moved since the newest profile?

Fetches the newest ``pip-freeze.txt`` and ``os-info.txt`` of googlecolab/backend-info (raw files
from raw.githubusercontent.com; the commit id and date from GitHub's API where it answers) and
compares them with the newest shipped profile. Drift, most important first:

1. the Python version; numpy and torch (what the notebook and Colab's kernel stand on);
2. the profile's other pins (its closure) changed or gone;
3. a distribution the notebook installs that the image now pre-installs (captum, optuna, ...);

then, for information only, how many distributions outside the closure changed. Exit status:
0 no drift, 1 drift (import the new snapshot: ``harness images import``), 2 GitHub unreachable.

``COLAB_CI_BACKEND_INFO`` replaces the raw-files address (a mirror, or ``file://`` in tests).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.errors import HarnessError
from harness.images.freeze import Freeze, OsInfo, parse_freeze, parse_os_info
from harness.images.profiles import Profile

RAW_BASE = "https://raw.githubusercontent.com/googlecolab/backend-info/main"
API_COMMITS = "https://api.github.com/repos/googlecolab/backend-info/commits?path=pip-freeze.txt&per_page=1"
KEY_PACKAGES = ("numpy", "torch")


class Unreachable(HarnessError):
    """The snapshot could not be fetched (exit status 2)."""


@dataclass
class Upstream:
    freeze: Freeze
    os_info: OsInfo
    commit: str = ""
    date: str = ""
    source: str = ""


@dataclass
class Drift:
    profile: str
    upstream_commit: str
    upstream_date: str
    python: tuple[str, str] | None                  # (profile, upstream) when they differ
    key: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)     # numpy, torch
    pins: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)    # other closure pins
    now_preinstalled: dict[str, str] = field(default_factory=dict)                 # notebook installs now in the image
    others_changed: int = 0                          # outside the closure: information only

    @property
    def drifted(self) -> bool:
        return bool(self.python or self.key or self.pins or self.now_preinstalled)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "drifted": self.drifted}


def fetch_upstream(base: str | None = None, timeout: float = 20) -> Upstream:
    base = (base or os.environ.get("COLAB_CI_BACKEND_INFO") or RAW_BASE).rstrip("/")
    freeze_text = _get(f"{base}/pip-freeze.txt", timeout)
    os_text = _get(f"{base}/os-info.txt", timeout)
    upstream = Upstream(parse_freeze(freeze_text, f"{base}/pip-freeze.txt"),
                        parse_os_info(os_text, f"{base}/os-info.txt"), source=base)
    if base == RAW_BASE:
        try:
            latest = json.loads(_get(API_COMMITS, timeout))[0]
            upstream.commit = latest["sha"]
            upstream.date = latest["commit"]["committer"]["date"][:10]
        except (Unreachable, ValueError, LookupError, TypeError):
            pass                      # the API is rate-limited; the files are what matters
    return upstream


def compare(profile: Profile, upstream: Upstream) -> Drift:
    drift = Drift(profile.name, upstream.commit, upstream.date,
                  None if upstream.os_info.python == profile.python else (profile.python, upstream.os_info.python))
    new = upstream.freeze.versions()
    for pin in profile.pins:
        now = new.get(pin.name)
        if now != pin.version:
            (drift.key if pin.name in KEY_PACKAGES else drift.pins)[pin.name] = (pin.version, now)
    for name in KEY_PACKAGES:
        if profile.pin(name) is None and new.get(name) != profile.image.get(name):
            drift.key[name] = (profile.image.get(name), new.get(name))
    for name in profile.outside_image:
        if name in new and "(root)" in profile.outside_image[name].get("required_by", []):
            drift.now_preinstalled[name] = new[name]
    pinned = {p.name for p in profile.pins}
    drift.others_changed = sum(1 for name in set(new) | set(profile.image)
                               if name not in pinned and new.get(name) != profile.image.get(name))
    return drift


def render(drift: Drift) -> str:
    where = f"{drift.upstream_commit[:7]} ({drift.upstream_date})" if drift.upstream_commit else "newest snapshot"
    lines = [f"googlecolab/backend-info {where} against profile {drift.profile}: "
             + ("DRIFT" if drift.drifted else "no drift")]
    if drift.python:
        lines.append(f"  python {drift.python[0]} -> {drift.python[1]}")
    for name, (old, new) in drift.key.items():
        lines.append(f"  {name} {old or 'absent'} -> {new or 'removed'}")
    for name, (old, new) in sorted(drift.pins.items()):
        lines.append(f"  {name} {old} -> {new or 'removed'} (pinned: in the closure)")
    for name, version in sorted(drift.now_preinstalled.items()):
        lines.append(f"  {name} {version} is now pre-installed (the notebook installs it)")
    if drift.others_changed:
        lines.append(f"  {drift.others_changed} other distributions changed (outside the closure; information only)")
    if drift.drifted:
        lines.append("  import it: harness images import pip-freeze.txt --os-info os-info.txt --name "
                     "<date>-<commit>-cpu --commit <sha> --date <date>")
    return "\n".join(lines)


def _get(url: str, timeout: float) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode("utf-8")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"cannot fetch {url}: {reason}") from None
