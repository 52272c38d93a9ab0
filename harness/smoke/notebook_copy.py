"""The notebook as the browser gets it: a copy in the server's root directory with its outputs
cleared and its ``parameters`` cell edited in place (``-p NAME=VALUE`` replaces the value of
``NAME = ...``; the ``#@param`` comments stay), so cell numbers are those of the source notebook;
and what the page must show of it (each cell's tag, the tier whose summary must appear)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.source.notebook_config import declared_tiers


def _tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def cell_tag(cell: dict[str, Any]) -> str:
    return next((t for t in _tags(cell) if t not in ("raises-exception", "skip-execution")), "")


def apply_parameters(notebook: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """``notebook`` with the values in its ``parameters`` cell replaced (in place, comments kept)."""
    if not parameters:
        return notebook
    cell = next((c for c in notebook.get("cells", []) if "parameters" in _tags(c)), None)
    if cell is None:
        raise HarnessError("the notebook has no cell tagged 'parameters' to apply -p values to")
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise HarnessError(f"the parameters cell is not valid Python ({exc.msg}, line {exc.lineno})") from exc
    lines = source.splitlines(keepends=True)
    spans: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            spans[node.targets[0].id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            spans[node.target.id] = node.value
    unknown = sorted(set(parameters) - set(spans))
    if unknown:
        raise HarnessError(f"parameter {unknown[0]} is not set in the notebook's parameters cell "
                           f"(it sets: {', '.join(sorted(spans)) or 'nothing'})")
    # Replace from the end so earlier offsets stay valid.
    for name in sorted(parameters, key=lambda n: (spans[n].lineno, spans[n].col_offset), reverse=True):
        value = spans[name]
        if value.end_lineno is None or value.end_col_offset is None:
            raise HarnessError(f"cannot locate the value of {name} in the parameters cell")
        start, end = value.lineno - 1, value.end_lineno - 1
        head = lines[start].encode()[: value.col_offset].decode()
        tail = lines[end].encode()[value.end_col_offset:].decode()
        lines[start: end + 1] = [f"{head}{parameters[name]!r}{tail}"]
    new_source = "".join(lines)
    cell["source"] = new_source.splitlines(keepends=True)
    return notebook


def summary_tier(notebook: dict[str, Any]) -> str:
    """The tier whose summary the page must show: the first one the notebook declares without a
    switch (it always runs); '' when it declares none (HarnessError for a malformed declaration)."""
    try:
        declared = declared_tiers(notebook.get("metadata"))
    except ValueError as exc:
        raise HarnessError(f"the notebook's {exc}") from None
    return next((tier for tier, switch in declared.items() if not switch), "")


def prepare_notebook(source: Path, root: Path, parameters: dict[str, Any]) -> Path:
    """A copy of ``source`` in ``root``, outputs cleared, parameters applied; returns its path."""
    try:
        notebook = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read the notebook {source}: {exc}") from exc
    apply_parameters(notebook, parameters)
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    target = root / source.name
    target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return target
