"""Checks: pure functions from what a run observed (and a baseline) to findings.

Every check module exposes ``NAME`` and ``check(record, baseline, options) -> list[Finding]``. A
check reads only its arguments: no files, no environment, no clock, so each one is tested on
recorded runs and the same record always gives the same verdict. A check that had nothing to look
at says so with an ``info`` finding, so "passed" never silently means "never ran".

Fail closed: a check that raises does not take the others down and never reads as a pass; it
becomes an ``error`` finding carrying the traceback, and any ``error`` makes the verdict ``error``
(exit 2: the harness could not tell).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable

from harness.checks import cells, corruption, headless, install_time, installs, tiers
from harness.checks.baseline import Baseline
from harness.checks.options import CheckOptions
from harness.core.records import Finding, RunRecord
from harness.core.verdicts import verdict_of

__all__ = ["CHECKS", "CheckOptions", "exit_code", "run_checks", "verdict"]

Check = Callable[[RunRecord, Baseline | None, CheckOptions], list[Finding]]

# Causes before symptoms: a replaced numpy (corruption), an unreachable network (headless) or a failed
# install explains a later cell's ImportError (cells) and a tier's failures (tiers), so reports list them first.
CHECKS: dict[str, Check] = {
    corruption.NAME: corruption.check,
    headless.NAME: headless.check,
    installs.NAME: installs.check,
    install_time.NAME: install_time.check,
    cells.NAME: cells.check,
    tiers.NAME: tiers.check,
}


def run_checks(record: RunRecord, baseline: Baseline | None, options: CheckOptions) -> list[Finding]:
    """Every check's findings, in ``CHECKS`` order; a check that raises gives an ``error`` finding."""
    findings: list[Finding] = []
    for name, check in CHECKS.items():
        try:
            findings += check(record, baseline, options)
        except Exception as exc:  # noqa: BLE001 - a crashed check must fail closed, not stop the others
            findings.append(crashed(name, exc))
    return findings


def crashed(name: str, exc: BaseException) -> Finding:
    """The finding for a check (or a stage) that raised instead of judging."""
    return Finding(name, "error", f"The {name} check crashed ({type(exc).__name__}: {exc}), so this run's "
                                  f"verdict cannot be trusted; this is a bug in colab-ci.",
                   evidence={"traceback": traceback.format_exception(exc)})


def exit_code(findings: Iterable[Finding]) -> int:
    """2 when a check could not tell (an ``error`` finding), 1 when any finding is a failure, else 0."""
    severities = {f.severity for f in findings}
    return 2 if "error" in severities else 1 if "fail" in severities else 0


def verdict(findings: Iterable[Finding]) -> str:
    """``pass`` | ``fail`` | ``error``: the word for ``exit_code``."""
    return verdict_of(exit_code(findings))
