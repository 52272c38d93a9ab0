"""A folder of tiny wheels, so pip's and uv's real resolvers answer preflight questions without an index.

The wheels hold nothing but metadata. ``tiny_index`` makes the folder the preflight tests resolve
against (``PIP_NO_INDEX=1 PIP_FIND_LINKS=<folder>``, ``UV_NO_INDEX=1``): stand-ins for tabulate
0.8.10 and 0.9.0, ``colabci-left`` which keeps the image's tabulate, ``colabci-right`` which replaces it.
The tiny image pins tabulate 0.8.10 and says the notebook imports it, so replacing it corrupts.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

IMPORTED, IMPORTED_VERSION, NEWER = "tabulate", "0.8.10", "0.9.0"   # the tiny image's "the notebook imports it"


def tiny_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel with nothing in it but metadata: enough for pip's and uv's resolvers."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": "",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                            + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: colab-ci-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},"
                     f"{len(text.encode())}\n" for path, text in files.items())
    files[f"{info}/RECORD"] = record + f"{info}/RECORD,,\n"
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def tiny_index(folder: Path) -> Path:
    """A find-links folder: metadata-only stand-ins for tabulate 0.8.10 and 0.9.0 (so the resolvers
    answer without an index), ``colabci-left`` (needs tabulate<0.9: keeps the image's) and
    ``colabci-right`` (needs tabulate>=0.9: replaces it)."""
    folder.mkdir(parents=True, exist_ok=True)
    tiny_wheel(folder, IMPORTED, IMPORTED_VERSION)
    tiny_wheel(folder, IMPORTED, NEWER)
    tiny_wheel(folder, "colabci-left", "1.0", (f"{IMPORTED}<{NEWER}",))
    tiny_wheel(folder, "colabci-right", "1.0", (f"{IMPORTED}>={NEWER}",))
    return folder
