"""Terminal text: the one pattern for ANSI escape sequences, and stripping them.

Outputs of cells (tracebacks, pip's progress, ``!`` commands) carry colours and cursor moves meant
for a terminal; every reader of that text (observations, pip's lines, checks) strips them with
this one pattern, so what one reader sees as plain text the others do too.
"""

from __future__ import annotations

import re

# CSI (ESC [ parameters, intermediates, one final byte: colours, cursor moves, private modes such
# as ESC[?25l) and OSC (ESC ] ... ended by BEL or by ST = ESC \\: window titles, hyperlinks).
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def strip_ansi(text: str) -> str:
    """``text`` without its ANSI escape sequences."""
    return ANSI.sub("", text)
