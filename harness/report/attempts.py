"""The attempts of a run retried for the network (``colab-ci run --retries N``).

Each attempt that was retried keeps its executed notebook and its reports in ``<out>/attempt-<n>/``;
the final attempt's are the main ones, in ``<out>``, and its report.json lists every attempt (field
``attempts``) with how it ended, its failing cell and the network failure that made it retried. A run
in ``--image``'s mirror that died of a mirror miss (``harness.images.misses``) is an attempt too.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.checks import exit_code, verdict
from harness.core.labels import cell_label
from harness.core.records import Finding, NetworkFailure, RunRecord

FOLDER = "attempt-{number}"
_FOLDER_NAME = re.compile(r"attempt-\d+")


def is_retried_attempt(report: Path) -> bool:
    """Whether ``report`` (a report.json) is a retried attempt's, kept in ``<out>/attempt-<n>/`` beside the
    final attempt's ``<out>/report.json``: the run's history, not another run."""
    folder = report.parent
    return bool(_FOLDER_NAME.fullmatch(folder.name)) and (folder.parent / report.name).is_file()


@dataclass(frozen=True)
class Attempt:
    number: int                     # 1 for the first run
    outcome: str                    # RunRecord.outcome
    outcome_detail: str
    verdict: str                    # "pass" | "fail" | "error"
    exit_code: int
    failing_cell: int | None        # the first cell a failing finding names; None: none does
    failing_cell_tag: str
    retried: bool                   # True: its only failure needed the network (or was a mirror miss): run again
    network: dict[str, str] | None  # the network failure (command, evidence) that made it retried
    folder: str                     # its files, relative to --out ("" for the final attempt: the main reports)
    # the mirror miss that made it run again (harness/images/misses.py): module, distribution, version, ...
    mirror_miss: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def attempt_of(number: int, record: RunRecord, findings: list[Finding], cause: NetworkFailure | None,
               folder: str, miss: Any = None) -> Attempt:
    failing = next((f for f in findings if f.severity in ("fail", "error") and f.cell_index is not None), None)
    return Attempt(number, record.outcome, record.outcome_detail, verdict(findings), exit_code(findings),
                   failing.cell_index if failing else None, failing.cell_tag if failing else "",
                   cause is not None or miss is not None,
                   {"command": cause.command, "evidence": cause.evidence} if cause is not None else None, folder,
                   dataclasses.asdict(miss) if miss is not None else None)


def why_run_again(attempt: Attempt) -> str:
    """Why ``attempt`` was run again, in words ("" for the final one)."""
    if attempt.network:
        return f"needed the network: {attempt.network['evidence']}"
    miss = attempt.mirror_miss
    if miss:
        return (f"mirror miss: {miss['error']}; the image's {miss['distribution']} {miss['version']} was added to the "
                "mirror")
    return ""


def markdown(attempts: list[Attempt]) -> str:
    """The report.md section: one row per attempt."""
    if not attempts:
        return ""
    rows = [f"## Attempts ({len(attempts)}, `--retries`)", "",
            "| attempt | verdict | outcome | failing cell | why it was run again | reports |", "|---|---|---|---|---|---|"]
    for a in attempts:
        where = cell_label(a.failing_cell, a.failing_cell_tag) if a.failing_cell is not None else ""
        why = why_run_again(a)
        rows.append(f"| {a.number} | {a.verdict} | {a.outcome} | {where} | {_cell(why)} | "
                    f"{'`' + a.folder + '/`' if a.folder else 'these'} |")
    return "\n".join(rows)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
