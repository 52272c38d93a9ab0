"""Read a Colab image snapshot: its ``pip freeze`` and its ``os-info.txt``.

A freeze line is one of::

    numpy==2.1.3                                    pinned (a version, maybe local: torch==2.9.0+cu126)
    torch @ https://download.pytorch.org/.../torch-2.11.0%2Bcpu-cp313-cp313-....whl   a wheel by URL
    google-colab @ file:///colabtools/dist/google_colab-1.0.0.tar.gz                 a local file
    jupyter_kernel_gateway @ git+https://github.com/googlecolab/kernel_gateway@b134e99  a VCS checkout
    -e /path/to/project                             an editable install

Only the first two can be had from a package index: ``FreezeEntry.unavailable`` says why the others
cannot. A wheel URL's version comes from its file name. Anything else (``numpy>=2``, a typo) is a
``HarnessError`` naming the file and line number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from harness.core.errors import HarnessError

# Hosts of wheel URLs in Colab's freezes, and the index that serves the same wheels.
URL_INDEXES = {
    "download.pytorch.org": "the PyTorch index (download.pytorch.org)",
    "pypi.nvidia.com": "NVIDIA's index (pypi.nvidia.com)",
    "files.pythonhosted.org": "PyPI",
}


@dataclass(frozen=True)
class FreezeEntry:
    name: str            # canonical distribution name
    version: str         # "" when the line carries none (file:, git+, -e)
    line_no: int
    line: str            # as written
    url: str = ""        # for ``name @ URL`` lines

    @property
    def local(self) -> str:
        """The local version label (``cpu`` of ``2.11.0+cpu``), or ""."""
        return Version(self.version).local or "" if self.version else ""

    @property
    def base_version(self) -> str:
        """The version an index other than the build's own serves (``2.11.0`` of ``2.11.0+cpu``)."""
        return Version(self.version).public if self.version else ""

    @property
    def unavailable(self) -> str:
        """Why no package index serves this entry, or "" when one does."""
        if self.line.startswith("-e"):
            return "an editable install (a local source tree inside the image)"
        if not self.url:
            return ""
        scheme = urlparse(self.url).scheme
        if scheme == "file":
            return "a local file inside the image (file://); no index serves it"
        if self.url.startswith(("git+", "hg+", "svn+", "bzr+")):
            return f"a {self.url.split('+', 1)[0]} checkout ({self.url.split('@')[0]}...); no index serves it"
        if not self.version:
            return "a URL that is not a wheel file; its version is unknown"
        host = urlparse(self.url).hostname or ""
        if host not in URL_INDEXES:
            return f"a wheel downloaded from {host}, which is not a package index"
        return ""

    @property
    def source(self) -> str:
        """Where the image's build of this entry comes from, in words."""
        if self.url:
            return URL_INDEXES.get(urlparse(self.url).hostname or "", self.url)
        if self.local:
            return "the PyTorch index" if self.local.startswith(("cpu", "cu", "rocm", "xpu")) else "a local build"
        return "PyPI"


@dataclass(frozen=True)
class Freeze:
    path: str
    entries: dict[str, FreezeEntry]   # canonical name -> entry, in file order

    def get(self, name: str) -> FreezeEntry | None:
        return self.entries.get(canonicalize_name(name))

    def version(self, name: str) -> str | None:
        entry = self.get(name)
        return entry.version if entry else None

    def versions(self) -> dict[str, str]:
        return {name: entry.version for name, entry in self.entries.items()}


@dataclass(frozen=True)
class OsInfo:
    os: str              # "Ubuntu 22.04.5 LTS"
    python: str          # "3.13.15"


def parse_freeze(text: str, path: str = "pip-freeze.txt") -> Freeze:
    entries: dict[str, FreezeEntry] = {}
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry = _parse_line(line, line_no, path)
        if entry.name in entries:
            raise HarnessError(f"{path}:{line_no}: {entry.name} is listed twice (first on line "
                               f"{entries[entry.name].line_no})")
        entries[entry.name] = entry
    if not entries:
        raise HarnessError(f"{path}: no packages in this freeze (is it the output of `pip freeze`?)")
    return Freeze(path, entries)


def read_freeze(path: str | Path) -> Freeze:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"cannot read freeze {path}: {exc.strerror or exc}") from None
    return parse_freeze(text, str(path))


def parse_os_info(text: str, path: str = "os-info.txt") -> OsInfo:
    """``lsb_release -ds; python --version`` output (Colab adds R and Julia lines, ignored)."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    python = next((m.group(1) for line in lines if (m := re.fullmatch(r"Python (\d+\.\d+\.\d+)\S*", line))), "")
    if not python:
        raise HarnessError(f"{path}: no 'Python X.Y.Z' line")
    os_name = next((line for line in lines if not line.startswith(("Python ", "R version", "julia"))), "")
    return OsInfo(os=os_name, python=python)


def read_os_info(path: str | Path) -> OsInfo:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"cannot read os-info {path}: {exc.strerror or exc}") from None
    return parse_os_info(text, str(path))


def python_from_wheel_tags(freeze: Freeze) -> str:
    """``3.13`` from the tags of the first wheel URL in the freeze built for one CPython
    (``cp313-cp313``; an ``abi3`` or ``none`` wheel names only the oldest Python it runs on), or ""
    (for freezes without os-info)."""
    for entry in freeze.entries.values():
        filename = _filename(entry.url) if entry.url else ""
        if not filename.endswith(".whl"):
            continue
        try:
            tags = parse_wheel_filename(filename)[3]
        except (InvalidWheelFilename, InvalidVersion):
            continue
        for tag in sorted(tags, key=str):
            digits = tag.interpreter[2:]
            if tag.interpreter.startswith("cp") and digits.isdigit() and tag.abi not in ("abi3", "none"):
                return f"{digits[0]}.{digits[1:]}"
    return ""


def _parse_line(line: str, line_no: int, path: str) -> FreezeEntry:
    where = f"{path}:{line_no}"
    if line.startswith("-e ") or line.startswith("--editable"):
        target = line.split(None, 1)[1] if " " in line else ""
        name = re.search(r"#egg=([A-Za-z0-9._-]+)", target)
        return FreezeEntry(canonicalize_name(name.group(1)) if name else target, "", line_no, line, target)
    try:
        req = Requirement(line)
    except InvalidRequirement as exc:
        raise HarnessError(f"{where}: cannot parse freeze line {line!r} ({exc})") from None
    name = canonicalize_name(req.name)
    if req.url:
        return FreezeEntry(name, _version_from_url(req.url), line_no, line, req.url)
    pins = [spec for spec in req.specifier if spec.operator in ("==", "===")]
    if len(pins) != 1 or len(req.specifier) != 1 or "*" in pins[0].version:
        raise HarnessError(f"{where}: {line!r} is not a pinned version (expected NAME==VERSION or NAME @ URL)")
    try:
        version = str(Version(pins[0].version))
    except InvalidVersion:
        raise HarnessError(f"{where}: {line!r} has an invalid version") from None
    return FreezeEntry(name, version, line_no, line)


def _version_from_url(url: str) -> str:
    """The version in a wheel's or an sdist's file name (``google_colab-1.0.0.tar.gz``: 1.0.0), or ""."""
    filename = _filename(url)
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        if filename.endswith((".tar.gz", ".zip")):
            return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return ""
    return ""


def _filename(url: str) -> str:
    """The file name a URL ends in, unquoted (``torch-2.11.0+cpu-cp313-...whl``)."""
    return unquote(urlparse(url).path.rsplit("/", 1)[-1])
