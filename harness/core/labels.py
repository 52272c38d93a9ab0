"""How findings and reports name a cell, so every output names it the same way."""

from __future__ import annotations


def cell_label(index: int | None, tag: str = "") -> str:
    """``cell 3 [install]``; ``cell 3`` when untagged; ``the run`` when no cell is concerned."""
    if index is None:
        return "the run"
    return f"cell {index} [{tag}]" if tag else f"cell {index}"
