"""``harness images sync``: has Colab moved since the newest profile? With ``--import``, take the move in.

Asks GitHub's API which commit of googlecolab/backend-info last changed ``pip-freeze.txt`` (the
newest snapshot), fetches that commit's ``pip-freeze.txt`` and ``os-info.txt`` (raw files, read at
that commit so the files and the commit id always agree) and compares them with the newest shipped
profile. ``--runtime gpu`` does the same for Colab's GPU image (``pip-freeze.gpu.txt`` and
``os-info-gpu.txt``, published since 2026-01) against the newest ``-gpu`` profile. Drift, most important first:

1. the Python version; numpy and torch (what the notebook and Colab's kernel stand on);
2. the profile's other pins (its closure) changed or gone;
3. a distribution the notebook installs that the image now pre-installs (captum, optuna, ...);

then, for information only, how many distributions outside the closure changed. Exit status:
0 no drift, 1 drift, 2 GitHub unreachable (or, with ``--import``, the snapshot could not be imported).

``--import`` writes the drifted snapshot as a new profile, ``<date>-<commit>-cpu.json`` (``-gpu``; the weekly
workflow ``.github/workflows/images-sync.yml`` opens a pull request with it), and ``--report FILE``
writes the drift as markdown (the pull request's body). A snapshot that drifted only outside the
closure is not imported: nothing the mirrors build would change.

``--base URL`` (or ``COLAB_CI_BACKEND_INFO``) reads the two files from a mirror or a folder
(``file://``) instead; ``{commit}`` in it stands for the newest commit, which is asked of ``--api``
(only when given: a mirror has no commit id of its own). ``GITHUB_TOKEN``, where set, goes to
``https://api.github.com`` only (a higher rate limit on shared CI runners), never to a mirror.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.core.errors import HarnessError
from harness.images.freeze import Freeze, OsInfo, parse_freeze, parse_os_info
from harness.images.profiles import UPSTREAM_FILES, Profile
from harness.source.needs import NotebookNeeds

REPOSITORY = "googlecolab/backend-info"
RAW_ROOT = f"https://raw.githubusercontent.com/{REPOSITORY}"
RAW_BASE = f"{RAW_ROOT}/{{commit}}"          # {commit}: the newest commit, else the branch ``main``
API_ROOT = "https://api.github.com"          # the only address GITHUB_TOKEN is ever sent to
COMMITS = f"/repos/{REPOSITORY}/commits?path=pip-freeze.txt&per_page=1"   # the CPU image's; ``commits_path``
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
    freeze_text: str = ""
    os_info_text: str = ""
    why_no_commit: str = ""          # why commit is empty: no API asked, or what it answered
    runtime: str = "cpu"             # whose freeze: Colab's CPU or GPU image


@dataclass
class Drift:
    profile: str
    upstream_commit: str
    upstream_date: str
    python: tuple[str, str] | None                  # (profile, upstream) when they differ
    key: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)     # numpy, torch
    pins: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)    # what the kernel or the notebook uses
    now_preinstalled: dict[str, str] = field(default_factory=dict)                 # notebook installs now in the image
    others_changed: int = 0                          # the rest of the image: information only
    runtime: str = "cpu"                             # Colab's CPU or GPU image

    @property
    def drifted(self) -> bool:
        return bool(self.python or self.key or self.pins or self.now_preinstalled)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "drifted": self.drifted}


# ------------------------------------------------------------------------------------ fetching

def commits_path(runtime: str = "cpu") -> str:
    """The API query for the newest commit that changed ``runtime``'s freeze."""
    return f"/repos/{REPOSITORY}/commits?path={UPSTREAM_FILES[runtime][0]}&per_page=1"


def fetch_upstream(base: str | None = None, timeout: float = 20, api: str | None = None,
                   runtime: str = "cpu") -> Upstream:
    """The newest snapshot of Colab's ``runtime`` image (``cpu``: pip-freeze.txt and os-info.txt;
    ``gpu``: pip-freeze.gpu.txt and os-info-gpu.txt): from GitHub (default), or from ``base`` (a
    mirror; ``api`` names its commit)."""
    base = base or os.environ.get("COLAB_CI_BACKEND_INFO")
    if base is None:
        base, api = RAW_BASE, api or API_ROOT
    commit, date, why = "", "", "no commit id: the snapshot was read from a mirror (--base) without --api"
    if api:
        try:
            commit, date = newest_commit(api, timeout, runtime)
            why = ""
        except Unreachable as exc:   # the API is rate-limited at times; the files alone still tell the drift
            why = str(exc)
    base = base.rstrip("/").replace("{commit}", commit or "main")
    freeze_name, os_name = UPSTREAM_FILES[runtime]
    freeze_text = _get(f"{base}/{freeze_name}", timeout)
    os_text = _get(f"{base}/{os_name}", timeout)
    return Upstream(parse_freeze(freeze_text, f"{base}/{freeze_name}"), parse_os_info(os_text, f"{base}/{os_name}"),
                    commit=commit, date=date, source=base, freeze_text=freeze_text, os_info_text=os_text,
                    why_no_commit=why, runtime=runtime)


def newest_commit(api: str, timeout: float = 20, runtime: str = "cpu") -> tuple[str, str]:
    """(full sha, YYYY-MM-DD) of the newest commit that changed ``runtime``'s freeze, from GitHub's API."""
    url = api.rstrip("/") + commits_path(runtime)
    text = _get(url, timeout)
    try:
        latest = json.loads(text)[0]
        sha, date = str(latest["sha"]), str(latest["commit"]["committer"]["date"])[:10]
    except (ValueError, LookupError, TypeError):
        raise Unreachable(f"{url} did not answer with a list of commits") from None
    if len(sha) != 40 or any(c not in "0123456789abcdef" for c in sha):
        raise Unreachable(f"{url} named {sha!r}, not a commit id")
    return sha, date


def _headers(url: str) -> dict[str, str]:
    """GITHUB_TOKEN for GitHub's API over https, and for nothing else (mirrors, raw files, tests)."""
    token = os.environ.get("GITHUB_TOKEN", "")
    if token and url.startswith(API_ROOT + "/") and urllib.parse.urlsplit(url).scheme == "https":
        return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}
    return {}


def _get(url: str, timeout: float) -> str:
    try:
        request = urllib.request.Request(url, headers=_headers(url))
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:   # 403/429: GitHub's rate limit; 404: no such file or commit
        raise Unreachable(f"cannot fetch {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"cannot fetch {url}: {reason}") from None


# ------------------------------------------------------------------------------------ comparing

def compare(profile: Profile, upstream: Upstream, needs: NotebookNeeds | None = None) -> Drift:
    """What moved between ``profile``'s image and the upstream snapshot: Python, numpy and torch first,
    then what Colab's kernel needs (the profile's pins) and what the notebook imports (``needs``), then
    the notebook's installs the image now ships; the rest is counted."""
    drift = Drift(profile.name, upstream.commit, upstream.date,
                  None if upstream.os_info.python == profile.python else (profile.python, upstream.os_info.python),
                  runtime=upstream.runtime)
    new = upstream.freeze.versions()
    for name in KEY_PACKAGES:   # numpy, then torch
        if new.get(name) != profile.image.get(name):
            drift.key[name] = (profile.image.get(name), new.get(name))
    watched = {p.name for p in profile.pins} | set(needs.import_distributions() if needs else [])
    for name in sorted(watched - set(KEY_PACKAGES)):
        if new.get(name) != profile.image.get(name):
            drift.pins[name] = (profile.image.get(name), new.get(name))
    for requirement in needs.installs if needs else []:
        try:
            name = canonicalize_name(Requirement(requirement).name)
        except InvalidRequirement:
            continue
        if name in new and name not in profile.image:
            drift.now_preinstalled[name] = new[name]
    said = watched | set(KEY_PACKAGES) | set(drift.now_preinstalled)
    drift.others_changed = sum(1 for name in set(new) | set(profile.image)   # "" (a URL install) is no version
                               if name not in said and (new.get(name) or None) != (profile.image.get(name) or None))
    return drift


def render(drift: Drift) -> str:
    where = f"{drift.upstream_commit[:7]} ({drift.upstream_date})" if drift.upstream_commit else "newest snapshot"
    lines = [f"{REPOSITORY} {where} against profile {drift.profile}: " + ("DRIFT" if drift.drifted else "no drift")]
    if drift.python:
        lines.append(f"  python {drift.python[0]} -> {drift.python[1]}")
    for name, (old, new) in drift.key.items():
        lines.append(f"  {name} {old or 'absent'} -> {new or 'removed'}")
    for name, (old, new) in sorted(drift.pins.items()):
        lines.append(f"  {name} {old or 'absent'} -> {new or 'removed'} (the kernel or the notebook uses it)")
    for name, version in sorted(drift.now_preinstalled.items()):
        lines.append(f"  {name} {version} is now pre-installed (the notebook installs it)")
    if drift.others_changed:
        lines.append(f"  {drift.others_changed} other distributions of the image changed (information only)")
    if drift.drifted:
        freeze, os_info = UPSTREAM_FILES[drift.runtime]
        runtime = " --runtime gpu" if drift.runtime == "gpu" else ""
        lines.append(f"  import it: harness images sync{runtime} --import (or harness images import {freeze} "
                     f"--os-info {os_info} --name <date>-<commit>-{drift.runtime} --commit <sha> --date <date>)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ importing

def profile_name(upstream: Upstream) -> str:
    """``<date>-<7 hex>-cpu`` (``pip-freeze.txt``) or ``-gpu`` (``pip-freeze.gpu.txt``)."""
    if not upstream.commit or not upstream.date:
        raise HarnessError(f"cannot import the snapshot without its commit id and date ({upstream.why_no_commit})")
    return f"{upstream.date}-{upstream.commit[:7]}-{upstream.runtime}"


def import_upstream(upstream: Upstream, profiles_dir: Path) -> tuple[Profile, Path]:
    """Write the snapshot as a new profile in ``profiles_dir`` (the closure computed as by ``images import``)."""
    from harness.images.profiles import import_profile, save_profile

    name = profile_name(upstream)
    if (profiles_dir / f"{name}.json").exists():
        raise HarnessError(f"{profiles_dir / (name + '.json')} already exists: the snapshot was imported before")
    with tempfile.TemporaryDirectory(prefix="colab-ci-sync-") as folder:
        # The file names are recorded in the profile's source, as `images import` records them.
        freeze_path, os_path = (Path(folder) / file for file in UPSTREAM_FILES[upstream.runtime])
        freeze_path.write_text(upstream.freeze_text, encoding="utf-8")
        os_path.write_text(upstream.os_info_text, encoding="utf-8")
        profile = import_profile(freeze_path, name=name, os_info=os_path, commit=upstream.commit,
                                 date=upstream.date, runtime=upstream.runtime)
    return profile, save_profile(profile, profiles_dir)


def render_markdown(drift: Drift, previous: Profile, upstream: Upstream,
                    imported: tuple[Profile, Path] | None = None) -> str:
    """The drift as markdown: the weekly workflow's pull request body and step summary."""
    if upstream.commit:
        link = f"[`{upstream.commit[:7]}`](https://github.com/{REPOSITORY}/commit/{upstream.commit}) ({upstream.date})"
    else:
        link = f"the newest snapshot ({upstream.source})"
    title = f"Colab image snapshot {imported[0].name}" if imported else "Colab image snapshot"
    lines = [f"## {title}: {'drift' if drift.drifted else 'no drift'}", "",
             f"{REPOSITORY} {link} against the newest profile `{previous.name}`.", "",
             f"| | `{previous.name}` | snapshot | |", "|---|---|---|---|"]
    new = upstream.freeze.versions()
    rows = [(name, previous.version(name) or "", new.get(name, "")) for name in KEY_PACKAGES]
    rows.append(("Python", previous.python, upstream.os_info.python))
    for label, old, now in rows:   # always numpy, torch, Python, first: what the notebook and the kernel stand on
        lines.append(f"| {label} | {old or 'absent'} | {now or 'absent'} | {'**changed**' if old != now else ''} |")
    if drift.pins:
        lines += ["", "What Colab's kernel or the notebook uses that changed:", "",
                  "| distribution | profile | snapshot |", "|---|---|---|"]
        lines += [f"| {name} | {old or 'absent'} | {now or 'removed'} |" for name, (old, now) in sorted(drift.pins.items())]
    if drift.now_preinstalled:
        lines += ["", "Now pre-installed, though the notebook installs them: "
                  + ", ".join(f"{n} {v}" for n, v in sorted(drift.now_preinstalled.items())) + "."]
    if drift.others_changed:
        lines += ["", f"{drift.others_changed} other distributions of the image changed (information only)."]
    if imported:
        profile, path = imported
        lines += ["", "### What this adds", "",
                  f"`harness/images/profiles/{path.name}`: Python {profile.python}, {len(profile.pins)} pins of "
                  f"{len(profile.image)} distributions (numpy {profile.version('numpy')}, torch "
                  f"{profile.version('torch')}). Once merged, every colab-ci run includes it "
                  "(`harness images list`); it is the newest image, so pull requests run Tier 1 on it.", "",
                  "Before merging: the colab-ci run on this branch (every tier on the new image), the preflight's "
                  "verdict for it, and a baseline for it (docs/baselines.md) once it passes."]
    return "\n".join(lines) + "\n"
