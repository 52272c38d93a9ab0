"""The disposable environment a run installs into.

A run never modifies the environment it starts from. ``prepare_environment`` inspects the target
interpreter (``--python``; default: the harness's own) by running it, then gives the run one of:

* ``overlayfs`` (a venv target, where the machine allows overlay mounts: root, or unprivileged user
  namespaces): the target venv is the read-only lower layer of an overlay mount that only the
  run's processes see (``harness.execution.overlayfs``). Constant time, whatever the venv's size.
* ``venv-copy`` (a venv target elsewhere): a hard-link copy of the venv
  (``harness.execution.venv_copy``), 1-3 s for a torch venv, partly overlapped with the kernel's start.
* ``in-place`` (only when asked for: ``--in-place``): no copy and no overlay; the kernel runs on the
  interpreter itself and installs into it. For Colab's own runtime container, the one environment
  that *is* Colab: there a pip install really replaces the pre-installed packages, so corruption
  reproduces exactly as users meet it. Refused for the harness's own environment.
* ``system-overlay`` (a system Python, not a venv): a venv with ``--system-site-packages`` is laid
  over it. Packages the notebook installs land in the overlay, but pip does not uninstall the
  base's copy ("Not uninstalling ... outside environment"), so the kernel's already-imported
  modules keep loading their submodules from the base: corruption of base packages cannot
  reproduce. That is recorded as a fidelity line.

In the first two, pip replaces files exactly as it would in the target: it removes the old files
and writes new ones, so the numpy swap under a live kernel reproduces for real, and the target is
never written. ``COLAB_CI_ISOLATION=overlayfs|copy`` forces one (tests run both).

The environment is deleted at the end (by a detached ``rm -rf`` when the caller does not wait) unless
``keep`` (``--keep-env``) is set.

The kernel gets ``PATH=<env>/bin:$PATH`` and ``VIRTUAL_ENV=<env>`` (``RunEnvironment.kernel_env``;
the kernelspec is ``harness.execution.kernelspec``'s) so a ``!pip`` (found on PATH) and a ``%pip``
(``sys.executable -m pip``) both install into the kernel's own environment. Every command that must
see the environment is built with ``RunEnvironment.argv`` (the overlay exists only inside the
processes it starts).

Colab's start-up imports (numpy, PIL, psutil, google.colab) are *not* done here through
``--IPKernelApp.exec_lines``: errors in exec_lines vanish into the kernel's log, and the version
seen at start-up must be recorded anyway. ``harness.execution.probes`` injects a start-up cell instead; see
there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from harness.core.errors import HarnessError
from harness.execution import overlayfs
from harness.execution.target import TargetInfo, inspect_target
from harness.execution.venv_copy import VenvCopy, copy_venv

Log = Callable[[str], None]
Mode = Literal["overlayfs", "venv-copy", "system-overlay", "in-place"]
ISOLATION_ENV = "COLAB_CI_ISOLATION"

def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class RunEnvironment:
    """The environment one run's kernel runs in and installs into."""

    target: TargetInfo
    root: Path                   # the environment's prefix (as its own processes see it)
    python: Path                 # root/bin/<name of the target's interpreter>
    mode: Mode
    copy_s: float                # seconds spent making it
    workdir: Path                # temporary folder holding it (deleted by cleanup)
    keep: bool = False
    fidelity: list[str] = field(default_factory=list)
    copy: VenvCopy | None = None             # venv-copy: the copy (and its deferred part)
    view: overlayfs.OverlayView | None = None  # overlayfs: the mount's layers
    notes: list[str] = field(default_factory=list)   # why this mode (e.g. why no overlay)

    @property
    def bin(self) -> Path:
        return self.python.parent if self.mode == "in-place" else self.root / "bin"

    def argv(self, command: list[str]) -> list[str]:
        """The command line that runs ``command`` (``command[0]`` is usually ``str(self.python)``)
        inside this environment."""
        return self.view.argv(command) if self.view is not None else list(command)

    @property
    def site_packages(self) -> Path:
        """The environment's site-packages, as its own processes see it."""
        if self.mode == "system-overlay":
            return next(self.root.glob("lib/python*/site-packages"))
        return self.root / self.target.purelib.relative_to(self.target.prefix)

    def add_to_path(self, name: str, folder: Path) -> None:
        """Put ``folder`` on the environment's ``sys.path`` with a ``<name>.pth`` file written into the
        environment's own writable layer (the overlay's upper folder, the copy, the system overlay
        venv): never into the target."""
        site = self.site_packages
        if self.view is not None:   # not mounted here: write where the mount will show it
            site = self.view.upper / site.relative_to(self.root)
        site.mkdir(parents=True, exist_ok=True)
        (site / f"{name}.pth").write_text(f"{folder}\n", encoding="utf-8")

    def kernel_env(self) -> dict[str, str]:
        """Variables a kernel needs so ``!pip`` (PATH) and ``%pip`` (sys.executable) use this env."""
        env = {"PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}"}
        if self.mode != "in-place" or self.target.is_venv:
            env["VIRTUAL_ENV"] = str(self.root)
        return env

    def wait_ready(self) -> None:
        """Wait until the environment is complete (the deferred part of a copy). Call before the
        first cell runs (``harness.execution.execute`` does, through the engine)."""
        if self.copy is not None:
            self.copy.wait(self.target.prefix)

    def describe(self) -> str:
        how = {"overlayfs": "overlay mount (read-only) of", "venv-copy": "hard-link copy of",
               "system-overlay": "--system-site-packages venv over", "in-place": "IN PLACE (no copy):"}[self.mode]
        extra = f"; {self.notes[0]}" if self.notes else ""
        return f"{how} {self.target.prefix} in {self.copy_s:.2f} s ({self.root}{extra})"

    def metadata(self) -> dict[str, Any]:
        """What the executed notebook records about its environment."""
        data: dict[str, Any] = {"mode": self.mode, "target": str(self.target.prefix), "copy_s": round(self.copy_s, 3)}
        if self.copy is not None:
            data.update(deferred_copy_s=round(self.copy.deferred_s, 3), copy_wait_s=round(self.copy.wait_s, 3))
        if self.notes:
            data["notes"] = list(self.notes)
        return data

    def cleanup(self, log: Log | None = None, wait: bool = True) -> None:
        """Delete the environment, or say where it is kept.

        ``wait=False`` hands the deletion to a detached ``rm -rf`` (deleting ~46,000 hard links
        takes 1-2 s, which the person waiting for the verdict need not wait for);
        ``wait_for_deletions`` waits for those.
        """
        if self.copy is not None and self.copy.copier is not None:
            self.copy.copier.join()
        if self.keep:
            (log or _stderr)(f"colab-ci: kept the run's environment at {self.workdir} (--keep-env)")
            return
        if self.view is not None:
            overlayfs.remove(self.view)
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
                        isolation: str | None = None, log: Log | None = None) -> RunEnvironment:
    """Make the disposable environment for one run of ``python`` (see the module docstring).

    ``defer=True`` (venv-copy only): return once what a kernel needs to start is copied; the rest
    is copied in the background, and ``RunEnvironment.wait_ready`` must be called before the first cell.
    ``isolation``: "overlayfs", "copy", "auto" (default: $COLAB_CI_ISOLATION, else auto), or
    "in-place" (never chosen by itself).
    """
    target = inspect_target(python)
    start = time.perf_counter()
    if isolation == "in-place":
        env = _in_place(target)
    elif target.is_venv:
        env = _venv_environment(target, keep, defer and target.has_ipykernel,
                                isolation or os.environ.get(ISOLATION_ENV) or "auto")
    else:
        env = _system_overlay(target, keep)
    env.copy_s = time.perf_counter() - start
    if target.is_venv and not target.has_pip:
        env.fidelity.append(f"{target.prefix} has no pip (Colab's runtime has it): the notebook's %pip and "
                            "!pip cells cannot install anything here.")
    try:
        ensure_ipykernel(env, log=log or _stderr)
    except BaseException:
        if not keep:
            env.cleanup()
        raise
    return env


def _venv_environment(target: TargetInfo, keep: bool, defer: bool, isolation: str) -> RunEnvironment:
    if isolation not in ("auto", "overlayfs", "copy"):
        raise HarnessError(f"{ISOLATION_ENV}={isolation!r}: use overlayfs, copy or auto.")
    notes: list[str] = []
    if isolation in ("auto", "overlayfs"):
        view = overlayfs.overlay_view(target.prefix, [str(target.prefix)])
        if view is not None:
            return RunEnvironment(target=target, root=view.root, python=view.root / _python_rel(target),
                                  mode="overlayfs", copy_s=0.0, workdir=view.workdir, keep=keep, view=view)
        why = overlayfs.unavailable_reason() or f"{target.prefix} has characters overlay options cannot hold"
        if isolation == "overlayfs":
            raise HarnessError(f"{ISOLATION_ENV}=overlayfs, but {why}.")
        notes.append(f"no overlay mount: {why}")
    copy = copy_venv(target.prefix, target.purelib, defer=defer, python_version=target.version)
    return RunEnvironment(target=target, root=copy.root, python=copy.root / _python_rel(target), mode="venv-copy",
                          copy_s=0.0, workdir=copy.workdir, keep=keep, copy=copy, notes=notes)


IN_PLACE_FIDELITY = ("--in-place: the kernel ran on {python} itself, with no copy and no overlay; what the "
                     "notebook installed is installed there now.")


def _in_place(target: TargetInfo) -> RunEnvironment:
    if os.path.realpath(target.prefix) == os.path.realpath(sys.prefix):
        raise HarnessError(f"--in-place would install the notebook's packages into the harness's own environment "
                           f"({target.prefix}); pass the --python of a throwaway environment (or Colab's runtime).")
    env = RunEnvironment(target=target, root=target.prefix, python=target.python, mode="in-place", copy_s=0.0,
                         workdir=Path(tempfile.mkdtemp(prefix="colab-ci-in-place-")))
    env.fidelity.append(IN_PLACE_FIDELITY.format(python=target.python))
    return env


def _python_rel(target: TargetInfo) -> Path:
    """The target's interpreter relative to its prefix (``bin/python3.11``), else ``bin/<name>``."""
    for prefix in (target.prefix, Path(os.path.realpath(target.prefix))):
        try:
            return target.python.relative_to(prefix)
        except ValueError:
            continue
    return Path("bin") / target.python.name


class EnvironmentInBackground:
    """``prepare_environment`` started in a thread; calling the object waits for it.

    The CLI starts the environment before it imports papermill and nbclient (~1 s), so the two
    overlap. ``discard`` deletes an environment that was made but never taken (the run stopped earlier).
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


# --- a --system-site-packages venv over a system Python ----------------------------------------------------------------

OVERLAY_FIDELITY = (
    "{python} is not a venv, so the run used a --system-site-packages overlay venv: pip installs "
    "beside the base's packages instead of replacing them (\"Not uninstalling ... outside "
    "environment\"), so corruption of packages installed in the base cannot reproduce."
)


def _system_overlay(target: TargetInfo, keep: bool) -> RunEnvironment:
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
    env = RunEnvironment(target=target, root=root, python=root / "bin" / "python", mode="system-overlay",
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
    proc = subprocess.run(env.argv([str(env.python), "-m", "pip", "install", "--disable-pip-version-check",
                                    "ipykernel"]), capture_output=True, text=True, env=_pip_env(env))
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
