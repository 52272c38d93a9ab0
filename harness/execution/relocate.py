"""Prefix relocation: point a venv's few prefix-naming files at a new prefix.

A venv names its own prefix in ``pyvenv.cfg``, in the shebangs and ``activate*`` scripts of
``bin/`` and in absolute symlinks there. Both disposable environments need those files relocated:
the hard-link copy (``harness.execution.venv_copy``) rewrites them inside the copy, the overlay view
(``harness.execution.overlayfs``) writes relocated versions into its upper layer. Both go through
``relocate_prefix``, which reads from ``source`` and writes into ``dest`` (the same folder for the
copy) and only ever writes *new* files (write beside, then ``os.replace``): a hard-linked original
is never written in place, and nothing is written through a symlink out of ``dest``.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

_MAX_SCRIPT_BYTES = 4 * 1024 * 1024   # bin/ files larger than this are binaries, not scripts naming the prefix


def relocate_prefix(source: Path, dest: Path, new_prefix: str, old_prefixes: list[str], *,
                    recreate_pth: bool = False) -> list[Path]:
    """Relocate the venv read at ``source`` to ``new_prefix``, writing the changed files under ``dest``;
    returns the files written.

    Writes (as new files) every regular file in ``bin/`` and ``pyvenv.cfg`` that names an old
    prefix, and re-targets absolute symlinks in ``bin/`` into an old prefix. With ``recreate_pth``
    every ``*.pth`` file in site-packages is re-created too (pip rewrites those in place when it
    removes an entry, which would write through a hard link).
    """
    olds = sorted({p.rstrip("/") for p in old_prefixes if p}, key=len, reverse=True)
    pattern = re.compile(b"|".join(re.escape(o.encode()) for o in olds) + rb"(?=[/\"'\s:;]|$)")
    new = new_prefix.encode()
    written: list[Path] = []

    def rewrite(rel: Path, always: bool = False) -> None:
        data = (source / rel).read_bytes()
        new_data = pattern.sub(lambda _m: new, data)
        if always or new_data != data:
            _write_new(dest / rel, new_data, source / rel, dest)
            written.append(dest / rel)

    candidates = [Path("pyvenv.cfg")]
    bindir = source / "bin"
    if bindir.is_dir():
        (dest / "bin").mkdir(exist_ok=True)
        for entry in os.scandir(bindir):
            rel = Path("bin") / entry.name
            if entry.is_symlink():
                link = os.readlink(entry.path)
                for old in olds:
                    if link == old or link.startswith(old + "/"):
                        target = dest / rel
                        if os.path.lexists(target):
                            target.unlink()
                        os.symlink(new_prefix + link[len(old):], target)
                        written.append(target)
                        break
            elif entry.is_file() and entry.stat().st_size < _MAX_SCRIPT_BYTES:
                candidates.append(rel)
    for rel in candidates:
        if (source / rel).is_file():
            rewrite(rel)
    if recreate_pth:
        seen: set[str] = set()
        for site in sorted(source.glob("lib/python*/site-packages")):
            for pth in site.glob("*.pth"):
                real = os.path.realpath(pth)
                if real not in seen and not pth.is_symlink():
                    seen.add(real)
                    rewrite(pth.relative_to(source), always=True)
    return written


def _write_new(path: Path, data: bytes, mode_from: Path, root: Path) -> None:
    """Write ``data`` as a new inode at ``path`` (with ``mode_from``'s permissions): a hard-linked
    file there is replaced, never written. ``path`` must resolve inside ``root``: a symlink out of
    it is never written through."""
    inside = os.path.realpath(root)
    parent = os.path.realpath(path.parent)
    if parent != inside and not parent.startswith(inside + os.sep):
        raise OSError(f"refusing to rewrite {path}: it resolves outside {root}")
    tmp = path.with_name(f".{path.name}.colab-ci-{uuid.uuid4().hex[:8]}")
    with open(tmp, "wb") as f:
        f.write(data)
    shutil.copymode(mode_from, tmp)
    os.replace(tmp, path)
