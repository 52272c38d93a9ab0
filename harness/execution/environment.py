"""The disposable environment a run installs into, and the kernelspec that runs it.

A run never modifies the environment it starts from. ``prepare_environment`` inspects the target
interpreter (``--python``; default: the harness's own) by running it, then:

* **venv target** (``sys.prefix != sys.base_prefix``): the venv is copied with hard links
  (``cp -al``, or ``os.link`` while walking where ``cp`` is unavailable) into a temporary folder on
  the same file system. pip never writes into an installed file: it moves the old files aside
  (rename) and deletes them, and writes new files as new inodes, so a hard-linked copy behaves like
  a deep copy while costing one directory entry and one inode update per file: 1-1.5 s for the
  torch venv of this repository (~46,000 entries) on an idle disk, up to ~4 s while other jobs
  write to it (deleting it costs as much again, so that is left to a detached ``rm -rf``).
  The few files that name the old prefix (``bin/`` script shebangs and ``activate*``,
  ``pyvenv.cfg``) are rewritten as *new* files (write beside, then ``os.replace``), and ``*.pth``
  files are re-created too, so nothing shared with the target is ever written in place. ``!pip``
  and ``%pip`` in the kernel therefore install into the copy.

  With ``defer=True`` (what ``harness.execution.execute`` uses) the copy is made in two parts so that most
  of it overlaps the kernel's start: first everything but the site-packages folders that
  ipykernel and its dependencies (Requires-Dist, read from the dist-info folders) do not install,
  then, in a background thread, those folders (numpy, torch, pip, ...). Until the second part
  is done, a one-line ``00-colab-ci-defer.pth`` in the copy installs a ``sys.meta_path`` finder
  that makes an import of a not-yet-copied package wait for it. ``RunEnvironment.wait_ready``
  (called before the first cell runs, so no cell and no pip ever sees a partial copy) joins the
  thread and deletes the .pth; the start-up cell removes the finder from the kernel.
* **system Python** (not a venv): a venv with ``--system-site-packages`` is laid over it. Packages
  the notebook installs land in the overlay, but pip does not uninstall the base's copy ("Not
  uninstalling ... outside environment"), so the kernel's already-imported modules keep loading
  their submodules from the base: corruption of base packages cannot reproduce. That is recorded
  as a fidelity line.

The copy is deleted at the end (by a detached ``rm -rf`` when the caller does not wait) unless
``keep`` (``--keep-env``) is set.

``make_kernelspec`` writes a kernelspec for the run's interpreter into a temporary folder; the
kernel gets ``PATH=<env>/bin:$PATH`` and ``VIRTUAL_ENV=<env>`` so a ``!pip`` (found on PATH) and a
``%pip`` (``sys.executable -m pip``) both install into the kernel's own environment.

Colab's start-up imports (numpy, PIL, psutil, google.colab) are *not* done here through
``--IPKernelApp.exec_lines``: errors in exec_lines vanish into the kernel's log, and the version
seen at start-up must be recorded anyway. ``harness.execution.probes`` injects a start-up cell instead; see
there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from harness.errors import HarnessError

Log = Callable[[str], None]

_INSPECT = r"""
import importlib.util, json, platform, sys, sysconfig
print(json.dumps({
    "prefix": sys.prefix, "base_prefix": sys.base_prefix, "executable": sys.executable,
    "version": platform.python_version(), "purelib": sysconfig.get_paths()["purelib"],
    "ipykernel": importlib.util.find_spec("ipykernel") is not None,
    "pip": importlib.util.find_spec("pip") is not None,
}))
"""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class TargetInfo:
    """What running the target interpreter told about itself."""

    python: Path            # as given (symlinks not resolved: a venv's bin/python is one)
    prefix: Path
    base_prefix: Path
    version: str
    purelib: Path
    has_ipykernel: bool
    has_pip: bool

    @property
    def is_venv(self) -> bool:
        return self.prefix != self.base_prefix


def inspect_target(python: Path | str | None = None) -> TargetInfo:
    """Run ``python`` once and describe it; ``HarnessError`` when it does not exist or cannot run."""
    path = Path(os.path.abspath(python if python is not None else sys.executable))
    if not path.exists():
        raise HarnessError(f"--python {path} does not exist.")
    if path.is_dir() or not os.access(path, os.X_OK):
        raise HarnessError(f"--python {path} is not an executable file.")
    try:
        proc = subprocess.run([str(path), "-c", _INSPECT], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HarnessError(f"--python {path} could not be run ({exc}).") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(f"--python {path} is not a working Python interpreter ({last}).")
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise HarnessError(f"--python {path} did not answer like a Python 3 interpreter.") from None
    return TargetInfo(
        python=path, prefix=Path(data["prefix"]), base_prefix=Path(data["base_prefix"]),
        version=data["version"], purelib=Path(data["purelib"]),
        has_ipykernel=bool(data["ipykernel"]), has_pip=bool(data["pip"]),
    )


@dataclass
class RunEnvironment:
    """The environment one run's kernel runs in and installs into."""

    target: TargetInfo
    root: Path                   # the copy's (or overlay's) prefix
    python: Path                 # root/bin/<name of the target's interpreter>
    mode: Literal["venv-copy", "overlay"]
    copy_s: float                # seconds spent making it (copy + relocation, or overlay venv)
    workdir: Path                # temporary folder holding root (deleted by cleanup)
    keep: bool = False
    fidelity: list[str] = field(default_factory=list)
    deferred_s: float = 0.0      # seconds the deferred part of the copy took (overlapping kernel start)
    wait_s: float = 0.0          # seconds wait_ready blocked: the part of the copy the kernel start did not hide
    _copier: threading.Thread | None = field(default=None, repr=False)
    _copy_error: list[str] = field(default_factory=list, repr=False)
    _hook_files: list[Path] = field(default_factory=list, repr=False)

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def kernel_env(self) -> dict[str, str]:
        """Variables a kernel needs so ``!pip`` (PATH) and ``%pip`` (sys.executable) use this env."""
        return {"PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}", "VIRTUAL_ENV": str(self.root)}

    def wait_ready(self) -> None:
        """Wait for the deferred part of the copy, then remove the start-up hook from the copy.

        Call before the first cell runs (``harness.execution.execute`` does, through the engine).
        """
        if self._copier is not None:
            start = time.perf_counter()
            self._copier.join()
            self._copier = None
            self.wait_s = time.perf_counter() - start
        for path in self._hook_files:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        self._hook_files = []
        if self._copy_error:
            raise HarnessError(f"could not copy the venv {self.target.prefix} for this run ({self._copy_error[0]}).")

    def cleanup(self, log: Log = _stderr, wait: bool = True) -> None:
        """Delete the copy, or say where it is kept.

        ``wait=False`` hands the deletion to a detached ``rm -rf`` (deleting ~46,000 hard links
        takes 1-2 s, which the person waiting for the verdict need not wait for);
        ``wait_for_deletions`` waits for those.
        """
        if self._copier is not None:
            self._copier.join()
        if self.keep:
            log(f"colab-ci: kept the run's environment at {self.root} (--keep-env)")
            return
        if not wait and shutil.which("rm"):
            try:
                _PENDING_DELETIONS.append(subprocess.Popen(
                    ["rm", "-rf", "--", str(self.workdir)], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
                return
            except OSError:
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "RunEnvironment":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


_PENDING_DELETIONS: list[subprocess.Popen[bytes]] = []


def wait_for_deletions() -> None:
    """Wait until every copy handed to ``cleanup(wait=False)`` is gone."""
    while _PENDING_DELETIONS:
        _PENDING_DELETIONS.pop().wait()


def prepare_environment(python: Path | str | None = None, *, keep: bool = False, defer: bool = False,
                        log: Log = _stderr) -> RunEnvironment:
    """Make the disposable environment for one run of ``python`` (see the module docstring).

    ``defer=True``: return once what a kernel needs to start is copied; the rest is copied in
    the background, and ``RunEnvironment.wait_ready`` must be called before the first cell.
    """
    target = inspect_target(python)
    start = time.perf_counter()
    if target.is_venv:
        env = _copy_venv(target, keep, defer=defer and target.has_ipykernel)
    else:
        env = _overlay(target, keep)
    env.copy_s = time.perf_counter() - start
    if target.is_venv and not target.has_pip:
        env.fidelity.append(f"{target.prefix} has no pip (Colab's runtime has it): the notebook's %pip and "
                            "!pip cells cannot install anything here.")
    try:
        ensure_ipykernel(env, log=log)
    except BaseException:
        if not keep:
            env.cleanup()
        raise
    return env


class EnvironmentInBackground:
    """``prepare_environment`` started in a thread; calling the object waits for it.

    The CLI starts the copy before it imports papermill and nbclient (~1 s), so the two overlap.
    ``discard`` deletes an environment that was made but never taken (the run stopped earlier).
    """

    def __init__(self, python: Path | str | None = None, **kwargs: object) -> None:
        self._env: RunEnvironment | None = None
        self._error: BaseException | None = None
        self._taken = False
        self._thread = threading.Thread(target=self._prepare, args=(python,), kwargs=kwargs,
                                        name="colab-ci-environment", daemon=True)
        self._thread.start()

    def _prepare(self, python: Path | str | None, **kwargs: object) -> None:
        try:
            self._env = prepare_environment(python, **kwargs)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self._error = exc

    def __call__(self) -> RunEnvironment:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._env is not None
        self._taken = True
        return self._env

    def discard(self) -> None:
        self._thread.join()
        if self._env is not None and not self._taken:
            self._env.cleanup(wait=False)


# --- venv copy ------------------------------------------------------------------------------------

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


def _replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` as a new inode at ``path``: the hard-linked original is never written."""
    tmp = path.with_name(f".{path.name}.colab-ci-{uuid.uuid4().hex[:8]}")
    with open(tmp, "wb") as f:
        f.write(data)
    shutil.copymode(path, tmp)
    os.replace(tmp, path)


def relocate_venv(root: Path, old_prefixes: list[str]) -> list[Path]:
    """Point a copied venv at its new place ``root``; returns the files re-created.

    Rewrites (as new files) every regular file in ``bin/`` and ``pyvenv.cfg`` that names an old
    prefix, re-targets absolute symlinks into an old prefix, and re-creates ``*.pth`` files in
    site-packages (pip rewrites those in place when it removes an entry).
    """
    new = str(root).encode()
    olds = sorted({p.rstrip("/") for p in old_prefixes if p}, key=len, reverse=True)
    pattern = re.compile(b"|".join(re.escape(o.encode()) for o in olds) + rb"(?=[/\"'\s:;]|$)")
    rewritten: list[Path] = []

    def rewrite(path: Path, always: bool = False) -> None:
        data = path.read_bytes()
        new_data = pattern.sub(lambda _m: new, data)
        if always or new_data != data:
            _replace_file(path, new_data)
            rewritten.append(path)

    candidates = [root / "pyvenv.cfg"]
    bindir = root / "bin"
    if bindir.is_dir():
        for entry in os.scandir(bindir):
            path = Path(entry.path)
            if entry.is_symlink():
                link = os.readlink(path)
                for old in olds:
                    if link == old or link.startswith(old + "/"):
                        path.unlink()
                        os.symlink(str(root) + link[len(old):], path)
                        rewritten.append(path)
                        break
            elif entry.is_file() and entry.stat().st_size < 4 * 1024 * 1024:
                candidates.append(path)
    for path in candidates:
        if path.is_file():
            rewrite(path)
    seen: set[str] = set()
    for site in sorted(root.glob("lib/python*/site-packages")):
        for pth in site.glob("*.pth"):
            real = os.path.realpath(pth)
            if real not in seen and not pth.is_symlink():
                seen.add(real)
                rewrite(pth, always=True)
    return rewritten


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


_NORM = re.compile(r"[-_.]+")
_REQ_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canon(name: str) -> str:
    return _NORM.sub("-", name).lower()


def kernel_top_levels(site: Path) -> set[str] | None:
    """Top-level names installed by ipykernel and its dependencies (Requires-Dist, extras
    skipped) in ``site``; None when ipykernel's metadata is not there."""
    metas: dict[str, Path] = {}
    for entry in os.scandir(site):
        if entry.name.endswith(".dist-info"):
            metas.setdefault(_canon(entry.name[:-10].rpartition("-")[0]), Path(entry.path))
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
            if line.startswith("Requires-Dist:") and "extra ==" not in line:
                m = _REQ_NAME.match(line[14:])
                if m:
                    todo.append(_canon(m.group(1)))
    tops: set[str] = set()
    for name in seen:
        meta = metas[name]
        try:
            tops.update(x.strip() for x in (meta / "top_level.txt").read_text().splitlines() if x.strip())
            continue
        except OSError:
            pass
        try:
            for line in (meta / "RECORD").read_text(encoding="utf-8", errors="replace").splitlines():
                first = line.split(",", 1)[0].split("/", 1)[0]
                tops.add(first[:-3] if first.endswith(".py") else first.split(".", 1)[0])
        except OSError:
            pass
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


def _copy_venv(target: TargetInfo, keep: bool, defer: bool = False) -> RunEnvironment:
    prefix = target.prefix
    workdir = _workdir_near(prefix)
    root = workdir / (prefix.name or "venv")
    env = RunEnvironment(target=target, root=root, python=root / "bin" / "python", mode="venv-copy",
                         copy_s=0.0, workdir=workdir, keep=keep)
    old = sorted({str(prefix), os.path.realpath(prefix)})
    try:
        site = target.purelib
        deferred: list[str] = []
        if defer and site.is_dir() and prefix in site.parents:
            tops = kernel_top_levels(site)
            if tops is not None:
                deferred = sorted(e.name for e in os.scandir(site)
                                  if e.is_dir(follow_symlinks=False) and e.name.isidentifier()
                                  and not e.name.startswith("_") and e.name not in tops)
        if not deferred:
            hardlink_tree(prefix, root)
            relocate_venv(root, old)
        else:
            _copy_all_but(prefix, root, site, set(deferred))
            copy_site = root / site.relative_to(prefix)
            marker = workdir / "deferred-copy-done"
            code = _DEFER_HOOK.replace("MARKER", repr(str(marker))).replace("NAMES", repr(deferred))
            pth = copy_site / DEFER_HOOK_PTH
            pth.write_text(f"import sys; exec({code!r})\n")
            env._hook_files = [pth]
            relocate_venv(root, old)

            def copy_rest() -> None:
                start = time.perf_counter()
                try:
                    _link_into([str(site / name) for name in deferred], copy_site)
                except OSError as exc:
                    env._copy_error.append(str(exc))
                finally:
                    marker.touch()
                    env.deferred_s = time.perf_counter() - start

            env._copier = threading.Thread(target=copy_rest, name="colab-ci-copy", daemon=True)
            env._copier.start()
    except OSError as exc:
        if env._copier is not None:
            env._copier.join()
        shutil.rmtree(workdir, ignore_errors=True)
        raise HarnessError(f"could not copy the venv {prefix} for this run ({exc}).") from None
    try:
        rel = target.python.relative_to(prefix)
    except ValueError:
        rel = Path("bin") / target.python.name
    if (root / rel).exists():
        env.python = root / rel
    return env


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


# --- overlay over a system Python ----------------------------------------------------------------

OVERLAY_FIDELITY = (
    "{python} is not a venv, so the run used a --system-site-packages overlay venv: pip installs "
    "beside the base's packages instead of replacing them (\"Not uninstalling ... outside "
    "environment\"), so corruption of packages installed in the base cannot reproduce."
)


def _overlay(target: TargetInfo, keep: bool) -> RunEnvironment:
    workdir = Path(tempfile.mkdtemp(prefix="colab-ci-env-"))
    root = workdir / "overlay"
    cmd = [str(target.python), "-m", "venv", "--system-site-packages", str(root)]
    if target.has_pip:
        cmd.insert(-1, "--without-pip")  # the base's pip is importable; shims below put it on PATH
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(f"could not create an overlay venv over {target.python} ({last}).")
    if target.has_pip:
        major_minor = ".".join(target.version.split(".")[:2])
        for name in ("pip", "pip3", f"pip{major_minor}"):
            shim = root / "bin" / name
            shim.write_text(f'#!/bin/sh\nexec "{root}/bin/python" -m pip "$@"\n')
            shim.chmod(0o755)
    env = RunEnvironment(target=target, root=root, python=root / "bin" / "python", mode="overlay",
                         copy_s=0.0, workdir=workdir, keep=keep)
    env.fidelity.append(OVERLAY_FIDELITY.format(python=target.python))
    return env


# --- ipykernel -----------------------------------------------------------------------------------

_SUCCESS = re.compile(r"^Successfully installed .*$", re.M)


def ensure_ipykernel(env: RunEnvironment, log: Log = _stderr) -> None:
    """Install ipykernel into the run's environment (never the target) when it lacks one."""
    if env.target.has_ipykernel:
        return
    log(f"colab-ci: installing ipykernel into {env.root} (needed to run a kernel)")
    proc = subprocess.run([str(env.python), "-m", "pip", "install", "--disable-pip-version-check",
                           "ipykernel"], capture_output=True, text=True, env=_pip_env(env))
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(f"could not install ipykernel into the run's copy of {env.target.prefix} ({last}).")
    done = _SUCCESS.search(proc.stdout)
    env.fidelity.append(
        f"{env.target.prefix} has no ipykernel: the run's copy got one before the notebook started"
        + (f" ({done.group(0)})." if done else ".")
    )


def _pip_env(env: RunEnvironment) -> dict[str, str]:
    out = dict(os.environ)
    out.update(env.kernel_env())
    out.pop("PYTHONHOME", None)
    return out


# --- kernelspec ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class KernelSpecInfo:
    name: str
    kernels_dir: Path        # give to jupyter_client's KernelSpecManager(kernel_dirs=[...])
    argv: list[str]
    env: dict[str, str]


def make_kernelspec(env: RunEnvironment, directory: Path, extra_env: dict[str, str] | None = None,
                    name: str | None = None) -> KernelSpecInfo:
    """Write ``directory/kernels/<name>/kernel.json`` for the run's interpreter."""
    name = name or f"colab-ci-{uuid.uuid4().hex[:10]}"
    argv = [str(env.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kenv = env.kernel_env()
    kenv.update(extra_env or {})
    spec = {
        "argv": argv,
        "display_name": f"colab-ci ({env.target.prefix.name or env.target.python})",
        "language": "python",
        "env": kenv,
        "metadata": {"debugger": False},
    }
    kdir = directory / "kernels" / name
    kdir.mkdir(parents=True, exist_ok=True)
    (kdir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return KernelSpecInfo(name=name, kernels_dir=directory / "kernels", argv=argv, env=kenv)
