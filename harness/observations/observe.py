"""Executed notebook (nbformat) -> the parts of a ``RunRecord``.

Reads only what execution left in the notebook: papermill's per-cell metadata (status, start/end),
outputs, the probes' ``application/vnd.colab-ci.probe+json`` displays (``harness.execution.probes``) and the
tier cells' ``application/vnd.colab-ci.tier+json`` displays. Text is never scraped for results;
the only text read is pip's own result lines in install cells' stream outputs, kept as evidence.

Cells are mapped back to the source notebook through ``metadata.colab_ci.source_index`` (set by
``probes.instrument``); cells without it (papermill's ``injected-parameters``, its error markers)
are not source cells.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from harness.execution.probes import META_KEY, PROBE_MIME, cell_tags, probe_role
from harness.records import CellError, CellRecord, ImportedDistribution, InstallObservation, TierOutput

TIER_MIME = "application/vnd.colab-ci.tier+json"  # notebook/tiers/results.py MIME_TYPE
TRACEBACK_HEAD_LINES = 12

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
# pip's result, uninstall, resolver-conflict and "who pulled it" lines (harness.observations.pip_lines reads them).
_PIP_LINE = re.compile(
    r"^\s*(?:Successfully installed |Successfully uninstalled |Attempting uninstall: |"
    r"Found existing installation: |Uninstalling |Not uninstalling |Can't uninstall |Collecting |"
    r"ERROR: |WARNING: The following packages were previously imported|WARNING: Skipping |"
    r".*\brequires\b.*(?:\bbut you have\b.*\bwhich is incompatible|which is not installed))"
)
_NBCLIENT_TAGS = ("raises-exception", "skip-execution")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _role_tag(tags: list[str]) -> str:
    return next((t for t in tags if t not in _NBCLIENT_TAGS), "")


@dataclass
class Observed:
    """What ``observe`` read from an executed notebook."""

    cells: list[CellRecord] = field(default_factory=list)
    installs: list[InstallObservation] = field(default_factory=list)
    tiers: list[TierOutput] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    probes: list[dict[str, Any]] = field(default_factory=list)   # every probe payload, in order


def cell_error(cell: dict[str, Any]) -> CellError | None:
    """The cell's error: the one the harness noted (timeout, kernel death, interrupt) or its first
    error output; the traceback comes from the error output when there is one (for a timed-out
    cell that is the interrupt's traceback: where the cell hung)."""
    noted = (cell.get("metadata", {}).get(META_KEY) or {}).get("error")
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            lines: list[str] = []
            for chunk in out.get("traceback", []) or []:
                lines.extend(line.rstrip() for line in strip_ansi(chunk).splitlines())
            head = [line for line in lines if line.strip()][:TRACEBACK_HEAD_LINES]
            if noted:
                return CellError(ename=noted.get("ename", ""), evalue=noted.get("evalue", ""), traceback_head=head)
            return CellError(ename=out.get("ename", ""), evalue=strip_ansi(out.get("evalue", "")),
                             traceback_head=head)
    if noted:
        return CellError(ename=noted.get("ename", ""), evalue=noted.get("evalue", ""))
    return None


def _status(cell: dict[str, Any], error: CellError | None) -> str:
    pm = cell.get("metadata", {}).get("papermill") or {}
    state = pm.get("status")
    if error is not None:
        return "error"
    if state in (None, "pending"):
        return "not-run"
    if "skip-execution" in cell_tags(cell):
        return "not-run"
    if state == "failed":
        return "error"
    if state == "running" and cell.get("cell_type") == "code":
        return "error"  # it never finished (run interrupted while it ran)
    return "ok"


def _source_head(cell: dict[str, Any]) -> str:
    for line in _text(cell.get("source", "")).splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def _outputs_with(cell: dict[str, Any], mime: str) -> Iterable[dict[str, Any]]:
    for out in cell.get("outputs", []):
        if out.get("output_type") in ("display_data", "execute_result") and mime in out.get("data", {}):
            payload = out["data"][mime]
            if isinstance(payload, (str, list)):
                try:
                    payload = json.loads(_text(payload))
                except ValueError:
                    continue
            if isinstance(payload, dict):
                yield payload


def pip_lines(cell: dict[str, Any]) -> list[str]:
    """pip's result, uninstall and conflict lines in a cell's stream outputs."""
    found: list[str] = []
    for out in cell.get("outputs", []):
        if out.get("output_type") != "stream":
            continue
        for line in strip_ansi(_text(out.get("text", ""))).splitlines():
            line = line.rstrip()
            if _PIP_LINE.match(line):
                found.append(line.strip())
    return found


def observe(nb: dict[str, Any], final_installed: dict[str, str] | None = None) -> Observed:
    """Read an executed, instrumented notebook.

    ``final_installed`` (the run's environment read from disk after the kernel stopped) stands in
    for the "after" snapshot of an install cell whose after-probe never ran (kernel died in it).
    """
    seen: Observed = Observed()
    before: dict[int, dict[str, Any]] = {}
    after: dict[int, dict[str, Any]] = {}
    source_cells: dict[int, dict[str, Any]] = {}
    injected_error: CellError | None = None

    for cell in nb.get("cells", []):
        phase, index = probe_role(cell)
        if phase is not None:
            for payload in _outputs_with(cell, PROBE_MIME):
                seen.probes.append(payload)
                if phase == "startup":
                    seen.environment = {k: str(v) for k, v in (payload.get("environment") or {}).items()}
                elif phase == "before" and index is not None:
                    before[index] = payload
                elif phase == "after" and index is not None:
                    after[index] = payload
            continue
        if index is None:
            if "injected-parameters" in cell_tags(cell):
                injected_error = cell_error(cell)
            continue
        source_cells[index] = cell

    for index in sorted(source_cells):
        cell = source_cells[index]
        tags = cell_tags(cell)
        error = cell_error(cell) if cell.get("cell_type") == "code" else None
        if error is None and injected_error is not None and "parameters" in tags:
            error, injected_error = injected_error, None   # the injected values belong to this cell
        pm = cell.get("metadata", {}).get("papermill") or {}
        duration = pm.get("duration")
        record = CellRecord(index=index, cell_type=cell.get("cell_type", "code"), tags=tags,
                            source_head=_source_head(cell), status=_status(cell, error),  # type: ignore[arg-type]
                            duration_s=float(duration) if duration is not None else None, error=error)
        seen.cells.append(record)
        for payload in _outputs_with(cell, TIER_MIME):
            seen.tiers.append(TierOutput(cell_index=index, cell_tag=_role_tag(tags), payload=payload))
        if index in before:
            b = before[index]
            a = after.get(index)
            a_installed = a["installed"] if a else (final_installed if final_installed is not None
                                                    else b["installed"])
            imported_raw = dict(b.get("imported") or {})
            imported_raw.update((a or {}).get("imported") or {})
            seen.installs.append(InstallObservation(
                cell_index=index, cell_tag=_role_tag(tags), duration_s=float(duration or 0.0),
                before=dict(b["installed"]), after=dict(a_installed),
                imported={name: ImportedDistribution(version_in_memory=str(v["version_in_memory"]),
                                                     modules=list(v["modules"]))
                          for name, v in sorted(imported_raw.items())},
                pip_lines=pip_lines(cell),
            ))
    return seen
