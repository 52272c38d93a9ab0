"""SIGTERM as Ctrl-C (harness.core.signals): raised inside, the previous handler back after."""

from __future__ import annotations

import signal
import threading

import pytest

from harness.core.signals import sigterm_as_interrupt


def test_sigterm_inside_is_a_keyboard_interrupt_and_the_previous_handler_comes_back() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: seen.append(signum))
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            with sigterm_as_interrupt():
                signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)   # outside again: the handler that was there before
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_handler_is_restored_when_the_body_raises_something_else() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(ValueError):
        with sigterm_as_interrupt():
            assert signal.getsignal(signal.SIGTERM) is not before
            raise ValueError("boom")
    assert signal.getsignal(signal.SIGTERM) is before


def test_outside_the_main_thread_nothing_changes() -> None:
    before = signal.getsignal(signal.SIGTERM)
    inside: list[object] = []

    def body() -> None:
        with sigterm_as_interrupt():   # signal.signal would raise ValueError here
            inside.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(timeout=10)
    assert inside == [before]
