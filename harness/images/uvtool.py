"""Running uv, and handing it what pip is configured with on this machine.

uv reads none of pip's configuration. Where pip is configured with find-links (a folder of local
wheels, such as a CPU build of torch), uv must be told, or it resolves torch from PyPI: a CUDA
build of several GB. ``pip_find_links()`` reads them from ``PIP_FIND_LINKS`` and ``pip config
list``; nothing is hard-coded. ``local_wheels()`` lists the wheels lying in those folders.

Every uv call gets ``UV_PYTHON_DOWNLOADS=never`` unless the caller allows downloads (the exact
build mode, where uv may install the image's Python), and ``--compile-bytecode`` where it
installs (``PYTHONDONTWRITEBYTECODE`` may be set, so nothing would be compiled later), but in a
mirror's build, which compiles once after its last install (``harness.images.build``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlparse

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import Version

from harness.core.errors import HarnessError


@lru_cache(maxsize=1)
def uv_binary() -> str:
    """The uv executable: the ``uv`` package's own binary, else ``uv`` on PATH."""
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found]

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if not found:
        raise HarnessError("uv is not installed: `pip install uv` (colab-ci builds image environments with it)")
    return found


@lru_cache(maxsize=1)
def uv_version() -> str:
    done = subprocess.run([uv_binary(), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


@dataclass
class UvResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def command(self) -> str:
        return " ".join(_quote(a) for a in ["uv", *self.args])


def run_uv(args: list[str], *, allow_python_downloads: bool = False, timeout: float = 1800,
           env: dict[str, str] | None = None, on_line: Callable[[str], None] | None = None) -> UvResult:
    """Run ``uv ARGS`` and capture its output (never raises for a non-zero exit). ``on_line`` gets each
    line uv writes to stderr as it comes (its own progress: resolved, downloading, installed ...)."""
    environ = dict(os.environ if env is None else env)
    environ.setdefault("UV_NO_PROGRESS", "1")   # no bars: uv then says each step on a line of its own
    # uv wraps its error messages to COLUMNS (a caller's narrow terminal, a test that set it): colab-ci reads
    # them (which pin failed, and why), so each message stays on its own lines, unwrapped
    environ["COLUMNS"] = "100000"
    if not allow_python_downloads:
        environ["UV_PYTHON_DOWNLOADS"] = "never"
    if on_line is None:
        try:
            done = subprocess.run([uv_binary(), *args], capture_output=True, text=True, timeout=timeout,
                                  env=environ, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as exc:
            return UvResult(args, 124, _text(exc.stdout), _text(exc.stderr) + f"\ntimed out after {timeout:.0f} s")
        return UvResult(args, done.returncode, done.stdout, done.stderr)
    proc = subprocess.Popen([uv_binary(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environ, stdin=subprocess.DEVNULL)
    stdout: list[str] = []
    stderr: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        stdout.append(proc.stdout.read())

    def follow_stderr() -> None:   # line by line, as uv writes them
        assert proc.stderr is not None
        for line in proc.stderr:
            stderr.append(line)
            on_line(line.rstrip("\n"))

    readers = [threading.Thread(target=read_stdout, daemon=True), threading.Thread(target=follow_stderr, daemon=True)]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        for reader in readers:
            reader.join(5)
        return UvResult(args, 124, "".join(stdout), "".join(stderr) + f"\ntimed out after {timeout:.0f} s")
    for reader in readers:
        reader.join()
    return UvResult(args, proc.returncode, "".join(stdout), "".join(stderr))


@lru_cache(maxsize=1)
def pip_find_links() -> tuple[str, ...]:
    """pip's find-links on this machine: ``PIP_FIND_LINKS`` and every ``*.find-links`` of ``pip config list``."""
    found: list[str] = []
    found += os.environ.get("PIP_FIND_LINKS", "").split()
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                              timeout=60, check=False)
        listing = done.stdout
    except (OSError, subprocess.TimeoutExpired):
        listing = ""
    for key, value in re.findall(r"^(\S+)='(.*)'$", listing, flags=re.MULTILINE):
        if key.endswith(".find-links"):
            found += value.split()
    return tuple(dict.fromkeys(found))


def find_links_args() -> list[str]:
    return [arg for link in pip_find_links() for arg in ("--find-links", link)]


@dataclass(frozen=True)
class LocalWheel:
    path: Path
    name: str
    version: Version
    tags: frozenset[str]     # "cp311-cp311-manylinux_2_28_x86_64", ...


def local_wheels(name: str) -> list[LocalWheel]:
    """Wheels of distribution ``name`` lying in pip's find-links folders (URLs are skipped)."""
    wheels = []
    for link in pip_find_links():
        parsed = urlparse(link)
        if parsed.scheme not in ("", "file"):
            continue
        folder = Path(unquote(parsed.path) if parsed.scheme == "file" else link)
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.whl")):
            try:
                dist, version, _build, tags = parse_wheel_filename(path.name)
            except InvalidWheelFilename:
                continue
            if dist == name:
                wheels.append(LocalWheel(path, dist, version, frozenset(str(t) for t in tags)))
    return wheels


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[A-Za-z0-9_./=:+,@%-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"
