"""An environment whose installed distributions are the whole image, as metadata: what preflight asks.

A resolver decides what an install would change from the installed distributions' metadata alone
(name, version, ``Requires-Dist``). So this environment holds, for every distribution of the image's
freeze, a ``*.dist-info`` folder with that metadata at the image's version (``torch 2.9.0+cu126``,
``datasets 4.0.0``, ``pytest 8.4.2``, ...; ``harness.images.image_metadata``), and no code at all;
only pip is installed for real, at the image's version, because preflight runs it. pip's or uv's
``--dry-run`` there answers "what would this install replace in the image", for every pre-installed
distribution, at the image's versions.

The metadata comes from the profile's shipped file (``harness.images.shipped_metadata``,
``profiles/<name>.metadata.json.gz``): written in seconds, with no index access. Only a profile
without one (or whose file describes another freeze), or ``refresh``, reads the index (cold: ~700
distributions, minutes; later images and folders reuse the per-distribution cache); where the index
cannot be read either, it is a ``HarnessError`` (exit 2), never a guess. pip, the one distribution
installed for real, comes from the index (or uv's cache); where neither has the image's pip, this
interpreter's bundled one (``ensurepip``) answers, and a fidelity line says so.

It lives in ``<cache>/image-metadata/<name>-<key>`` (``key``: the profile, this machine's
interpreter, and the metadata's source) and is then found up to date. Its fidelity lines say what differs from the
image: the interpreter pip runs on (markers are evaluated for it), and every distribution whose
metadata was built here from an sdist or is known by name and version only.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from harness.core.cache_lock import building
from harness.core.errors import HarnessError
from harness.images.fidelity import current_record
from harness.images.image_metadata import DistMetadata, Log, fetch_image_metadata
from harness.images.plan import Mode, machine_plan
from harness.images.profiles import Profile
from harness.images.shipped_metadata import metadata_path, read_shipped
from harness.images.uvtool import run_uv, uv_version

METADATA_RECIPE = 2
RECORD_FILE = "colab-ci-image-metadata.json"
INSTALLER = "colab-ci (metadata only)"


@dataclass
class MetadataEnv:
    name: str                 # the profile's
    path: Path
    key: str
    python_version: str
    fidelity: list[str]
    counts: dict[str, int]    # wheel / sdist / unknown
    seconds: float
    skipped: bool

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def metadata_env(profile: Profile, *, cache_dir: Path, mode: Mode = "auto", python: str | None = None,
                 force: bool = False, refresh: bool = False, log: Log = print) -> MetadataEnv:
    """Build (or find up to date) the full-image metadata environment of ``profile`` (the record is written
    last, so a half-built one never counts as built): from its shipped metadata, or (none, or ``refresh``)
    from the index."""
    start = time.perf_counter()
    plan = machine_plan(profile, mode, python, log=lambda _line: None)
    shipped = None if refresh else read_shipped(profile)
    source = f"shipped {_file_hash(shipped.path)}" if shipped else "index"
    key = hashlib.sha256(json.dumps([METADATA_RECIPE, profile.content_hash, plan.python, source]).encode()
                         ).hexdigest()[:12]
    env = Path(cache_dir) / "image-metadata" / f"{profile.name}-{key}"
    with building(env, on_wait=log):   # one builder per folder across processes (harness.core.cache_lock)
        if not force and not refresh and (found := _load(env, key)) is not None:
            found.seconds, found.skipped = time.perf_counter() - start, True
            log(f"{profile.name}: image metadata up to date, build skipped (key {key}): {env}")
            return found
        log(f"{profile.name}: building the image's metadata environment ({len(profile.image)} distributions, "
            f"Python {plan.python}) into {env}")
        if env.exists():          # half-built (no record): start again
            shutil.rmtree(env)
        env.parent.mkdir(parents=True, exist_ok=True)
        _uv(["venv", "--quiet", "-p", plan.interpreter, str(env)], profile)
        pip = profile.image.get("pip") or ""
        pip_note = _install_pip(env, pip, profile)
        if shipped is not None:
            dists = shipped.distributions
            log(f"{profile.name}: the image's metadata from {shipped.path.name} (no index access)")
        else:
            why = "--refresh" if refresh else f"no {metadata_path(profile).name} beside the profile"
            log(f"{profile.name}: {why}: reading the image's metadata from the package index")
            try:
                dists = fetch_image_metadata(profile, _reader(env), log, use_cache=not refresh)
            except HarnessError as exc:
                raise HarnessError(f"{profile.name}: {why}, and the image's metadata could not be read from the "
                                   f"index either: {exc}") from None
        site = _site_packages(env)
        for name, dist in dists.items():
            if name != "pip" and dist.version:      # pip is installed for real; no version, no metadata to write
                write_dist_info(site, dist)
        counts = {kind: sum(1 for d in dists.values() if d.source == kind) for kind in ("wheel", "sdist", "unknown")}
        fidelity = _fidelity(profile, plan.python, plan.reasons.get("python", ""), dists, pip)
        source_line = f"shipped file {shipped.path.name}" if shipped else "read from the package index"
        fidelity.append(f"the image's metadata: {source_line}")
        if pip_note:
            fidelity.append(pip_note)
        built = MetadataEnv(profile.name, env, key, plan.python, fidelity, counts, time.perf_counter() - start, False)
        write_record(built, dists)
        log(f"{profile.name}: image metadata built in {built.seconds:.1f} s ({counts['wheel']} from wheels, "
            f"{counts['sdist']} from sdists, {counts['unknown']} by name only)")
        return built


def _install_pip(env: Path, pip: str, profile: Profile) -> str:
    """pip, the one distribution the environment really has (preflight runs it): the image's version
    from uv's cache (the same wheel, no index access), else from the index, else this interpreter's
    bundled pip. Returns the fidelity line when it is not the image's."""
    python = env / "bin" / "python"
    wanted = f"pip=={pip}" if pip else "pip"
    base = ["pip", "install", "-p", str(python), "--no-deps", "--compile-bytecode", wanted]
    # One retry, not uv's default three with backoff: with the index unreachable those cost ~10 s per image
    # before the bundled pip below answers (preflight offline); a user's UV_HTTP_RETRIES wins.
    online = dict(os.environ, UV_HTTP_RETRIES=os.environ.get("UV_HTTP_RETRIES", "1"))
    if (pip and run_uv([*base[:2], "--offline", *base[2:]]).ok) or run_uv(base, env=online).ok:
        return ""
    # the wheel ensurepip would install, installed by uv (ensurepip itself also installs setuptools: minutes)
    found = subprocess.run([str(python), "-c", "import ensurepip, pathlib; print(*sorted(pathlib.Path("
                            "ensurepip.__file__).parent.joinpath('_bundled').glob('pip-*.whl')))"],
                           capture_output=True, text=True, timeout=120, check=False).stdout.split()
    bundled = run_uv([*base[:2], "--offline", *base[2:-1], found[-1]]) if found else None
    if bundled is None or not bundled.ok:
        raise HarnessError(f"{profile.name}: could not install pip into the image's metadata environment: neither "
                           f"{wanted} (uv's cache, the index) nor this interpreter's bundled pip "
                           f"({bundled.stderr.strip()[-300:] if bundled else 'ensurepip has no pip wheel'})")
    version = Path(found[-1]).name.split("-")[1]
    return (f"pip {version} (this interpreter's bundled pip) answers instead of the image's pip {pip or '(none)'}: "
            f"neither uv's cache nor the package index had {wanted}")


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def write_record(built: MetadataEnv, dists: dict[str, DistMetadata]) -> Path:
    """The environment's record (``image-metadata-env.schema.json``), written last: without one it is not built."""
    path = built.path / RECORD_FILE
    path.write_text(json.dumps({
        "key": built.key, "profile": built.name, "python_version": built.python_version,
        "fidelity": built.fidelity, "counts": built.counts, "uv": uv_version(),
        "distributions": {n: {"version": d.version, "source": d.source, "note": d.note} for n, d in dists.items()}},
        indent=1) + "\n", encoding="utf-8")
    return path


def write_dist_info(site: Path, dist: DistMetadata) -> Path:
    """A ``*.dist-info`` folder that a resolver reads as ``dist`` installed (and nothing to import)."""
    stem = f"{canonicalize_name(dist.name).replace('-', '_')}-{dist.version}"
    folder = site / f"{stem}.dist-info"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "METADATA").write_text(dist.metadata_text(), encoding="utf-8")
    (folder / "INSTALLER").write_text(INSTALLER + "\n", encoding="utf-8")
    (folder / "RECORD").write_text("".join(f"{stem}.dist-info/{n},,\n" for n in ("METADATA", "INSTALLER", "RECORD")),
                                   encoding="utf-8")
    return folder


def _fidelity(profile: Profile, python: str, why_python: str, dists: dict[str, DistMetadata], pip: str) -> list[str]:
    lines = []
    if python != profile.python:
        lines.append(f"python {profile.python} -> {python}: the resolver runs on Python {python}, so requirement "
                     f"markers are evaluated for it ({why_python or 'not planned'})")
    sdists = sorted(n for n, d in dists.items() if d.source == "sdist")
    unknown = {n: d.note for n, d in dists.items() if d.source == "unknown"}
    lines.append(f"preflight resolves against all {len(dists)} distributions of the image as metadata only, at the "
                 f"image's versions ({len(dists) - len(sdists) - len(unknown)} read from the wheel Colab installs, "
                 f"{len(sdists)} from sdists, {len(unknown)} by name and version only)")
    if sdists:
        lines.append(f"{len(sdists)} distribution{'s' if len(sdists) != 1 else ''} without a wheel for the image's "
                     f"platform: requirements built here from the sdist: {', '.join(sdists)}")
    for name, note in sorted(unknown.items()):
        if dists[name].version:
            lines.append(f"{name} {dists[name].version}: requirements unknown ({note})")
        else:
            lines.append(f"{name}: not installed, not even as metadata: the freeze gives no version ({note})")
    for name, dist in sorted(dists.items()):
        if dist.source != "unknown" and dist.note:
            lines.append(f"{name} {dist.version}: {dist.note}")
    if not pip:
        lines.append("pip is not in the image: the newest pip answers instead")
    return lines


def _reader(env: Path) -> Path:
    """The pip that reads the image's metadata: the harness's own where it has one (a pip >= 25 reads a
    wheel's metadata file alone where the index advertises it, PEP 658; the images' pip 24.1 downloads
    each wheel), else the image's.

    Asked of the installed metadata, not ``importlib.util.find_spec("pip")``: on Python < 3.12 a
    finder lookup of the top-level name ``pip`` makes setuptools' distutils shim give up for the rest
    of the process, and a later ``import setuptools`` (torch.utils.benchmark does one) then fails."""
    try:
        importlib.metadata.distribution("pip")
    except importlib.metadata.PackageNotFoundError:
        return env / "bin" / "python"
    return Path(sys.executable)


def _load(env: Path, key: str) -> MetadataEnv | None:
    data = current_record(env, RECORD_FILE, key, "image-metadata-env")
    if data is None:
        return None
    return MetadataEnv(data["profile"], env, key, data["python_version"], list(data["fidelity"]),
                       dict(data["counts"]), 0.0, True)


def _site_packages(env: Path) -> Path:
    found = sorted(env.glob("lib/python*/site-packages"))
    if not found:
        raise HarnessError(f"{env}: no site-packages folder (was the venv created?)")
    return found[0]


def _uv(args: list[str], profile: Profile) -> None:
    result = run_uv(args)
    if not result.ok:
        lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
        raise HarnessError(f"{profile.name}: could not build the image's metadata environment "
                           f"({result.command}): {' '.join(lines)[:800]}")

