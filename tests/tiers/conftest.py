"""The tier tests' own pytest set-up: the ``cuda`` marker and a hard time limit on every test.

``@pytest.mark.cuda``: the test needs a CUDA GPU; it runs where ``torch.cuda.is_available()`` and is
skipped elsewhere with that reason. Registered here (not in the root pyproject.toml) so it exists
whenever these tests are collected.

Time limit: each test gets ``DEFAULT_TIME_LIMIT_S`` (or ``@pytest.mark.time_limit(seconds)``). At the
limit SIGALRM raises ``TimeoutError`` inside the test, which fails it with a traceback showing where
it was; if the test is stuck in native code that never returns to Python, ``faulthandler`` dumps
every thread's stack and ends the run ``HARD_MARGIN_S`` later, so a hang never blocks CI. Both are
Unix facilities; on Windows the limit is not enforced.
"""

from __future__ import annotations

import faulthandler
import signal
import sys
from typing import Iterator

import pytest

DEFAULT_TIME_LIMIT_S = 180.0
HARD_MARGIN_S = 60.0


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU; skipped with the reason where there is none")
    config.addinivalue_line("markers", "time_limit(seconds): this test's hard time limit (default "
                                       f"{DEFAULT_TIME_LIMIT_S:g} s in tests/tiers)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU: torch.cuda.is_available() is False on this machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def time_limit(request: pytest.FixtureRequest) -> Iterator[None]:
    marker = request.node.get_closest_marker("time_limit")
    seconds = float(marker.args[0]) if marker else DEFAULT_TIME_LIMIT_S
    if sys.platform == "win32" or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"{request.node.nodeid} ran past its {seconds:g} s time limit")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    faulthandler.dump_traceback_later(seconds + HARD_MARGIN_S, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)
