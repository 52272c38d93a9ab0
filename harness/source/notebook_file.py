"""A notebook file read as nbformat reads it, or a ``HarnessError`` naming the file.

``nbformat.reader.reads`` parses the JSON into a ``NotebookNode`` of the version the file declares,
without converting it and without validating it against nbformat's schema: static reading must take a
notebook Colab or a kernel would run even where the schema would refuse it, and must neither log nor
warn (``nbformat.read`` warns on a cell without an id and logs an invalid notebook) nor add cell ids.
"""

from __future__ import annotations

from pathlib import Path

from nbformat import NotebookNode, ValidationError
from nbformat.reader import reads

from harness.core.errors import HarnessError


def read_notebook(path: str | Path) -> NotebookNode:
    """The notebook at ``path`` (its ``cells``, ``metadata``...)."""
    path = Path(path)
    try:
        return reads(path.read_text(encoding="utf-8"))
    # OSError: no file; ValueError: not JSON (nbformat's NotJSONError), not UTF-8, an nbformat version it
    # does not know; AttributeError: JSON that is not an object; ValidationError: a key nbformat needs.
    except (OSError, ValueError, AttributeError, ValidationError) as exc:
        # the JSON parser's own words (line and column) rather than nbformat's "does not appear to be JSON"
        cause = exc.__cause__ if isinstance(exc.__cause__, ValueError) else exc
        raise HarnessError(f"cannot read notebook {path}: {cause}") from None
