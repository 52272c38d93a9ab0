"""The one ANSI pattern (harness.core.text): what it strips and what it leaves."""

from __future__ import annotations

import pytest

from harness.core.text import strip_ansi


@pytest.mark.parametrize("raw, plain", [
    ("\x1b[0;31mValueError\x1b[0m: bad", "ValueError: bad"),                # SGR colours
    ("\x1b[1m\x1b[38;5;208mwarn\x1b[39m\x1b[22m", "warn"),                # 256-colour, reset forms
    ("\x1b[?25lCollecting numpy\x1b[?25h", "Collecting numpy"),           # private mode (cursor hide/show)
    ("\x1b[2K\x1b[1Gdone", "done"),                                       # erase line, cursor column
    ("a\x1b[1 qb", "ab"),                                                 # CSI with an intermediate byte
    ("\x1b]0;title\x07text", "text"),                                     # OSC ended by BEL
    ("\x1b]8;;https://pypi.org\x1b\\pypi\x1b]8;;\x1b\\", "pypi"),         # OSC 8 hyperlink ended by ST
])
def test_escape_sequences_are_stripped(raw: str, plain: str) -> None:
    assert strip_ansi(raw) == plain


def test_plain_text_and_lone_brackets_are_left_alone() -> None:
    text = "ERROR: No matching distribution found for torch==9.9 [extra] (from -r req.txt)"
    assert strip_ansi(text) == text
