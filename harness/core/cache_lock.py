"""One builder at a time for a folder in the cache, across processes.

Mirrors (``<cache>/envs/NAME-KEY``) and metadata environments (``<cache>/image-metadata/NAME-KEY``)
are built in place: a builder that finds one half-built removes it and starts again. Two colab-ci
processes sharing a cache (two terminals, a matrix beside a ``run --image``, pytest-xdist workers)
would then remove each other's half-built folder mid-install. So a builder holds an exclusive
``flock`` from its up-to-date check to its last write; the second waits, then finds the folder built
and uses it. The lock file of ``<cache>/KIND/NAME`` is ``<cache>/locks/KIND--NAME.lock``: never inside
the folder (the build removes it) nor beside it (a listing of ``envs/`` sees only environments).

``flock`` locks are released by the kernel when their holder exits or is killed, so a crashed build
never leaves a lock behind (the lock file stays, empty and harmless).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def building(folder: Path, on_wait: Callable[[str], None] = lambda _line: None) -> Iterator[None]:
    """Hold the build lock of ``folder``; ``on_wait`` is told once when another process holds it."""
    lock = folder.parent.parent / "locks" / f"{folder.parent.name}--{folder.name}.lock"
    with exclusive(lock, on_wait=lambda: on_wait(f"waiting for another colab-ci process that is building {folder}")):
        yield


@contextmanager
def exclusive(lock: Path, on_wait: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``lock`` (made if need be); ``on_wait()`` when it must wait."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)   # closing the last descriptor releases the lock
