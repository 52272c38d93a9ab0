"""SIGTERM as Ctrl-C: the one way a verb lets a CI timeout (or ``timeout``, or ``kill``) unwind.

Inside ``sigterm_as_interrupt()`` a SIGTERM raises ``KeyboardInterrupt("SIGTERM")`` in the main
thread, so context managers and ``finally`` blocks stop kernels, servers, browsers and child runs
instead of orphaning them, and the verb ends as interrupted (exit 130). On leaving, the handler that
was there before is restored. Python sets signal handlers only in the main thread; elsewhere the
context changes nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt("SIGTERM")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises ``KeyboardInterrupt``; the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
