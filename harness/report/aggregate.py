"""Several runs' reports as one: which images fail in which cells, the smoke test, the preflight.

The workflow's jobs each upload a folder, and the aggregate and alert jobs download them all,
merged, into one folder:

* one folder per image (and ``colab-runtime``) holding the run's ``report.json``
  (harness/report/json_report.py);
* ``smoke/smoke.json`` from the browser smoke test (harness/smoke/report.py);
* ``preflight/preflight.json`` from ``harness preflight --out`` (harness/preflight.py).

``load_run`` reads such a folder (or one of those files) into a ``RunReports``; ``render_markdown``
lays out the images x cells table, the smoke and preflight verdicts, what the run covered, and the
evidence of each failure. The ``aggregate`` verb writes it to stdout and to the job's step summary;
harness/alert/ puts the same text into the GitHub issue and uses ``failing_subjects`` /
``covered_subjects`` to decide whether a green run may close it.

Nothing here judges a run: the checks, the smoke test and the preflight already did. This only
collects, and fails closed while doing so: a report that says ``error``, that cannot be read, or
that an ``--expect``-ed part did not leave, is "could not tell" (exit 2), never skipped and never a
pass.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import preflight as preflight_module
from harness.checks import verdict as findings_verdict
from harness.core.errors import HarnessError
from harness.core.labels import cell_label
from harness.notebook_config import tiers_enabled
from harness.core.records import CellRecord, Finding, RunRecord
from harness.core.verdicts import MARKDOWN_VERDICT_WORDS, VERDICTS
from harness.report import json_report

REPORT_NAME = "report.json"
SMOKE_NAME = "smoke.json"
PREFLIGHT_NAME = preflight_module.PREFLIGHT_JSON
SMOKE, PREFLIGHT = "smoke", "preflight"     # the names ``--expect`` gives the smoke test and the preflight
SMOKE_SCHEMA_VERSION = 1

CELL_ICONS = {"ok": "✅", "fail": "❌", "error": "❓", "not-run": "⏭️", "absent": "—"}
RUN_PART = cell_label(None)                  # "the run": findings that concern no cell (kernel death, timeout)
CELL_LIST_MAX = 4                            # what a run covered: more cells than this are counted, not listed
TRACEBACK_LINES = 5
MAX_FINDINGS_PER_IMAGE = 10


def worst(*statuses: str) -> str:
    """The worst of ``pass`` < ``fail`` < ``error``."""
    return max(statuses, key=VERDICTS.index, default="pass")


def _status_of_exit_code(code: Any) -> str | None:
    """pass/fail/error for a written exit code (130, interrupted: the run could not tell); None when unknown."""
    return {0: "pass", 1: "fail", 2: "error", 130: "error"}.get(code) if isinstance(code, int) else None


# -- what was read --------------------------------------------------------------------------------

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
        declares (its metadata, harness/notebook_config.py) that its parameters left switched on.
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


def worst_cell(status: str, severity: str) -> str:
    """A cell's status once a finding of ``severity`` (or a failure: "fail") is added to it."""
    return "error" if "error" in (status, severity) else "fail"


def column(index: int, tag: str) -> str:
    return tag or f"cell {index}"


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
    document: preflight_module.PreflightDocument | None
    problem: str = ""                 # why preflight.json could not be used

    @property
    def failing(self) -> bool:
        return self.status != "pass"

    @property
    def failing_images(self) -> list[preflight_module.ImageVerdict]:
        images = self.document.images if self.document else []
        return [v for v in images if v.status in preflight_module.PROBLEMS]


@dataclass
class RunReports:
    """Everything one workflow run left: per-image reports, smoke test, preflight."""

    root: Path
    images: list[ImageReport] = field(default_factory=list)
    smoke: list[SmokeReport] = field(default_factory=list)
    preflight: list[PreflightReport] = field(default_factory=list)

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


# -- reading --------------------------------------------------------------------------------------

def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None


def read_image_report(path: Path, image: str) -> ImageReport:
    """A report.json; one that cannot be used is an ``error`` entry saying why, never skipped."""
    try:
        data = _load_json(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path} is not a report.json (a JSON object with record and findings)")
        try:
            record, findings = json_report.read(data)
        except ValueError as exc:   # an unknown report_schema_version: the message names it
            raise ValueError(f"{path}: {exc}") from None
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path} is missing or has a malformed field ({type(exc).__name__}: {exc})") from None
        written = data.get("verdict")
        if written not in VERDICTS:
            raise ValueError(f"{path} has verdict {written!r}; expected one of {', '.join(VERDICTS)}")
        from_code = _status_of_exit_code(data.get("exit_code"))
        if from_code is None:
            raise ValueError(f"{path} has exit_code {data.get('exit_code')!r}; expected 0, 1, 2 or 130")
    except ValueError as exc:
        return ImageReport(image, path, "error", None, problem=str(exc))
    # The worst of what was written and what the findings say: a report claiming "pass" over a
    # failing finding still fails.
    status = worst(written, from_code, findings_verdict(findings))
    name = str(data.get("image") or record.environment.get("image") or image)
    return ImageReport(name, path, status, record, findings)


def read_smoke(path: Path) -> SmokeReport:
    """smoke.json (``smoke_schema_version`` 1): ``{verdict, exit_code, results: [SmokeResult...]}``."""
    try:
        data = _load_json(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path} is not a smoke report (a JSON object with smoke_schema_version and results)")
        version = data.get("smoke_schema_version")
        if version != SMOKE_SCHEMA_VERSION:
            raise ValueError(f"{path} has smoke_schema_version {version!r}; this harness reads {SMOKE_SCHEMA_VERSION}")
        written = data.get("verdict")
        if written not in VERDICTS:
            raise ValueError(f"{path} has verdict {written!r}; expected one of {', '.join(VERDICTS)}")
        from_code = _status_of_exit_code(data.get("exit_code"))
        if from_code is None:
            raise ValueError(f"{path} has exit_code {data.get('exit_code')!r}; expected 0, 1 or 2")
        results = data.get("results")
        if not isinstance(results, list) or not results:
            raise ValueError(f"{path} lists no results: the smoke test checked nothing")
        checks = [_smoke_check(item, path, n) for n, item in enumerate(results)]
    except ValueError as exc:
        return SmokeReport(path, "error", [], problem=str(exc))
    return SmokeReport(path, worst(written, from_code, *(c.status for c in checks)), checks)


def _smoke_check(item: Any, path: Path, n: int) -> SmokeCheck:
    where = f"{path} results[{n}]"
    if not isinstance(item, dict):
        raise ValueError(f"{where} is not an object")
    for name, kind in (("mode", str), ("ok", bool), ("message", str)):
        if not isinstance(item.get(name), kind):
            raise ValueError(f"{where} has no {kind.__name__} field {name!r}")
    problems = item.get("problems", [])
    if not isinstance(problems, list) or not all(isinstance(p, dict) for p in problems):
        raise ValueError(f"{where} has a malformed field 'problems' (a list of objects)")
    return SmokeCheck(item["mode"], item["ok"], item["message"], problems, str(item.get("skipped") or ""),
                      [str(s) for s in item.get("screenshots", []) or []])


def read_preflight(path: Path) -> PreflightReport:
    """preflight.json as ``harness preflight --out`` writes it (harness.preflight.document)."""
    try:
        document = preflight_module.read_document(_load_json(path), where=str(path))
    except ValueError as exc:
        return PreflightReport(path, "error", None, problem=str(exc))
    return PreflightReport(path, document.verdict, document)


def missing_image(image: str, root: Path) -> ImageReport:
    """An image whose run left no report.json (its job died before the end): the harness cannot tell
    how it went, so it is ``error``, never a pass (or the alert would close its issue)."""
    return ImageReport(image, root / image / REPORT_NAME, "error", None,
                       problem=f"{image} has no {REPORT_NAME}: its run ended before writing one (see its job's log)")


def load_run(path: Path, expect: list[str] | tuple[str, ...] = ()) -> RunReports:
    """The reports at ``path``: a report.json, smoke.json or preflight.json, or a folder holding them
    at any depth (each image named by its report's folder, relative to ``path``). Each name in
    ``expect`` (images, and ``smoke`` / ``preflight``) without its report is added as ``error``."""
    run = RunReports(path)
    if path.is_file():
        _add_file(run, path, path.parent.name or "this run")
    elif path.is_dir():
        found = sorted(p for name in (REPORT_NAME, SMOKE_NAME, PREFLIGHT_NAME) for p in path.rglob(name) if p.is_file())
        if not found and not expect:
            raise HarnessError(f"no {REPORT_NAME}, {SMOKE_NAME} or {PREFLIGHT_NAME} under {path}: did the runs "
                               f"upload their reports?")
        for file in found:
            folder = file.parent.relative_to(path).as_posix()
            _add_file(run, file, path.resolve().name if folder == "." else folder)
    elif not expect:
        raise HarnessError(f"{path} does not exist: pass a report.json or a folder of reports")
    seen = {r.image for r in run.images}
    for name in dict.fromkeys(expect):
        if name == SMOKE and not run.smoke:
            run.smoke.append(SmokeReport(path / SMOKE / SMOKE_NAME, "error", [], problem=(
                f"no {SMOKE_NAME}: the smoke test ended before writing one (see its job's log)")))
        elif name == PREFLIGHT and not run.preflight:
            run.preflight.append(PreflightReport(path / PREFLIGHT / PREFLIGHT_NAME, "error", None, problem=(
                f"no {PREFLIGHT_NAME}: the preflight ended before writing one (see its job's log)")))
        elif name not in (SMOKE, PREFLIGHT) and name not in seen:
            run.images.append(missing_image(name, path))
    return run


def _add_file(run: RunReports, file: Path, image: str) -> None:
    if file.name == SMOKE_NAME:
        run.smoke.append(read_smoke(file))
    elif file.name == PREFLIGHT_NAME:
        run.preflight.append(read_preflight(file))
    else:
        run.images.append(read_image_report(file, image))


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
    def from_json(cls, data: Any) -> "Subject":
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


def _cell_order(part: str) -> tuple[int, str]:
    number = part.split(" ", 2)[1] if part.startswith("cell ") and len(part.split(" ")) > 1 else ""
    return (int(number) if number.isdigit() else 10**6, part)


def describe_image_parts(parts: Iterable[str], brief: bool = False) -> str:
    """``tier1, tier2``; ``cell 4 [train], the run``. ``brief`` (what a run covered): cells and the
    run only where the image has no tier, and counted (``12 cells``) when there are many. "as a
    whole" only where nothing else is said."""
    unique = set(parts)
    cells = sorted((p for p in unique if p.startswith("cell ")), key=_cell_order)
    tiers = sorted(p for p in unique if p and p != RUN_PART and p not in cells)
    words = list(tiers)
    if not (brief and tiers):
        words += [f"{len(cells)} cells"] if brief and len(cells) > CELL_LIST_MAX else cells
        if RUN_PART in unique and not (brief and cells):
            words.append(RUN_PART)
    return ", ".join(words) or "as a whole"


def describe_subjects(subjects: set[Subject] | list[Subject], brief: bool = False) -> str:
    """``img-a (tier1, tier2), smoke (local), preflight (img-a)``: grouped, in a stable order
    (``brief``: see ``describe_image_parts``)."""
    images: dict[str, list[str]] = {}
    smoke: list[str] = []
    preflight: list[str] = []
    for subject in sorted(subjects):
        if subject.kind == "image":
            images.setdefault(subject.name, []).append(subject.part)
        elif subject.kind == SMOKE:
            smoke.append(subject.name)
        else:
            preflight.append(subject.name or "as a whole")
    parts = [f"{name} ({describe_image_parts(found, brief)})" for name, found in images.items()]
    if smoke:
        parts.append(f"smoke ({', '.join(smoke)})")
    if preflight:
        parts.append(f"preflight ({', '.join(preflight)})")
    return ", ".join(parts) or "nothing"


# -- markdown -------------------------------------------------------------------------------------

def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(values: list[str]) -> str:
    return "| " + " | ".join(_escape_cell(str(v)) for v in values) + " |"


def headline(run: RunReports) -> str:
    """``1 of 3 image(s) failing (1 could not tell); smoke fails; preflight passes``."""
    parts = []
    if run.images:
        bad = [r for r in run.images if r.failing]
        unsure = sum(1 for r in bad if r.status == "error")
        parts.append(f"{len(bad)} of {len(run.images)} image(s) failing"
                     + (f" ({unsure} could not tell)" if unsure else "") if bad
                     else f"all {len(run.images)} image(s) pass")
    words = {"pass": "passes", "fail": "fails", "error": "could not tell"}
    parts += [f"smoke {words[s.status]}" for s in run.smoke]
    preflight_words = {"pass": "passes", "fail": "predicts a corruption or a failed install",
                       "error": "could not check"}
    parts += [f"preflight {preflight_words[p.status]}" for p in run.preflight]
    return "; ".join(parts) or "no reports"


def failing_columns(reports: list[ImageReport]) -> list[str]:
    """Columns that fail (or could not tell) in at least one image, in notebook order ("run" last)."""
    order: dict[str, int] = {}
    for report in reports:
        for cell in report.record.cells if report.record is not None else []:
            order.setdefault(column(cell.index, cell.tag), cell.index)
        for finding in report.failures:
            if finding.cell_index is not None:
                order.setdefault(column(finding.cell_index, finding.cell_tag), finding.cell_index)
    failing = {c for r in reports for c, s in r.cell_statuses().items() if s in ("fail", "error")}
    return sorted(failing, key=lambda c: (c == "run", order.get(c, 10**6), c))


def render_table(reports: list[ImageReport]) -> str:
    """Images (rows) x failing cells (columns); every image appears, passing ones too."""
    columns = failing_columns(reports)
    header = ["image", "verdict", "python", "numpy", "torch", *columns]
    lines = [_row(header), "|" + "---|" * len(header)]
    for report in reports:
        versions = report.versions()
        statuses = report.cell_statuses()
        row = [report.image, MARKDOWN_VERDICT_WORDS[report.status],
               versions.get("python", "?"), versions.get("numpy", "?"), versions.get("torch", "?")]
        row += [CELL_ICONS[statuses.get(c, "absent")] for c in columns]
        lines.append(_row(row))
    return "\n".join(lines)


SMOKE_WORDS = {"pass": "✅ pass", "fail": "❌ fail", "error": "❓ not checked"}
PREFLIGHT_WORDS = {"ok": "✅ ok", "replaces": "✅ replaces (nothing imported)", "corrupts": "❌ corrupts",
                   "fails": "❌ install fails", "unchecked": "❓ could not check"}


def render_checks_table(run: RunReports) -> str:
    """One row per smoke mode and per preflight image (or per report that could not be used)."""
    lines = [_row(["check", "verdict", "detail"]), "|---|---|---|"]
    for smoke in run.smoke:
        if smoke.problem:
            lines.append(_row(["smoke", MARKDOWN_VERDICT_WORDS["error"], smoke.problem]))
        for check in smoke.checks:
            lines.append(_row([f"smoke ({check.mode})", SMOKE_WORDS[check.status], check.message]))
    for preflight in run.preflight:
        document = preflight.document
        if preflight.problem or document is None:
            lines.append(_row(["preflight", MARKDOWN_VERDICT_WORDS["error"], preflight.problem]))
            continue
        if document.error:
            lines.append(_row(["preflight", MARKDOWN_VERDICT_WORDS["error"], f"could not run: {document.error}"]))
        for image in document.images:
            lines.append(_row([f"preflight: {image.image}", PREFLIGHT_WORDS[image.status], _preflight_detail(image)]))
    return "\n".join(lines)


def _preflight_detail(image: preflight_module.ImageVerdict) -> str:
    problems = [i for i in image.installs if i.status in preflight_module.PROBLEMS]
    if not problems:
        return f"{len(image.installs)} install(s), nothing the kernel imported moves"
    first = problems[0]
    if first.status == "corrupts":
        what = "; ".join(c.describe() for c in first.corrupting)
    elif first.status == "fails":
        what = f"would fail: {first.error}"
    else:
        what = first.unchecked
    more = f" (and {len(problems) - 1} more install(s))" if len(problems) > 1 else ""
    return f"{first.install}: {what}{more}"


def _traceback(report: ImageReport, finding: Finding) -> list[str]:
    """The first lines of a cell's traceback, or the last lines of a crashed check's."""
    evidence = finding.evidence if isinstance(finding.evidence, dict) else {}
    if evidence.get("traceback_head"):
        return [str(line) for line in evidence["traceback_head"]][:TRACEBACK_LINES]
    if evidence.get("traceback"):
        lines = "".join(str(part) for part in evidence["traceback"]).rstrip().splitlines()
        lines = [line for line in lines if line.strip(" ^~")]    # Python 3.11's position markers add nothing here
        return lines[-TRACEBACK_LINES:]
    cell = report.cell(finding.cell_index)
    head = cell.error.traceback_head if cell is not None and cell.error is not None else []
    return [str(line) for line in head][:TRACEBACK_LINES]


def render_evidence(report: ImageReport) -> str:
    """The failing image's versions, outcome, and each failing finding with its first traceback lines."""
    lines = [f"### {report.image}: {MARKDOWN_VERDICT_WORDS[report.status]}", ""]
    if report.record is None:
        return "\n".join(lines + [f"* {report.problem}"]) + "\n"
    versions = ", ".join(f"{k} {v}" for k, v in sorted(report.versions().items())) or "unknown"
    lines += [f"* versions: {versions}",
              f"* outcome: {report.record.outcome}"
              + (f" ({report.record.outcome_detail})" if report.record.outcome_detail else ""),
              f"* report: `{report.path.as_posix()}`"]
    if report.record.fidelity:
        lines.append(f"* differences from the image: {'; '.join(report.record.fidelity)}")
    lines.append("")
    for finding in report.failures[:MAX_FINDINGS_PER_IMAGE]:
        where = cell_label(finding.cell_index, finding.cell_tag)
        severity = " (could not tell)" if finding.severity == "error" else ""
        lines.append(f"* **{finding.check}**{severity} ({where}): {finding.message}")
        tb = _traceback(report, finding)
        if tb:
            lines += ["", "  ```text", *(f"  {line}" for line in tb), "  ```", ""]
    hidden = len(report.failures) - MAX_FINDINGS_PER_IMAGE
    if hidden > 0:
        lines.append(f"* ... and {hidden} more failing finding(s) in the report")
    if not report.failures:
        lines.append(f"* the report's verdict is {report.status}, with no failing finding recorded")
    return "\n".join(lines).rstrip() + "\n"


def render_smoke_evidence(smoke: SmokeReport) -> str:
    lines = [f"### smoke test: {MARKDOWN_VERDICT_WORDS[smoke.status]}", "", f"* report: `{smoke.path.as_posix()}`"]
    if smoke.problem:
        lines.append(f"* {smoke.problem}")
    for check in smoke.checks:
        if check.status == "pass":
            continue
        if not check.problems:
            lines.append(f"* **{check.mode}** ({SMOKE_WORDS[check.status]}): {check.message}")
        for problem in check.problems:   # the message names the first problem: each is shown once, in full
            where = cell_label(problem.get("cell_index"), str(problem.get("cell_tag") or ""))
            first = str(problem.get("message", "")).strip().splitlines()[:TRACEBACK_LINES]
            lines.append(f"* **{check.mode}** ({SMOKE_WORDS[check.status]}): {where} failed:")
            lines += ["", "  ```text", *(f"  {line}" for line in first), "  ```", ""]
        if check.screenshots:
            lines.append(f"* screenshots: {', '.join(Path(s).name for s in check.screenshots)} (in the smoke artifact)")
    return "\n".join(lines).rstrip() + "\n"


def render_preflight_evidence(report: PreflightReport) -> str:
    lines = [f"### preflight: {MARKDOWN_VERDICT_WORDS[report.status]}", "", f"* report: `{report.path.as_posix()}`"]
    if report.problem:
        lines.append(f"* {report.problem}")
    if report.document is not None and report.document.error:
        lines.append(f"* the preflight could not run: {report.document.error}")
    if report.failing_images:
        text = preflight_module.render_text(report.failing_images, problems_only=True)
        lines += ["", "```text", text, "```"]
    return "\n".join(lines).rstrip() + "\n"


def render_runtimes(reports: list[ImageReport]) -> list[str]:
    """Which Colab a run was, where it says (Colab's runtime container: its release tag and image digest)."""
    lines = []
    for report in reports:
        env = report.versions()
        said = [f"Colab release `{env['colab_release_tag']}`" if env.get("colab_release_tag") else "",
                f"image `{env['image_digest']}`" if env.get("image_digest") else ""]
        if any(said):
            lines.append(f"* {report.image}: {', '.join(x for x in said if x)}")
    return lines + [""] if lines else []


def render_markdown(run: RunReports, run_url: str = "", title: str = "colab-ci") -> str:
    parts = [f"## {title}: {headline(run)}", ""]
    if run_url:
        parts += [f"Run: {run_url}", ""]
    if run.images:
        parts += [render_table(run.images), ""]
        parts += render_runtimes(run.images)
    if run.smoke or run.preflight:
        parts += [render_checks_table(run), ""]
    parts += [f"Checked in this run: {describe_subjects(covered_subjects(run), brief=True)}.", ""]
    failing_images = [r for r in run.images if r.failing]
    if failing_images:
        parts += ["Failing cells are marked ❌, ❓ where the harness could not tell (⏭️ not run, — not in that "
                  "run's notebook).", ""]
        parts += [render_evidence(r) for r in failing_images]
    parts += [render_smoke_evidence(s) for s in run.smoke if s.failing]
    parts += [render_preflight_evidence(p) for p in run.preflight if p.failing]
    return "\n".join(parts).rstrip() + "\n"


def to_json(run: RunReports) -> dict[str, Any]:
    """The combined verdict for tools: each part's verdict, where it came from, and why it fails."""
    return {
        "verdict": run.status, "exit_code": run.exit_code, "headline": headline(run),
        "checked": describe_subjects(covered_subjects(run), brief=True),
        "images": [{"image": r.image, "verdict": r.status, "report": r.path.as_posix(), "versions": r.versions(),
                    "failures": [f"{f.check}: {f.message}" for f in r.failures], "problem": r.problem}
                   for r in run.images],
        "smoke": [{"path": s.path.as_posix(), "verdict": s.status, "problem": s.problem,
                   "checks": [{"mode": c.mode, "verdict": c.status, "message": c.message} for c in s.checks]}
                  for s in run.smoke],
        "preflight": [{"path": p.path.as_posix(), "verdict": p.status, "problem": p.problem,
                       "failing_images": [v.image for v in p.failing_images]} for p in run.preflight],
    }


# -- CLI ------------------------------------------------------------------------------------------

def run_url_from_env(env: dict[str, str] | None = None) -> str:
    """``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`` inside Actions, else ''."""
    env = dict(os.environ) if env is None else env
    server, repo, run_id = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}" if server and repo and run_id else ""


def add_report_arguments(parser: argparse.ArgumentParser, missing: str) -> None:
    """``--report`` and ``--expect``, as ``aggregate`` and ``alert`` read a workflow run's reports."""
    parser.add_argument("--report", type=Path, required=True, metavar="DIR",
                        help="a report.json, smoke.json or preflight.json, or a folder holding them "
                             "(per-image folders, smoke/, preflight/)")
    parser.add_argument("--expect", nargs="*", default=[], metavar="NAME",
                        help=f"images (and {SMOKE!r}, {PREFLIGHT!r}) that must have a report; one without {missing}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_report_arguments(parser, "counts as could not tell")
    parser.add_argument("--run-url", default=None, help="link to the CI run (default: from GITHUB_* variables)")
    parser.add_argument("--summary", type=Path, default=None,
                        help="append the markdown here (default: $GITHUB_STEP_SUMMARY when set)")
    parser.add_argument("--json", action="store_true",
                        help="print the combined verdict as JSON on stdout instead of the markdown")


def run(args: argparse.Namespace) -> int:
    """The ``aggregate`` verb: 0 everything passes, 1 something failed, 2 something could not tell (a
    report says error, cannot be read, or is missing) or there is no report at all."""
    try:
        reports = load_run(args.report, args.expect)
    except HarnessError as exc:
        print(f"aggregate: {exc}", file=sys.stderr)
        return 2
    from harness.report import redact, redact_data  # every string that leaves the harness is redacted

    for problem in reports.problems():   # never skipped silently
        print(redact(f"aggregate: could not tell: {problem}"), file=sys.stderr)
    text = redact(render_markdown(reports, args.run_url if args.run_url is not None else run_url_from_env()))
    if args.json:
        sys.stdout.write(json.dumps(redact_data(to_json(reports)), indent=1, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(text)
    target = args.summary or (Path(os.environ["GITHUB_STEP_SUMMARY"]) if os.environ.get("GITHUB_STEP_SUMMARY") else None)
    if target is not None:
        with target.open("a", encoding="utf-8") as handle:
            handle.write(text)
    return reports.exit_code
