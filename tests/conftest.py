"""Shared fixtures: where the repository is, and its notebook; tests marked ``network`` skip offline.

``@pytest.mark.network``: the test needs the public internet (GitHub, Colab). One probe per session
(a TCP connection to ``NETWORK_PROBE``, name resolution included, at most ``NETWORK_TIMEOUT_S``)
decides; where it fails, every such test is skipped with ``offline: <why>`` before it starts,
instead of failing slowly on its own time-outs.
"""

from __future__ import annotations

import functools
import socket
import threading
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "notebook" / "template.ipynb"
SCHEMA = REPO_ROOT / "notebook" / "tiers" / "tier-result.schema.json"


@pytest.fixture(scope="session")
def tier_schema() -> dict:
    import json

    return json.loads(SCHEMA.read_text())


NETWORK_PROBE = ("github.com", 443)
NETWORK_TIMEOUT_S = 3.0


@functools.cache
def offline_reason() -> str | None:
    """Why the public internet cannot be reached from here (None: it can); asked once per session."""
    host, port = NETWORK_PROBE
    outcome: list[str | None] = []

    def connect() -> None:   # in a thread: name resolution has no timeout of its own
        try:
            socket.create_connection(NETWORK_PROBE, timeout=NETWORK_TIMEOUT_S).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"{host}:{port} is unreachable ({type(exc).__name__}: {exc})")

    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(NETWORK_TIMEOUT_S)
    return outcome[0] if outcome else f"{host}:{port} did not answer within {NETWORK_TIMEOUT_S:g} s"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("network") is not None:
        reason = offline_reason()
        if reason is not None:
            pytest.skip(f"offline: {reason}")
