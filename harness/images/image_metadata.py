"""The metadata of every distribution of an image, at the image's versions, as pip reads it from the index.

A resolver needs of an installed distribution only its core metadata (``Requires-Dist``,
``Requires-Python``, ``Provides-Extra``), not its code. pip's ``--report`` gives exactly that for
what it would install, and ``--dry-run`` reads it from the index without downloading a wheel where
the index serves the wheel's metadata on its own (PEP 658, as PyPI does):

    pip install --dry-run --ignore-installed --no-deps --report - --only-binary=:all: \\
        --python-version 3.12 --implementation cp --abi cp312 --platform manylinux_2_35_x86_64 ... -r part.txt

so each distribution's metadata is that of the very wheel Colab's pip picks (the image's Python on
Colab's platform). The image's ~700 entries go in parts, in parallel. A release with no wheel for
that platform is read from its sdist instead (pip builds its metadata here, with this interpreter);
one whose metadata cannot be had (a file no index serves, ``google-colab @ file://``; an sdist that
does not build here) is known by name and version only, and every such entry is said.

A local version (``torch==2.9.0+cu126``, the PyTorch index's build) is read from the same release on
the index (``torch==2.9.0``) and given the image's version: its CUDA-only requirements (``nvidia-*``,
``triton``) are pinned to the image's own versions of them (those the image lacks are dropped), or
dropped for a ``+cpu`` build, which has none.

Metadata of a released file never changes, so each is cached (``metadata_cache_dir()``, shared by
every image and every cache folder): a second image, or a fresh environment folder, reads only what
it has not read before.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Collection

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from harness.core.errors import HarnessError
from harness.core.json_files import JsonFileError, read_json
from harness.images.closure import COLAB_PLATFORM, CUDA_ONLY
from harness.images.freeze import FreezeEntry
from harness.images.profiles import Profile

Log = Callable[[str], None]
PART = 40          # distributions per pip call
WORKERS = 4        # pip calls at a time (they mostly wait on the index)
FAILURE_TTL_S = 24 * 3600   # metadata that could not be had here is asked again after a day
_NOT_FOUND = re.compile(r"No matching distribution found for (\S+)")
# pip could not reach an index (its retries' warnings, its fetch errors): its "no matching distribution"
# then says nothing about the release, so nothing is read as "unknown" from it (fail closed).
_FETCH_FAILED = re.compile(r"Could not fetch URL (\S+?): (.*?) - skipping")
_UNREACHABLE = re.compile(r"after connection broken by|Could not fetch URL|Failed to establish a new connection|"
                          r"Temporary failure in name resolution|Max retries exceeded|Read timed out")


@dataclass
class DistMetadata:
    name: str                        # as the distribution spells it (PyYAML)
    version: str                     # the image's
    requires_dist: list[str]
    requires_python: str = ""
    provides_extra: list[str] | None = None
    source: str = "wheel"            # "wheel" | "sdist" (built here) | "unknown" (name and version only)
    note: str = ""                   # why unknown, or what was rewritten

    def metadata_text(self) -> str:
        """``METADATA`` as a resolver reads it (RFC 822 headers, no description)."""
        lines = ["Metadata-Version: 2.1", f"Name: {self.name}", f"Version: {self.version}"]
        if self.requires_python:
            lines.append(f"Requires-Python: {self.requires_python}")
        lines += [f"Provides-Extra: {extra}" for extra in self.provides_extra or []]
        lines += [f"Requires-Dist: {requirement}" for requirement in self.requires_dist]
        return "\n".join(lines) + "\n\n"


def metadata_cache_dir() -> Path:
    """Where fetched metadata is kept: ``$COLAB_CI_METADATA_CACHE``, else ``colab-ci/metadata`` in the
    user's cache folder (``$XDG_CACHE_HOME``, else ``~/.cache``)."""
    if os.environ.get("COLAB_CI_METADATA_CACHE"):
        return Path(os.environ["COLAB_CI_METADATA_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "colab-ci" / "metadata"


def fetch_image_metadata(profile: Profile, pip_python: Path, log: Log = print,
                         only: Collection[str] | None = None, *, use_cache: bool = True) -> dict[str, DistMetadata]:
    """The metadata of every entry of ``profile.image`` (or of those named in ``only``), pip
    (``pip_python -m pip``) reading the index (``use_cache=False``: every entry read again, the cache
    rewritten)."""
    freeze = profile.freeze()
    python = ".".join(profile.python.split(".")[:2])
    wheel_args = _platform_args(python, profile.platform or COLAB_PLATFORM)
    found: dict[str, DistMetadata] = {}
    wanted: dict[str, FreezeEntry] = {}
    for name, entry in freeze.entries.items():
        if only is not None and name not in only:
            continue
        if entry.unavailable or not entry.version:
            found[name] = DistMetadata(name, entry.version, [], source="unknown",
                                       note=entry.unavailable or "no version in the freeze")
        else:
            wanted[name] = entry
    cache = metadata_cache_dir()
    platform_key = hashlib.sha256(" ".join(wheel_args).encode()).hexdigest()[:10]
    todo: list[str] = []
    for name, entry in wanted.items():
        cached = _read_cache(cache / f"{name}-{entry.base_version}-{platform_key}.json") if use_cache else None
        if cached is not None and "failed" in cached:
            found[name] = DistMetadata(name, entry.version, [], source="unknown", note=cached["failed"])
        elif cached is not None:
            found[name] = _as_image(cached, entry, freeze.versions())
        else:
            todo.append(name)
    if todo:
        log(f"{profile.name}: reading the metadata of {len(todo)} distributions from the index "
            f"({len(wanted) - len(todo)} cached)")
    parts = [todo[i:i + PART] for i in range(0, len(todo), PART)]
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda part: _wheel_metadata([wanted[n] for n in part], pip_python, wheel_args),
                                parts))
    no_wheel: list[FreezeEntry] = []
    for metadata, missing in results:
        for name, data in metadata.items():
            _write_cache(cache / f"{name}-{wanted[name].base_version}-{platform_key}.json", data)
            found[name] = _as_image(data, wanted[name], freeze.versions())
        no_wheel += missing
    if no_wheel:
        log(f"{profile.name}: {len(no_wheel)} distributions have no wheel for Python {python} on "
            f"{profile.platform or COLAB_PLATFORM}; building their metadata from the sdists here")
    with ThreadPoolExecutor(WORKERS) as pool:
        for entry, data, why in pool.map(lambda e: _sdist_metadata(e, pip_python), no_wheel):
            if data is not None:
                _write_cache(cache / f"{entry.name}-{entry.base_version}-{platform_key}.json", data)
                found[entry.name] = _as_image(data, entry, freeze.versions())
            else:   # remembered for a day: a build that fails here fails again (no headers, no compiler)
                _write_cache(cache / f"{entry.name}-{entry.base_version}-{platform_key}.json",
                             {"failed": why, "until": time.time() + FAILURE_TTL_S})
                found[entry.name] = DistMetadata(entry.name, entry.version, [], source="unknown", note=why)
    return {name: found[name] for name in freeze.entries if name in found}


# ------------------------------------------------------------------------------------ pip

def _platform_args(python: str, platform: str) -> list[str]:
    """pip's ``--platform`` list for ``x86_64-manylinux_2_35``: every manylinux tag Colab's pip accepts."""
    arch, _, libc = platform.partition("-")
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)", libc)
    if not match:
        raise HarnessError(f"platform {platform!r}: expected ARCH-manylinux_X_Y")
    major, minor = int(match.group(1)), int(match.group(2))
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 4, -1)]
    tags += [f"manylinux{alias}_{arch}" for alias, least in (("2014", 17), ("2010", 12), ("1", 5)) if minor >= least]
    tags.append(f"linux_{arch}")
    abi = "cp" + python.replace(".", "")
    return ["--python-version", python, "--implementation", "cp", "--abi", abi, "--only-binary=:all:",
            *[arg for tag in tags for arg in ("--platform", tag)]]


def _pip_report(pip_python: Path, args: list[str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONIOENCODING="utf-8")
    # --ignore-requires-python: pip would check Requires-Python against the interpreter it runs on, not the
    # image's (--python-version); the wheel's tags already say which Python it is for.
    with tempfile.TemporaryDirectory(prefix="colab-ci-pip-log-") as folder:
        log = Path(folder) / "pip.log"
        # --log: an index page pip could not fetch is said only in its debug log (--quiet, no retries)
        done = subprocess.run([str(pip_python), "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps",
                               "--ignore-requires-python", "--quiet", "--progress-bar", "off", "--log", str(log),
                               "--report", "-", *args],
                              capture_output=True, text=True, timeout=timeout, env=env, check=False)
        debug = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    unfetched = [f"Could not fetch URL {url}: {why}" for url, why in _FETCH_FAILED.findall(debug)
                 if not re.match(r"(404|410)\b", why)]
    if unfetched:
        done.stderr = "\n".join([done.stderr, *unfetched])
    return done


def _wheel_metadata(entries: list[FreezeEntry], pip_python: Path,
                    wheel_args: list[str]) -> tuple[dict[str, dict], list[FreezeEntry]]:
    """pip's report for ``entries`` (wheels for the image's platform); those without one are returned."""
    todo = {f"{e.name}=={e.base_version}": e for e in entries}
    missing: list[FreezeEntry] = []
    while todo:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="colab-ci-image-", delete=False) as handle:
            handle.write("\n".join(todo) + "\n")
        try:
            done = _pip_report(pip_python, [*wheel_args, "-r", handle.name])
        finally:
            os.unlink(handle.name)
        if done.returncode == 0:
            return _by_name(done.stdout), missing
        _raise_if_unreachable(done.stderr)
        absent = _NOT_FOUND.search(done.stderr)
        if not absent or absent.group(1) not in todo:
            raise HarnessError(f"pip could not read the image's metadata from the index: {_last_error(done.stderr)}")
        missing.append(todo.pop(absent.group(1)))
    return {}, missing


def _sdist_metadata(entry: FreezeEntry, pip_python: Path) -> tuple[FreezeEntry, dict | None, str]:
    try:
        done = _pip_report(pip_python, [f"{entry.name}=={entry.base_version}"], timeout=600)
    except subprocess.TimeoutExpired:
        return entry, None, "its metadata could not be read: pip took more than 10 minutes"
    if done.returncode != 0:    # (the index was reached in the wheel pass: a build's own fetch may fail here)
        where = f" (the image's build comes from {entry.source})" if entry.source != "PyPI" else ""
        return entry, None, f"its metadata could not be had here{where}: {_last_error(done.stderr)[:200]}"
    data = list(_by_name(done.stdout).values())
    if not data:
        return entry, None, "pip reported nothing to install for it"
    return entry, data[0], ""


def _raise_if_unreachable(stderr: str) -> None:
    found = next((line for line in stderr.splitlines() if _UNREACHABLE.search(line)), "")
    if found:
        raise HarnessError(f"pip could not reach the package index: {found.strip()[:300]}")


def _by_name(report_text: str) -> dict[str, dict]:
    report = json.loads(report_text)
    found = {}
    for item in report.get("install", []):
        meta = item["metadata"]
        found[canonicalize_name(meta["name"])] = {
            "name": meta["name"], "requires_dist": meta.get("requires_dist") or [],
            "requires_python": meta.get("requires_python") or "", "provides_extra": meta.get("provides_extra") or [],
            "source": "wheel" if (item.get("download_info") or {}).get("url", "").endswith(".whl") else "sdist"}
    return found


def _last_error(stderr: str) -> str:
    """Why pip failed, in the fewest words: the exception a build raised (``OSError: pkg-config was not able
    to find ... ['ipopt']``), else pip's first ``ERROR:`` line, else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and "is ignored: it is neither" not in line]
    raised = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception): \S", line)]
    errors = [line for line in lines if line.startswith("ERROR:")]
    plain = [line for line in lines if not line.startswith(("note:", "hint:", "╰", "│", "×", "[end of output]"))]
    return (raised[-1] if raised else errors[0] if errors else plain[-1] if plain else "no output").removeprefix(
        "ERROR: ")


# ------------------------------------------------------------------------------------ the image's versions

def _as_image(data: dict, entry: FreezeEntry, image: dict[str, str]) -> DistMetadata:
    """The fetched metadata of ``entry``'s public release, as the image's build of it."""
    found = DistMetadata(data["name"], entry.version, list(data["requires_dist"]), data.get("requires_python", ""),
                         list(data.get("provides_extra") or []), data.get("source", "wheel"))
    label = Version(entry.version).local or ""
    if not label:
        return found
    kept = []
    for text in found.requires_dist:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            kept.append(text)
            continue
        name = canonicalize_name(req.name)
        if not CUDA_ONLY.match(name):
            kept.append(text)
        elif label.startswith("cu") and image.get(name):
            marker = f"; {req.marker}" if req.marker else ""
            kept.append(f"{req.name}=={image[name]}{marker}")
    found.requires_dist = kept
    cuda = "dropped (a CPU build has none)" if label == "cpu" else "pinned to the image's own versions of them"
    found.note = (f"read from {entry.name} {entry.base_version} on the index (the image's build comes from "
                  f"{entry.source}); its CUDA-only requirements {cuda}")
    return found


def _read_cache(path: Path) -> dict | None:
    """The cached metadata (or remembered failure) in ``path``; None when there is none, it expired, or it
    is unreadable or not what ``image-metadata-cache.schema.json`` says (it is read from the index again)."""
    try:
        data = read_json(path, "image-metadata-cache")
    except JsonFileError:
        return None
    return None if "failed" in data and data.get("until", 0) < time.time() else data


def _write_cache(path: Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        temporary.replace(path)
    except OSError:
        pass     # a cache that cannot be written only costs time


def as_json(found: dict[str, DistMetadata]) -> dict[str, dict]:
    return {name: asdict(dist) for name, dist in found.items()}
