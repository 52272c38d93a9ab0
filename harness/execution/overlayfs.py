"""The overlayfs view of a venv: a disposable environment in constant time, where the machine allows it.

The target venv is the read-only lower layer of an overlay mount; everything the run writes (pip's
installs and uninstalls, new ``.pyc`` files) lands in an upper folder in a temporary directory.
The lower layer is never written by overlayfs, whatever the kernel does, so the isolation is the
same as the hard-link copy's (``harness.execution.venv_copy``) but costs a few milliseconds
instead of one directory entry per file (1-3 s for a torch venv, more for a whole Colab image).

The mount lives in a private mount namespace that belongs to the process that needs it: every
command that runs in the environment (the kernel, ``pip install ipykernel``, the after-run
inspection) is started through ``launcher`` (``unshare --mount ...`` then ``mount -t overlay``, then
``exec`` of the command). Nothing is mounted in the harness's own namespace, so no mount is ever
left behind, not even by a harness killed with SIGKILL: the mount goes when its last process does.
The kernel keeps its pid through the ``exec`` chain, so its process group is still the one the
supervisor ends.

As in the copy, the files that name the old prefix (``bin/`` scripts' shebangs, ``pyvenv.cfg``) are
written, relocated (``harness.execution.relocate``), into the upper layer before the mount, where
they hide the lower ones.

Availability is checked once per process by mounting a throwaway overlay: root (CI containers,
this project's machines) uses ``unshare --mount``; other users try an unprivileged user namespace
(``unshare --user --map-root-user``, Linux >= 5.11). ``unavailable_reason()`` says why neither works
(no ``unshare``, not Linux, a kernel without overlay, a sandbox that forbids namespaces), and the
environment falls back to the hard-link copy.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.execution.relocate import relocate_prefix

PROBE_TIMEOUT_S = 15.0
# sh -c SCRIPT NAME LOWER UPPER WORK MERGED COMMAND...: mount, then become the command.
_MOUNT_SCRIPT = ('mount -t overlay -o "lowerdir=$1,upperdir=$2,workdir=$3$OVERLAY_EXTRA" colab-ci "$4" '
                 '&& shift 4 && exec "$@"')
_UNSAFE_PATH = re.compile(r"[,:\\\s]")   # would be read as overlay option syntax

_availability: tuple[list[str], str] | str | None = None   # (unshare argv, extra options) | reason | unknown


@dataclass(frozen=True)
class OverlayView:
    """A venv seen through an overlay mount at ``root`` (only inside processes started by ``argv``)."""

    lower: Path
    upper: Path
    work: Path
    root: Path
    workdir: Path
    unshare: tuple[str, ...]
    extra_options: str

    def argv(self, command: list[str]) -> list[str]:
        """The command line that runs ``command`` with the overlay mounted at ``root``."""
        return [*self.unshare, "/bin/sh", "-c", _MOUNT_SCRIPT.replace("$OVERLAY_EXTRA", self.extra_options),
                "colab-ci-overlay", str(self.lower), str(self.upper), str(self.work), str(self.root), *command]


def _candidates() -> list[list[str]]:
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    rootless = [unshare, "--user", "--map-root-user", "--mount", "--propagation", "private"]
    return [[unshare, "--mount", "--propagation", "private"], rootless] if os.geteuid() == 0 else [rootless]


def _probe() -> tuple[list[str], str] | str:
    if not sys.platform.startswith("linux"):
        return f"overlay mounts are a Linux feature (this is {sys.platform})"
    candidates = _candidates()
    if not candidates:
        return "the unshare command (util-linux) is not installed"
    last = "no attempt"
    with tempfile.TemporaryDirectory(prefix="colab-ci-overlay-probe-") as tmp:
        for unshare in candidates:
            for extra in ("", ",userxattr"):
                base = Path(tmp) / f"try-{len(unshare)}{extra.strip(',')}"
                parts = [base / name for name in ("lower", "upper", "work", "merged")]
                for part in parts:
                    part.mkdir(parents=True)
                (parts[0] / "seen").write_text("lower")
                view = OverlayView(parts[0], parts[1], parts[2], parts[3], base, tuple(unshare), extra)
                try:
                    proc = subprocess.run(view.argv(["/bin/sh", "-c", 'cat "$0/seen" && echo x > "$0/written"',
                                                     str(parts[3])]),
                                          capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
                except (OSError, subprocess.TimeoutExpired) as exc:
                    last = str(exc)
                    continue
                if proc.returncode == 0 and proc.stdout.strip() == "lower" and (parts[1] / "written").exists() \
                        and not (parts[0] / "written").exists():
                    return unshare, extra
                last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
                _make_removable(base)
    return f"an overlay mount in a private mount namespace failed here ({last})"


def available() -> tuple[list[str], str] | None:
    """How to mount an overlay here (unshare argv, extra mount options), or None."""
    global _availability
    if _availability is None:
        _availability = _probe()
    return None if isinstance(_availability, str) else _availability


def unavailable_reason() -> str:
    """Why overlay mounts cannot be used here ('' when they can)."""
    available()
    return _availability if isinstance(_availability, str) else ""


def overlay_view(prefix: Path, old_prefixes: list[str]) -> OverlayView | None:
    """An overlay view of the venv at ``prefix`` in a new temporary folder, with its ``bin/`` and
    ``pyvenv.cfg`` relocated in the upper layer; None when overlays are unavailable here or the
    prefix's path cannot be written in overlay options."""
    how = available()
    lower = Path(os.path.realpath(prefix))
    if how is None or _UNSAFE_PATH.search(str(lower)):
        return None
    workdir = Path(tempfile.mkdtemp(prefix="colab-ci-env-"))
    upper, work, root = workdir / "upper", workdir / "work", workdir / (lower.name or "venv")
    for folder in (upper, work, root):
        folder.mkdir()
    view = OverlayView(lower, upper, work, root, workdir, tuple(how[0]), how[1])
    relocate_prefix(lower, upper, str(root), sorted({str(prefix), str(lower)}))
    return view


def remove(view: OverlayView) -> None:
    """Delete the view's temporary folder (overlayfs leaves its work folder unreadable to non-root)."""
    _make_removable(view.workdir)
    shutil.rmtree(view.workdir, ignore_errors=True)


def _make_removable(folder: Path) -> None:
    for root, dirs, _files in os.walk(folder):
        for name in dirs:
            try:
                os.chmod(os.path.join(root, name), 0o700)
            except OSError:
                pass
