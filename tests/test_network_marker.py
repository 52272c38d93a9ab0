"""Tests marked ``network`` skip offline, quickly and with the reason (tests/conftest.py)."""

from __future__ import annotations

import threading
import time

import pytest

from tests import conftest


@pytest.fixture()
def probe(monkeypatch: pytest.MonkeyPatch):
    """``probe(host, port, timeout)``: the conftest's reachability check against another address."""
    def ask(host: str, port: int, timeout: float) -> tuple[str | None, float]:
        monkeypatch.setattr(conftest, "NETWORK_PROBE", (host, port))
        monkeypatch.setattr(conftest, "NETWORK_TIMEOUT_S", timeout)
        conftest.offline_reason.cache_clear()
        start = time.monotonic()
        try:
            return conftest.offline_reason(), time.monotonic() - start
        finally:
            conftest.offline_reason.cache_clear()
    return ask


def test_a_refused_connection_is_offline_with_the_reason(probe) -> None:
    reason, seconds = probe("127.0.0.1", 9, 3.0)   # nothing listens on the discard port
    assert reason is not None and reason.startswith("127.0.0.1:9 is unreachable (ConnectionRefusedError")
    assert seconds < 1.0


def test_a_probe_that_hangs_is_offline_after_the_timeout(probe, monkeypatch: pytest.MonkeyPatch) -> None:
    # No address here drops packets (this sandbox answers every connection it routes), so the hang
    # (a resolver or a firewall that never answers) is played by the connection itself.
    released = threading.Event()

    def hang(*_args: object, **_kwargs: object) -> None:
        released.wait(30)
        raise OSError("released by the test")

    monkeypatch.setattr(conftest.socket, "create_connection", hang)
    try:
        reason, seconds = probe("example.invalid", 443, 0.5)
    finally:
        released.set()
    assert reason == "example.invalid:443 did not answer within 0.5 s"
    assert seconds < 1.5


def test_a_listening_port_is_online(probe) -> None:
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        reason, _ = probe("127.0.0.1", server.getsockname()[1], 3.0)
    assert reason is None


@pytest.mark.network
def test_this_network_test_runs_only_online() -> None:
    assert conftest.offline_reason() is None   # skipped before it starts wherever the probe fails
