"""Checks: pure functions from what a run observed (and a baseline) to findings.

Every check module exposes ``NAME`` and ``check(record, baseline, options) -> list[Finding]``. A
check reads only its arguments: no files, no environment, no clock, so each one is tested on
recorded runs and the same record always gives the same verdict. A check that had nothing to look
at says so with an ``info`` finding, so "passed" never silently means "never ran".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from harness.checks import cells, corruption, install_time, tiers
from harness.checks.baseline import Baseline
from harness.checks.options import CheckOptions
from harness.records import Finding, RunRecord

__all__ = ["CHECKS", "CheckOptions", "exit_code", "run_checks"]

Check = Callable[[RunRecord, Baseline | None, CheckOptions], list[Finding]]

# Causes before symptoms: a replaced numpy (corruption) explains a later cell's ImportError (cells)
# and a tier's failures (tiers), so reports list it first.
CHECKS: dict[str, Check] = {
    corruption.NAME: corruption.check,
    install_time.NAME: install_time.check,
    cells.NAME: cells.check,
    tiers.NAME: tiers.check,
}


def run_checks(record: RunRecord, baseline: Baseline | None, options: CheckOptions) -> list[Finding]:
    """Every check's findings, in ``CHECKS`` order."""
    return [finding for check in CHECKS.values() for finding in check(record, baseline, options)]


def exit_code(findings: Iterable[Finding]) -> int:
    """1 when any finding is a failure, else 0 (2, "the harness could not run", is the CLI's)."""
    return 1 if any(f.severity == "fail" for f in findings) else 0
