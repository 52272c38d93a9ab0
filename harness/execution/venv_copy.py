"""The hard-link copy of a venv: the disposable environment where no overlay mount is possible.

The venv is copied with hard links (``cp -al``, or ``os.link`` while walking where ``cp`` is
unavailable) into a temporary folder on the same file system. pip never writes into an installed
file: it moves the old files aside (rename) and deletes them, and writes new files as new inodes,
so a hard-linked copy behaves like a deep copy while costing one directory entry and one inode
update per file: 1-1.5 s for the torch venv of this repository (~46,000 entries) on an idle disk,
up to ~4 s while other jobs write to it (deleting it costs as much again, so that is left to a
detached ``rm -rf``). The few files that name the old prefix (``bin/`` script shebangs and
``activate*``, ``pyvenv.cfg``) are rewritten as *new* files (write beside, then ``os.replace``), and
``*.pth`` files are re-created too, so nothing shared with the target is ever written in place
(``harness.execution.relocate``, which the overlay view uses as well).

The copy starts from the *resolved* prefix: a venv reached through a symlinked folder
(``.venv -> /elsewhere/venv``) is copied, not the symlink (``cp -a`` would copy the link itself,
and relocating "the copy" would then rewrite the target through it). Every file rewritten is
checked to lie inside the copy before it is written.

With ``defer=True`` the copy is made in two parts so that most of it overlaps the kernel's start:
first everything but the site-packages folders that ipykernel and its dependencies do not install
(Requires-Dist whose markers hold for the venv's interpreter, read from the dist-info folders; their
top-level names from ``top_level.txt`` or RECORD, read by the kernel probe's own reader), then, in a
background thread, those folders (numpy, torch, pip, ...). Until the second part is done, a one-line
``00-colab-ci-defer.pth`` in the copy installs a ``sys.meta_path`` finder that makes an import of a
not-yet-copied package wait for it. ``VenvCopy.wait`` (called before the first cell runs, so no
cell and no pip ever sees a partial copy) joins the thread and deletes the .pth; the start-up cell
removes the finder from the kernel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.core.errors import HarnessError
from harness.execution.kernel_probe import top_levels_of
from harness.execution.relocate import relocate_prefix


@dataclass
class VenvCopy:
    """A hard-link copy of a venv at ``root`` (inside the temporary folder ``workdir``)."""

    root: Path
    workdir: Path
    deferred_s: float = 0.0      # seconds the deferred part of the copy took (overlapping kernel start)
    wait_s: float = 0.0          # seconds ``wait`` blocked: the part of the copy the kernel start did not hide
    copier: threading.Thread | None = field(default=None, repr=False)
    errors: list[str] = field(default_factory=list, repr=False)
    hook_files: list[Path] = field(default_factory=list, repr=False)

    def wait(self, prefix: Path) -> None:
        """Wait for the deferred part of the copy, then remove the start-up hook from the copy."""
        if self.copier is not None:
            start = time.perf_counter()
            self.copier.join()
            self.copier = None
            self.wait_s = time.perf_counter() - start
        for path in self.hook_files:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        self.hook_files = []
        if self.errors:
            raise HarnessError(f"could not copy the venv {prefix} for this run ({self.errors[0]}).")


def copy_venv(prefix: Path, purelib: Path, defer: bool = False, python_version: str | None = None) -> VenvCopy:
    """Hard-link copy of the venv at ``prefix`` (see the module docstring); ``python_version`` is the
    venv's interpreter's (the markers of the kernel's dependencies are evaluated for it)."""
    source = Path(os.path.realpath(prefix))
    site = Path(os.path.realpath(purelib))
    workdir = _workdir_near(source)
    root = workdir / (source.name or "venv")
    copy = VenvCopy(root=root, workdir=workdir)
    old = sorted({str(prefix), str(source)})
    try:
        deferred: list[str] = []
        if defer and site.is_dir() and source in site.parents:
            tops = kernel_top_levels(site, python_version)
            if tops is not None:
                deferred = sorted(e.name for e in os.scandir(site)
                                  if e.is_dir(follow_symlinks=False) and e.name.isidentifier()
                                  and not e.name.startswith("_") and e.name not in tops)
        if not deferred:
            hardlink_tree(source, root)
            relocate_prefix(root, root, str(root), old, recreate_pth=True)
        else:
            _copy_all_but(source, root, site, set(deferred))
            copy_site = root / site.relative_to(source)
            marker = workdir / "deferred-copy-done"
            code = _DEFER_HOOK.replace("MARKER", repr(str(marker))).replace("NAMES", repr(deferred))
            pth = copy_site / DEFER_HOOK_PTH
            pth.write_text(f"import sys; exec({code!r})\n")
            copy.hook_files = [pth]
            relocate_prefix(root, root, str(root), old, recreate_pth=True)

            def copy_rest() -> None:
                start = time.perf_counter()
                try:
                    _link_into([str(site / name) for name in deferred], copy_site)
                except OSError as exc:
                    copy.errors.append(str(exc))
                finally:
                    marker.touch()
                    copy.deferred_s = time.perf_counter() - start

            copy.copier = threading.Thread(target=copy_rest, name="colab-ci-copy", daemon=True)
            copy.copier.start()
    except OSError as exc:
        if copy.copier is not None:
            copy.copier.join()
        shutil.rmtree(workdir, ignore_errors=True)
        raise HarnessError(f"could not copy the venv {prefix} for this run ({exc}).") from None
    return copy


def _workdir_near(prefix: Path) -> Path:
    """A new temporary folder on the same file system as ``prefix`` (hard links need that)."""
    dev = os.stat(prefix).st_dev
    candidates = [Path(tempfile.gettempdir()), prefix.parent]
    for parent in candidates:
        try:
            if os.stat(parent).st_dev != dev:
                continue
            return Path(tempfile.mkdtemp(prefix="colab-ci-env-", dir=parent))
        except OSError:
            continue
    raise HarnessError(
        f"cannot copy the venv {prefix}: no writable folder on its file system (tried "
        f"{', '.join(map(str, candidates))}); pass a --python whose venv lies on a writable disk."
    )


def hardlink_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` to the new folder ``dst`` with hard links (symlinks are copied as symlinks)."""
    if shutil.which("cp") and sys.platform.startswith("linux"):
        proc = subprocess.run(["cp", "-al", "--", str(src), str(dst)], capture_output=True, text=True)
        if proc.returncode == 0:
            return
        shutil.rmtree(dst, ignore_errors=True)
    for root, dirs, files in os.walk(src):
        out = os.path.join(dst, os.path.relpath(root, src))
        os.makedirs(out, exist_ok=True)
        shutil.copystat(root, out)
        for name in list(dirs):
            path = os.path.join(root, name)
            if os.path.islink(path):
                os.symlink(os.readlink(path), os.path.join(out, name))
                dirs.remove(name)
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path):
                os.symlink(os.readlink(path), os.path.join(out, name))
            else:
                os.link(path, os.path.join(out, name))


def _link_into(paths: list[str], dst_dir: Path) -> None:
    """Hard-link copy each of ``paths`` (files, folders, symlinks) into the folder ``dst_dir``."""
    if not paths:
        return
    if shutil.which("cp") and sys.platform.startswith("linux"):
        for i in range(0, len(paths), 1000):
            proc = subprocess.run(["cp", "-al", "--", *paths[i:i + 1000], str(dst_dir)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise OSError((proc.stderr.strip().splitlines() or ["cp failed"])[-1])
        return
    for path in paths:
        dst = dst_dir / os.path.basename(path)
        if os.path.islink(path):
            os.symlink(os.readlink(path), dst)
        elif os.path.isdir(path):
            hardlink_tree(Path(path), dst)
        else:
            os.link(path, dst)


def kernel_top_levels(site: Path, python_version: str | None = None) -> set[str] | None:
    """Top-level names installed in ``site`` by ipykernel and its dependencies (their Requires-Dist,
    followed only where the marker holds for the target: no extras, ``python_version`` the target
    interpreter's when given); None when ipykernel's metadata is not there."""
    environment = dict(default_environment())
    if python_version:
        environment.update(python_full_version=python_version,
                           python_version=".".join(python_version.split(".")[:2]))
    metas: dict[str, Path] = {}
    for entry in os.scandir(site):
        if entry.name.endswith(".dist-info"):
            metas.setdefault(canonicalize_name(entry.name[:-10].rpartition("-")[0]), Path(entry.path))
    if "ipykernel" not in metas:
        return None
    todo, seen = ["ipykernel"], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in metas:
            continue
        seen.add(name)
        try:
            text = (metas[name] / "METADATA").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.split("\n\n", 1)[0].splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            try:
                requirement = Requirement(line[len("Requires-Dist:"):].strip())
            except InvalidRequirement:
                continue
            if requirement.marker is None or requirement.marker.evaluate({**environment, "extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    tops: set[str] = set()
    for name in seen:
        tops.update(top_levels_of(str(metas[name])))
    return tops


# Installed in the copy only while the deferred part is copied: a kernel that imports a package
# not copied yet waits for it. It is one line of a .pth file (run by ``site`` at interpreter
# start, first in name order), so no module and no .pyc is left behind; the file is removed
# before the first cell, and the start-up cell removes the finder from ``sys.meta_path``.
_DEFER_HOOK = """
class DeferredCopyFinder:
    colab_ci_deferred = True

    def __init__(self, marker, names):
        self.marker, self.names = marker, frozenset(names)

    def find_spec(self, name, path=None, target=None):
        if name in self.names:
            os, time = __import__("os"), __import__("time")
            deadline = time.monotonic() + 600
            while not os.path.exists(self.marker) and time.monotonic() < deadline:
                time.sleep(0.005)
            self.names = frozenset()
            __import__("importlib").invalidate_caches()
        return None

__import__("sys").meta_path.insert(0, DeferredCopyFinder(MARKER, NAMES))
"""
DEFER_HOOK_PTH = "00-colab-ci-defer.pth"


def _copy_all_but(prefix: Path, root: Path, site: Path, deferred: set[str]) -> None:
    """Hard-link copy ``prefix`` to ``root`` except the ``deferred`` entries of ``site``."""
    src, dst = prefix, root
    dst.mkdir()
    for part in site.relative_to(prefix).parts:
        _link_into([e.path for e in os.scandir(src) if e.name != part], dst)
        shutil.copystat(src, dst)
        src, dst = src / part, dst / part
        dst.mkdir()
    _link_into([e.path for e in os.scandir(src) if e.name not in deferred], dst)
    shutil.copystat(src, dst)
