"""What several runs' reports conclude: each part's status, what failed and what the run covered.

``RunReports`` is everything one workflow run left (harness/report/readers.py reads it): one
``ImageReport`` per image's report.json, the smoke test's ``SmokeReport``, the preflight's
``PreflightReport``. Each is pass, fail or error (could not tell); the run is the worst of them.

``Subject`` is one thing a run can check. harness/alert/ records the subjects ``failing_subjects``
gives when it opens its issue, and closes it only when one run's ``covered_subjects`` holds them all.

Nothing here judges a run: the checks, the smoke test and the preflight already did. This only
collects, and fails closed while doing so: a part that could not be read is ``error``, never a pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.labels import cell_label
from harness.core.records import CellRecord, Finding, RunRecord
from harness.core.verdicts import VERDICTS
from harness.preflight.document import PreflightDocument
from harness.preflight.model import PROBLEMS, ImageVerdict
from harness.source.notebook_config import tiers_enabled

SMOKE, PREFLIGHT = "smoke", "preflight"     # the names ``--expect`` gives the smoke test and the preflight
RUN_PART = cell_label(None)                  # "the run": findings that concern no cell (kernel death, timeout)


def worst(*statuses: str) -> str:
    """The worst of ``pass`` < ``fail`` < ``error``."""
    return max(statuses, key=VERDICTS.index, default="pass")


def worst_cell(status: str, severity: str) -> str:
    """A cell's status once a finding of ``severity`` (or a failure: "fail") is added to it."""
    return "error" if "error" in (status, severity) else "fail"


def column(index: int, tag: str) -> str:
    return tag or f"cell {index}"


@dataclass
class ImageReport:
    """One run's report.json, named after the image it ran on; ``record`` is None when there is no
    usable report (``problem`` says why: missing, unreadable, an unknown schema)."""

    image: str
    path: Path
    status: str                       # "pass" | "fail" | "error"
    record: RunRecord | None
    findings: list[Finding] = field(default_factory=list)
    problem: str = ""

    @property
    def failing(self) -> bool:
        return self.status != "pass"

    @property
    def failures(self) -> list[Finding]:
        """Findings that fail the run: ``error`` (could not tell) and ``fail``."""
        return [f for f in self.findings if f.severity in ("error", "fail")]

    def versions(self) -> dict[str, str]:
        """python / numpy / torch as the kernel saw them at start (whatever the record holds)."""
        if self.record is None:
            return {}
        env = dict(self.record.environment)
        if "python" not in env and self.record.python:
            env["python"] = self.record.python
        return env

    def cell_statuses(self) -> dict[str, str]:
        """Column label -> "ok" | "fail" | "error" | "not-run" for every code cell, plus "run" for
        findings that concern no cell (a kernel death, a timeout, a crashed check)."""
        if self.record is None:
            return {"run": "error"}
        statuses = {column(index, tag): status for index, tag, status in self.code_cells()}
        statuses["run"] = self.run_status()
        return statuses

    def run_status(self) -> str:
        """"ok" | "fail" | "error" for the findings that concern no cell."""
        run_level = [f.severity for f in self.failures if f.cell_index is None]
        return "error" if "error" in run_level or self.record is None else "fail" if run_level else "ok"

    def code_cells(self) -> list[tuple[int, str, str]]:
        """(index, tag, "ok" | "fail" | "error" | "not-run") for every code cell, in notebook order,
        and for every cell a failing finding names that the record did not list."""
        if self.record is None:
            return []
        by_cell: dict[int, str] = {}
        for finding in self.failures:
            if finding.cell_index is not None:
                by_cell[finding.cell_index] = worst_cell(by_cell.get(finding.cell_index, "ok"), finding.severity)
        tier_failed = {t.cell_index for t in self.record.tier_outputs()
                       if isinstance(t.payload, dict) and t.payload.get("status") == "fail"}
        statuses: list[tuple[int, str, str]] = []
        for cell in self.record.cells:
            if cell.cell_type != "code":
                continue
            raised = cell.status == "error" and "raises-exception" not in cell.tags   # not an expected error
            if raised or cell.index in tier_failed:
                status = worst_cell(by_cell.get(cell.index, "ok"), "fail")
            elif cell.index in by_cell:
                status = by_cell[cell.index]
            elif cell.status == "not-run":
                status = "not-run"
            else:
                status = "ok"
            statuses.append((cell.index, cell.tag, status))
        # A finding for a cell the record did not list still gets its column.
        listed = {index for index, _tag, _status in statuses}
        for finding in self.failures:
            if finding.cell_index is not None and finding.cell_index not in listed:
                statuses.append((finding.cell_index, finding.cell_tag, by_cell[finding.cell_index]))
                listed.add(finding.cell_index)
        return statuses

    def cell(self, index: int | None) -> CellRecord | None:
        return None if self.record is None else next((c for c in self.record.cells if c.index == index), None)

    def tiers_ran(self) -> set[str]:
        """Tiers whose cell published a result that tested something (a ``skip`` tier checked nothing)."""
        if self.record is None:
            return set()
        return {str(t.payload["tier"]) for t in self.record.tier_outputs()
                if isinstance(t.payload, dict) and isinstance(t.payload.get("tier"), str) and t.payload["tier"]
                and t.payload.get("status") != "skip"}

    def tiers_expected(self) -> set[str]:
        """Tiers this run was meant to check: those the notebook published results for, and those it
        declares (its metadata, harness/source/notebook_config.py) that its parameters left switched on.
        Empty for a notebook that neither publishes nor declares tiers: its cells are what is checked."""
        if self.record is None:
            return set()
        return tiers_enabled(self.record.declared_tiers, self.record.parameters) | self.tiers_ran()

    def failing_parts(self, intended: Iterable[str] = ()) -> set[str]:
        """What of this image an alert waits for when it fails: its expected tiers; for a notebook
        without tiers, its failing cells (``cell 4 [train]``) and ``the run`` for a failure in no
        cell; for a report that could not be used, ``intended`` (the other images' tiers), else ""
        (the image as a whole)."""
        if self.record is None:
            return set(intended) or {""}
        tiers = self.tiers_expected()
        if tiers:
            return tiers
        parts = {cell_label(index, tag) for index, tag, status in self.code_cells() if status in ("fail", "error")}
        if self.run_status() != "ok":
            parts.add(RUN_PART)
        return parts or {""}

    def covered_parts(self) -> set[str]:
        """What of this image the run checked: the tiers that ran, every code cell that ran without
        failing, ``the run`` when nothing outside the cells failed, and "" (the image as a whole)
        when the image passed. Nothing when its report says ``error``."""
        if self.record is None or self.status == "error":
            return set()
        parts = self.tiers_ran() | {cell_label(index, tag) for index, tag, status in self.code_cells() if status == "ok"}
        if self.run_status() == "ok":
            parts.add(RUN_PART)
        if self.status == "pass":
            parts.add("")
        return parts


@dataclass
class SmokeCheck:
    """One result of smoke.json: a mode (``local`` JupyterLab, ``colab``) and what the page showed."""

    mode: str
    ok: bool
    message: str
    problems: list[dict[str, Any]] = field(default_factory=list)   # {cell_index, cell_tag, message}
    skipped: str = ""                                               # non-empty: not checked, and why
    screenshots: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """A skipped check was not checked: it can never pass (fail closed)."""
        return "error" if self.skipped else "pass" if self.ok else "fail"


@dataclass
class SmokeReport:
    path: Path
    status: str
    checks: list[SmokeCheck]
    problem: str = ""                 # why smoke.json could not be used

    @property
    def failing(self) -> bool:
        return self.status != "pass"


@dataclass
class PreflightReport:
    path: Path
    status: str
    document: PreflightDocument | None
    problem: str = ""                 # why preflight.json could not be used

    @property
    def failing(self) -> bool:
        return self.status != "pass"

    @property
    def failing_images(self) -> list[ImageVerdict]:
        images = self.document.images if self.document else []
        return [v for v in images if v.status in PROBLEMS]


@dataclass
class RunReports:
    """Everything one workflow run left: per-image reports, smoke test, preflight."""

    root: Path
    images: list[ImageReport] = field(default_factory=list)
    smoke: list[SmokeReport] = field(default_factory=list)
    preflight: list[PreflightReport] = field(default_factory=list)
    # Parts left out on purpose, name -> why (the monthly Colab column without its secret): shown as
    # skipped, never a pass, never a failure; nothing the alert counts as covered
    skipped: dict[str, str] = field(default_factory=dict)

    def parts(self) -> list[ImageReport | SmokeReport | PreflightReport]:
        return [*self.images, *self.smoke, *self.preflight]

    @property
    def status(self) -> str:
        return worst(*(part.status for part in self.parts()))

    @property
    def exit_code(self) -> int:
        """0 everything passes, 1 something failed, 2 something could not tell (or was unreadable)."""
        return VERDICTS.index(self.status)

    @property
    def failing(self) -> bool:
        return self.status != "pass"

    def problems(self) -> list[str]:
        """One sentence per report that could not be used."""
        return [part.problem for part in self.parts() if part.problem]

    def tiers_intended(self) -> set[str]:
        """The tiers this run's image jobs were meant to check (every leg runs the same notebook with
        the same parameters); empty when no usable report says."""
        return set().union(*(r.tiers_expected() for r in self.images if r.record is not None))


# -- what a run covered, what failed --------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Subject:
    """One thing a run can check: an image at one tier (or, for a notebook without tiers, one cell),
    a smoke mode, the preflight of an image.

    The alert issue records the subjects it was opened for and closes only when one run covers them
    all (harness/alert/)."""

    kind: str        # "image" | "smoke" | "preflight"
    name: str        # the image; the smoke mode ("local", "colab"); the preflight's image ("": the whole preflight)
    part: str = ""   # images only: a tier ("tier1"); for a notebook without tiers a cell ("cell 4 [train]")
                     # or "the run"; "" the image as a whole (its report was missing and no tier is known)

    def to_json(self) -> list[str]:
        return [self.kind, self.name, self.part]

    @classmethod
    def from_json(cls, data: Any) -> Subject:
        if not (isinstance(data, list) and len(data) == 3 and all(isinstance(x, str) for x in data)
                and data[0] in ("image", SMOKE, PREFLIGHT)):
            raise ValueError(f"not a subject: {data!r}")
        return cls(*data)


def failing_subjects(run: RunReports) -> set[Subject]:
    """What failed or could not be told, at the tiers it was meant to run."""
    subjects: set[Subject] = set()
    intended = run.tiers_intended()
    for report in run.images:
        if report.failing:
            subjects |= {Subject("image", report.image, part) for part in report.failing_parts(intended)}
    for smoke in run.smoke:
        if smoke.failing:
            modes = [c.mode for c in smoke.checks if c.status != "pass"] or ["local"]
            subjects |= {Subject(SMOKE, mode) for mode in modes}
    for preflight in run.preflight:
        if preflight.failing:
            names = [v.image for v in preflight.failing_images]
            if not names or (preflight.document is not None and preflight.document.error):
                names.append("")
            subjects |= {Subject(PREFLIGHT, name) for name in names}
    return subjects


def covered_subjects(run: RunReports) -> set[Subject]:
    """What the run checked, whatever the outcome: each image at the tiers that ran (from the tier
    cells' results) and the cells that ran without failing, each smoke mode that was not skipped,
    each image the preflight could check."""
    subjects: set[Subject] = set()
    for report in run.images:
        subjects |= {Subject("image", report.image, part) for part in report.covered_parts()}
    for smoke in run.smoke:
        subjects |= {Subject(SMOKE, c.mode) for c in smoke.checks if not c.skipped}
    for preflight in run.preflight:
        if preflight.document is not None:
            subjects |= {Subject(PREFLIGHT, v.image) for v in preflight.document.images if v.status != "unchecked"}
            if preflight.document.verdict != "error":
                subjects.add(Subject(PREFLIGHT, ""))
    return subjects
