"""Cells: every cell ran without an unexpected error, and the run ended normally.

A cell tagged ``raises-exception`` is allowed to raise (nbclient's meaning of the tag). A run that
ended with the kernel dead, a timeout or an interruption failed whatever the cells say, because
the cells after the stopping point never ran. A run a cell ended on purpose (outcome ``stopped``:
``sys.exit(0)``, ``exit()``) is not a failure: a note names that cell and the cells that did not run.
"""

from __future__ import annotations

import re

from harness.checks.baseline import Baseline
from harness.checks.options import CheckOptions
from harness.core.labels import cell_label
from harness.core.records import CellRecord, Finding, RunRecord
from harness.core.text import strip_ansi

NAME = "cells"

_ABNORMAL = {
    "kernel-died": "the kernel died (out of memory, a segfault in a native extension, or os._exit)",
    "timeout": "execution timed out",
    "interrupted": "the run was interrupted",
}
_DETAIL_CELL = re.compile(r"\bcell (\d+)\b")


def check(record: RunRecord, baseline: Baseline | None, options: CheckOptions) -> list[Finding]:
    code = [c for c in record.cells if c.cell_type == "code"]
    if not code:
        return [Finding(NAME, "info", "No code cells were recorded, so no cell was checked.")]
    findings = [_error_finding(c) for c in code if c.status == "error" and "raises-exception" not in c.tags]
    findings += [_expected_error(c) for c in code if c.status == "error" and "raises-exception" in c.tags]
    if record.outcome in _ABNORMAL:
        findings.append(_outcome_finding(record, code))
    elif record.outcome == "stopped":
        findings.append(_stopped_finding(record, code))
    elif record.outcome == "cell-error" and not any(f.severity == "fail" for f in findings):
        # Execution stopped at an error that no cell recorded: never let that read as a pass.
        findings.append(Finding(NAME, "fail", f"The run stopped at a cell error that no cell recorded"
                                              f"{f' ({record.outcome_detail})' if record.outcome_detail else ''}; "
                                              f"see the executed notebook {record.output_notebook}.",
                                evidence={"outcome": record.outcome, "outcome_detail": record.outcome_detail}))
    return findings


_TB_HEADER = re.compile(r"^\w+\s+Traceback \(most recent call last\)$")


def first_traceback_line(cell: CellRecord) -> str:
    """The first informative traceback line: IPython opens with a rule of dashes and a header that
    repeats the exception name; the line after them says where the cell failed."""
    # records promise stripped colours; be safe if not
    lines = [strip_ansi(line).strip() for line in (cell.error.traceback_head if cell.error else [])]
    return next((" ".join(line.split()) for line in lines
                 if line and set(line) != {"-"} and not _TB_HEADER.match(line)), "")


def _error_finding(cell: CellRecord) -> Finding:
    ename, evalue = (cell.error.ename, cell.error.evalue) if cell.error else ("Error", "(no error recorded)")
    first = first_traceback_line(cell)
    return Finding(
        NAME, "fail",
        f"{cell_label(cell.index, cell.tag)} raised {ename}: {evalue}" + (f" (traceback: {first})" if first else ""),
        cell_index=cell.index, cell_tag=cell.tag,
        evidence={"ename": ename, "evalue": evalue, "traceback_first_line": first,
                  "traceback_head": cell.error.traceback_head if cell.error else [],
                  "source_head": cell.source_head},
    )


def _expected_error(cell: CellRecord) -> Finding:
    ename = cell.error.ename if cell.error else "an error"
    return Finding(NAME, "info", f"{cell_label(cell.index, cell.tag)} raised {ename}, which its "
                                 f"raises-exception tag allows.", cell_index=cell.index, cell_tag=cell.tag)


def _outcome_finding(record: RunRecord, code: list[CellRecord]) -> Finding:
    stopped = _stopping_cell(record, code)
    where = f" in {cell_label(stopped.index, stopped.tag)}" if stopped else ""
    detail = f" ({record.outcome_detail})" if record.outcome_detail else ""
    not_run = sum(1 for c in code if c.status == "not-run")
    return Finding(
        NAME, "fail",
        f"The run ended with {record.outcome}{where}: {_ABNORMAL[record.outcome]}{detail}; "
        f"{not_run} code cell{'s' if not_run != 1 else ''} did not run.",
        cell_index=stopped.index if stopped else None, cell_tag=stopped.tag if stopped else "",
        evidence={"outcome": record.outcome, "outcome_detail": record.outcome_detail, "not_run": not_run},
    )


def _stopped_finding(record: RunRecord, code: list[CellRecord]) -> Finding:
    stopped = _stopping_cell(record, code)
    after = [c for c in code if c.status == "not-run" and (stopped is None or c.index > stopped.index)]
    listed = ", ".join(cell_label(c.index, c.tag) for c in after)
    how = record.outcome_detail or "a cell ended the notebook"
    return Finding(
        NAME, "info",
        f"Stopped on purpose: {how}, which is not an error; "
        + (f"{len(after)} code cell{'s' if len(after) != 1 else ''} did not run: {listed}." if after
           else "no code cell was left to run."),
        cell_index=stopped.index if stopped else None, cell_tag=stopped.tag if stopped else "",
        evidence={"outcome": record.outcome, "outcome_detail": record.outcome_detail,
                  "not_run": [c.index for c in after]},
    )


def _stopping_cell(record: RunRecord, code: list[CellRecord]) -> CellRecord | None:
    """The cell the run stopped in: the one outcome_detail names, else the last cell that ran
    (when it errored) or the first that did not."""
    by_index = {c.index: c for c in code}
    if m := _DETAIL_CELL.search(record.outcome_detail):
        if int(m.group(1)) in by_index:
            return by_index[int(m.group(1))]
    first_not_run = next((i for i, c in enumerate(code) if c.status == "not-run"), None)
    if first_not_run is None:
        return code[-1]
    if first_not_run > 0 and code[first_not_run - 1].status == "error":
        return code[first_not_run - 1]
    return code[first_not_run]
