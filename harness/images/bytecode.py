"""A mirror's bytecode: compiled once after its last install, sharing what other mirrors compiled.

``PYTHONDONTWRITEBYTECODE`` may be set, so a kernel would compile what it imports on every start and
keep none of it: a mirror is compiled when it is built, with its own interpreter (its magic number),
on every core. Compiling was most of a mirror's build (uv's ``--compile-bytecode``: 85 s of 136 s
for 2025-11-24's template mirror on 2 loaded cores), and much of it was done again and again:

* the distributions' own test suites (``.../tests/...``: 4071 of that mirror's 13529 .py files;
  pandas 1112, sympy 678, numba 404, scipy 370) are left out: no notebook imports them, and one
  that did would be compiled on import, as any module without a .pyc;
* uv installs a file by hard-linking it from its cache, so the mirrors of several images that hold
  the same release of a distribution hold the very same file (one inode; the three template
  mirrors: 8249 of their 29799 compiled files). A timestamp .pyc is valid for every path of that
  file (it records the source's mtime and size), so one another mirror compiled is linked, not
  compiled again. Compiles take a lock (one at a time: each uses every core anyway), so that two
  builds running at once share too. Where uv copied instead (its cache on another file system),
  nothing is shared and everything is compiled.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Callable

from harness.core.cache_lock import exclusive

NOT_COMPILED = r"[/\\]tests[/\\]"
_SKIPPED = re.compile(NOT_COMPILED)


def compile_mirror(env: Path, say: Callable[[str], None], write: Callable[[str], None]) -> None:
    """Compile ``env``'s site-packages (but ``NOT_COMPILED``), linking what the other mirrors beside it
    (``env.parent``) compiled of the same files; ``say`` one line of progress, ``write`` the log."""
    with exclusive(env.parent.parent / "locks" / "bytecode.lock"):   # one compile at a time (see above)
        start = time.perf_counter()
        linked = share_compiled(env, [p for p in env.parent.iterdir() if p != env and p.is_dir()])
        folders = [str(p) for p in sorted(env.glob("lib/python*/site-packages"))]
        command = [str(env / "bin" / "python"), "-m", "compileall", "-q", "-j", "0", "-x", NOT_COMPILED, *folders]
        # a file that does not compile (Python 2 leftovers in some distributions) stays as it is, as with uv
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
        seconds = time.perf_counter() - start
    write(f"\n$ {' '.join(command)}\n{done.stdout[-3000:]}{done.stderr[-3000:]}(exit {done.returncode}; "
          f"{linked} .pyc linked from other mirrors; {seconds:.1f} s)\n")
    say(f"bytecode compiled in {seconds:.1f} s ({linked} files' .pyc shared with other mirrors; the "
        "distributions' tests/ aside)")


def share_compiled(env: Path, others: list[Path]) -> int:
    """Link into ``env`` every .pyc that one of ``others`` compiled for the very same source file (same
    inode) and interpreter; the number linked."""
    compiled: dict[tuple[int, int], Path] = {}
    for site in _site_packages(env):
        tag = _tag(site)
        for other in others:
            for other_site in _site_packages(other):
                if _tag(other_site) == tag:
                    compiled.update(_compiled_sources(other_site, tag))
    if not compiled:
        return 0
    linked = 0
    for site in _site_packages(env):
        tag = _tag(site)
        for folder, _dirs, files in os.walk(site):
            if _SKIPPED.search(folder + os.sep):
                continue
            for name in files:
                if not name.endswith(".py"):
                    continue
                source = os.path.join(folder, name)
                try:
                    info = os.stat(source)
                except OSError:
                    continue
                pyc = compiled.get((info.st_dev, info.st_ino))
                if pyc is None:
                    continue
                target = Path(folder) / "__pycache__" / f"{name[:-3]}.{tag}.pyc"
                if target.exists():
                    continue
                try:
                    target.parent.mkdir(exist_ok=True)
                    os.link(pyc, target)
                    linked += 1
                except OSError:
                    continue   # compiled below instead
    return linked


def _compiled_sources(site: Path, tag: str) -> dict[tuple[int, int], Path]:
    """{(device, inode) of a source file: its .pyc} for every plain .pyc under ``site``."""
    found: dict[tuple[int, int], Path] = {}
    suffix = f".{tag}.pyc"
    for folder, _dirs, files in os.walk(site):
        if os.path.basename(folder) != "__pycache__":
            continue
        for name in files:
            if name.endswith(suffix):
                source = os.path.join(os.path.dirname(folder), name[: -len(suffix)] + ".py")
                try:
                    info = os.stat(source)
                except OSError:
                    continue
                found[(info.st_dev, info.st_ino)] = Path(folder) / name
    return found


def _site_packages(env: Path) -> list[Path]:
    return sorted(env.glob("lib/python3.*/site-packages"))


def _tag(site: Path) -> str:
    """``cpython-311`` for ``lib/python3.11/site-packages``."""
    return "cpython-" + site.parent.name.removeprefix("python").replace(".", "")
