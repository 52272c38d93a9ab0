"""The import names a distribution provides, read from the file list of its wheel on the index.

``import sklearn`` comes from scikit-learn: what a distribution makes importable is the top of its
wheel's file tree (``top_level.txt`` is optional and often absent). A wheel is a zip whose file list
(the central directory) sits at its end, so two HTTP range requests read it without downloading the
wheel (torch's 800 MB wheel: ~2 MB read). A namespace package (a folder without ``__init__.py``,
such as ``google``) is not a name of its own: its subpackages are (``google.protobuf``,
``google.cloud.storage``), down to three levels.

Only ``images metadata`` (the generator of the shipped file) reads the index here; preflight reads the
shipped file.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

DEFAULT_INDEX = "https://pypi.org/simple/"
TIMEOUT_S = 60
TAIL = 1 << 16           # the end of the zip read first: the whole central directory of most wheels
_EXTENSION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.(?:py|pyc|so|pyd|abi3\.so|cpython-[^/]*\.so)$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def index_url() -> str:
    """The index pip would read first: ``$PIP_INDEX_URL``, else PyPI."""
    url = os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX
    return url if url.endswith("/") else url + "/"


def import_roots(paths: list[str]) -> list[str]:
    """The importable names a wheel with these files provides (``sklearn``; ``google.protobuf`` for a
    namespace package)."""
    tree: dict = {}
    for path in paths:
        parts = path.split("/")
        if parts[0].endswith(".dist-info"):
            continue
        if parts[0].endswith(".data"):   # only purelib/platlib land in site-packages
            if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                continue
            parts = parts[2:]
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if parts[-1]:
            node.setdefault(parts[-1], None)
    return sorted(_roots(tree, "", 0))


def _roots(tree: dict, prefix: str, depth: int) -> set[str]:
    found: set[str] = set()
    for name, child in tree.items():
        if child is None:
            module = _EXTENSION.match(name)
            if module and module.group(1) != "__init__" and depth == 0:
                found.add(prefix + module.group(1))
            continue
        if not _IDENTIFIER.match(name) or name == "__pycache__" or not _has_code(child):
            continue
        if "__init__.py" in child or any(_EXTENSION.match(n) and n.startswith("__init__.") for n in child) \
                or depth >= 2:
            found.add(prefix + name)
        else:   # a namespace package: its subpackages are the names
            inner = _roots(child, f"{prefix}{name}.", depth + 1)
            found |= inner or {prefix + name}
    return found


def _has_code(tree: dict) -> bool:
    return any((child is None and _EXTENSION.match(name)) or (child is not None and _has_code(child))
               for name, child in tree.items())


# ------------------------------------------------------------------------------------ the index

def release_wheel(name: str, version: str, python: str, arch: str = "x86_64",
                  index: str | None = None) -> str | None:
    """The URL of the wheel of ``name==version`` closest to the image's (CPython ``python`` on Linux
    ``arch``; a pure-Python one otherwise; any wheel of the release last: the names it provides rarely
    differ between builds), or None when the release has no wheel (or is not on the index)."""
    page = urljoin(index or index_url(), f"{canonicalize_name(name)}/")
    if page.startswith("file:"):
        return None
    request = urllib.request.Request(page, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
        files = json.load(answer).get("files", [])
    cp = "cp" + python.replace(".", "")
    best: tuple[int, str] | None = None
    for item in files:
        filename = item.get("filename", "")
        try:
            _n, wheel_version, _b, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            continue
        if str(wheel_version) != version and wheel_version.public != version:
            continue
        linux = [t for t in tags if arch in t.platform and "linux" in t.platform]
        score = 4 if any(t.interpreter == cp for t in linux) else 3 if linux else \
            2 if any(t.platform == "any" for t in tags) else 1
        if best is None or score > best[0]:
            best = (score, urljoin(page, item["url"]))
    return best[1] if best else None


def wheel_file_list(url: str) -> list[str]:
    """The paths in the wheel at ``url`` (a local file, or HTTP with range requests)."""
    if url.startswith("file:") or "://" not in url:
        path = Path(unquote(urlparse(url).path)) if url.startswith("file:") else Path(url)
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    tail, size = _range(url, f"bytes=-{TAIL}")
    start = size - len(tail)
    directory_at, directory_size = _central_directory(tail)
    if directory_at < start:     # a large file list: read from its start
        head, _size = _range(url, f"bytes={directory_at}-{start - 1}")
        tail, start = head + tail, directory_at
    with zipfile.ZipFile(_EndOfFile(tail, start)) as archive:
        return archive.namelist()


class _EndOfFile(io.RawIOBase):
    """A file of which only the end is known (from ``start``): zipfile's reader of the file list reads
    nothing before the central directory."""

    def __init__(self, data: bytes, start: int) -> None:
        super().__init__()
        self.data, self.start, self.position = data, start, 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        size = self.start + len(self.data)
        self.position = offset if whence == 0 else self.position + offset if whence == 1 else size + offset
        return self.position

    def read(self, n: int = -1) -> bytes:
        size = self.start + len(self.data)
        end = size if n is None or n < 0 else min(size, self.position + n)
        if self.position < self.start:
            raise OSError("read before the known end of the wheel")
        chunk = self.data[self.position - self.start:end - self.start]
        self.position = end
        return chunk


def _range(url: str, span: str) -> tuple[bytes, int]:
    request = urllib.request.Request(url, headers={"Range": span})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
        data = answer.read()
        total = answer.headers.get("Content-Range", "").rpartition("/")[2]
    return data, int(total) if total.isdigit() else len(data)


def _central_directory(tail: bytes) -> tuple[int, int]:
    """(offset, size) of the zip's central directory, from the end of the file (zip64 too)."""
    at = tail.rfind(b"PK\x05\x06")
    if at < 0:
        raise OSError("no end of central directory record in the wheel's last 64 kB")
    size, offset = struct.unpack("<II", tail[at + 12:at + 20])
    if offset == 0xFFFFFFFF or size == 0xFFFFFFFF:
        locator = tail.rfind(b"PK\x06\x06")
        if locator < 0:
            raise OSError("zip64 wheel without its end record in the last 64 kB")
        size, offset = struct.unpack("<QQ", tail[locator + 40:locator + 56])
    return offset, size
