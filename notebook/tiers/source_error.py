"""``ModelSourceError``: every reason the user's model could not be loaded, as one sentence.

Below fetching, instantiation and loading alike, which all raise it; in IPython it renders as that
sentence in a box instead of a traceback. The few text helpers here shape those sentences.
"""

from __future__ import annotations

import textwrap
from typing import Any


class ModelSourceError(ValueError):
    """The model could not be loaded; ``str(error)`` is one sentence saying why and what to do."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return _box(["MODEL NOT LOADED", *_wrap(str(self), 100)]).splitlines()


def quoted(value: Any, limit: int = 120) -> str:
    """``value`` as its repr, cut to ``limit`` characters (a long value must not flood the one-sentence message)."""
    text = repr(str(value))
    return text if len(text) <= limit else text[:limit - 4] + "...'"


def human_size(size: int) -> str:
    """``1.2 MB``, ``3.4 kB`` or ``12 bytes``."""
    if size >= 1_000_000:
        return f"{size / 1e6:.1f} MB"
    if size >= 1_000:
        return f"{size / 1e3:.1f} kB"
    return f"{size} bytes"


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width) or [""]


def _box(lines: list[str]) -> str:
    width = max(map(len, lines))
    border = "+" + "-" * (width + 2) + "+"
    return "\n".join([border, *(f"| {line:<{width}} |" for line in lines), border])
