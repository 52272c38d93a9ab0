"""The resolver's view of an image, shipped beside its profile: ``profiles/<name>.metadata.json.gz``.

What preflight needs of every distribution of the image's freeze is a pure function of the pinned
freeze: name, version, ``Requires-Dist`` (with markers), ``Requires-Python``, ``Provides-Extra``,
where that came from (the wheel Colab installs, an sdist built here, or nothing: "unknown", with
why), and the import names it provides (``harness.images.wheel_contents``). ``colab-ci images metadata
NAME`` (and ``images import``/``images sync``) read it once from the index and write this file
(gzip, JSON, keys sorted, no timestamp inside the gzip: the same freeze gives the same bytes);
preflight's metadata environment is then written from it in seconds, with no index access
(``harness.images.metadata_env``). The file names the profile's ``content_hash``: a profile edited
since is not described by it, and the index is read instead.

Schema: ``core/schemas/image-metadata.schema.json`` (``schema_version`` 1).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from harness import __version__
from harness.core.json_files import read_json
from harness.images.image_metadata import DistMetadata, Log, fetch_image_metadata
from harness.images.profiles import PROFILES_DIR, Profile
from harness.images.wheel_contents import import_roots, index_url, release_wheel, wheel_file_list

METADATA_SCHEMA_VERSION = 1
SUFFIX = ".metadata.json.gz"
WORKERS = 8      # wheel file lists read at a time (two small range requests each)


@dataclass
class ShippedMetadata:
    path: Path
    profile_hash: str
    distributions: dict[str, DistMetadata]
    imports: dict[str, list[str]]         # canonical name -> the import names it provides
    imports_unknown: dict[str, str]       # canonical name -> why its import names could not be read

    def import_map(self) -> dict[str, tuple[str, ...]]:
        """Import name -> the distributions of the image that provide it (``packages_distributions()``)."""
        found: dict[str, list[str]] = {}
        for name, modules in sorted(self.imports.items()):
            for module in modules:
                found.setdefault(module, []).append(name)
        return {module: tuple(names) for module, names in found.items()}

    @property
    def metadata_unknown(self) -> list[str]:
        return sorted(n for n, d in self.distributions.items() if d.source == "unknown")


def metadata_path(profile: Profile, directory: Path | None = None) -> Path:
    """Where ``profile``'s file is: beside the profile it was loaded from (else in ``directory``, else the
    shipped profiles' folder)."""
    folder = profile.loaded_from.parent if profile.loaded_from else Path(directory or PROFILES_DIR)
    return folder / f"{profile.name}{SUFFIX}"


def read_shipped(profile: Profile, directory: Path | None = None) -> ShippedMetadata | None:
    """The file of ``profile``, or None when there is none or it describes another freeze (the profile
    changed since: the index is read instead). A file that is there but unreadable or not what its schema
    says is a ``JsonFileError`` (exit 2): never silently another source."""
    path = metadata_path(profile, directory)
    if not path.is_file():
        return None
    stat = path.stat()
    data = _document(str(path), stat.st_mtime_ns, stat.st_size)
    if data["profile_hash"] != profile.content_hash:
        return None
    dists = {name: DistMetadata(d["name"], d["version"], list(d["requires_dist"]), d.get("requires_python", ""),
                                list(d.get("provides_extra") or []), d["source"], d.get("note", ""))
             for name, d in data["distributions"].items()}
    imports = {name: list(d["imports"]) for name, d in data["distributions"].items() if "imports" in d}
    return ShippedMetadata(path, data["profile_hash"], dists, imports, dict(data.get("imports_unknown", {})))


@lru_cache(maxsize=8)
def _document(path: str, _mtime_ns: int, _size: int) -> dict:
    """The file, read and checked once per process while it is unchanged: preflight reads it for the
    metadata environment and again for the import names, per image (0.3-0.7 s of validation each)."""
    return read_json(Path(path), "image-metadata")


def generate(profile: Profile, directory: Path | None = None, *, refresh: bool = False,
             log: Log = print) -> ShippedMetadata:
    """Read the image's metadata and import names from the index and write ``profile``'s file (a shipped
    file describing the very same freeze is copied instead, unless ``refresh``)."""
    path = metadata_path(profile, directory)
    shipped = PROFILES_DIR / path.name
    if not refresh and shipped.is_file() and shipped.resolve() != path.resolve() and \
            read_json(shipped, "image-metadata")["profile_hash"] == profile.content_hash:
        path.write_bytes(shipped.read_bytes())
        log(f"{profile.name}: the shipped {shipped.name} describes this very freeze: copied to {path}")
        copied = read_shipped(profile, directory)
        if copied is not None:
            return copied
    dists = fetch_image_metadata(profile, Path(sys.executable), log, use_cache=not refresh)
    python = ".".join(profile.python.split(".")[:2])
    arch = (profile.platform or "x86_64-").partition("-")[0]
    log(f"{profile.name}: reading the import names of {len(dists)} distributions from their wheels' file lists")
    with ThreadPoolExecutor(WORKERS) as pool:
        found = dict(pool.map(lambda d: (d[0], _imports(d[1], python, arch)), dists.items()))
    imports = {name: modules for name, (modules, _why) in found.items() if modules is not None}
    unknown = {name: why for name, (modules, why) in found.items() if modules is None}
    write_shipped(path, profile, dists, imports, unknown)
    log(f"{profile.name}: wrote {path} ({path.stat().st_size} bytes; metadata unknown for "
        f"{sum(d.source == 'unknown' for d in dists.values())}, import names unknown for {len(unknown)})")
    return ShippedMetadata(path, profile.content_hash, dists, imports, unknown)


def write_shipped(path: Path, profile: Profile, dists: dict[str, DistMetadata], imports: dict[str, list[str]],
                  imports_unknown: dict[str, str]) -> Path:
    document = {
        "schema_version": METADATA_SCHEMA_VERSION, "profile": profile.name, "profile_hash": profile.content_hash,
        "python": profile.python, "platform": profile.platform,
        "generated": {"by": f"colab-ci {__version__} images metadata", "index": index_url(),
                      "date": dt.date.today().isoformat()},
        "distributions": {name: {**_entry(dist), **({"imports": imports[name]} if name in imports else {})}
                          for name, dist in sorted(dists.items())},
        "metadata_unknown": sorted(n for n, d in dists.items() if d.source == "unknown"),
        "imports_unknown": dict(sorted(imports_unknown.items())),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(gzip.compress(text, compresslevel=9, mtime=0))
    temporary.replace(path)
    return path


def _entry(dist: DistMetadata) -> dict:
    entry: dict = {"name": dist.name, "version": dist.version, "requires_dist": dist.requires_dist,
                   "source": dist.source}
    if dist.requires_python:
        entry["requires_python"] = dist.requires_python
    if dist.provides_extra:
        entry["provides_extra"] = dist.provides_extra
    if dist.note:
        entry["note"] = dist.note
    return entry


def _imports(dist: DistMetadata, python: str, arch: str) -> tuple[list[str] | None, str]:
    """The import names of ``dist``'s release (its public version's wheel), or (None, why)."""
    version = dist.version.split("+")[0]
    if not version:
        return None, "no version in the freeze"
    try:
        url = release_wheel(dist.name, version, python, arch)
        if url is None:
            return None, "no wheel of this release on the index (an sdist's names are only known once built)"
        return import_roots(wheel_file_list(url)), ""
    except (OSError, ValueError, zipfile.BadZipFile) as exc:   # urllib's errors are OSErrors
        return None, f"its wheel's file list could not be read: {exc}"[:200]


def image_import_names(profile: Profile) -> dict[str, tuple[str, ...]] | None:
    """``profile``'s import-name map (for ``notebook_needs(..., provided=)``), or None without a file."""
    shipped = read_shipped(profile)
    return shipped.import_map() if shipped else None
