"""Reading a series of past runs: each a folder of report.json files, one per image.

A run is what one ``colab-ci run --out DIR`` wrote (one report.json at the top: the image is named
after the notebook), what ``colab-ci matrix --out DIR`` wrote (one folder per image), or a
workflow run's downloaded artifacts (``<image>/report.json``, or ``colab-ci-<image>/<image>/...``
when downloaded without merging): the image is the name of the folder holding its report.json.
The history branch keeps each past run as ``runs/<run name>/<image>/report.json``
(docs/reports.md), so ``--previous runs`` reads every folder in it as one run.

Fail closed: a run folder without a report.json, a report that cannot be read, a field this needs
that is missing or malformed, is a ``HistoryError`` naming the file and the field; the caller
reports it (exit 2), it is never skipped.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.core.json_files import JsonFileError, read_json
from harness.core.labels import cell_label
from harness.core.records import RunRecord
from harness.core.secrets import redact_data
from harness.observations.tier_payload import parse_payload
from harness.report import json_report

REPORT_NAME = "report.json"
TIER1 = "tier1"


class HistoryError(ValueError):
    """A run or report that cannot be used; the message names the file and the field at fault."""


@dataclass(frozen=True)
class ImagePoint:
    """What the history keeps of one image's run: its timings, statuses and verdict."""

    image: str
    report: Path
    started_at: datetime
    verdict: str                      # pass | fail | error, as the run's checks judged it
    installs: dict[str, float]        # install cell ("cell 1 [install]") -> seconds it took
    tier1_s: float | None             # seconds the Tier 1 cell took; None: it did not run
    tiers: dict[str, str]             # tier -> the status the notebook published (pass|warn|fail|skip)


@dataclass
class Run:
    name: str                         # the run folder's name
    folder: Path
    images: dict[str, ImagePoint] = field(default_factory=dict)

    @property
    def started_at(self) -> datetime:
        return min(p.started_at for p in self.images.values())

    def identity(self) -> frozenset[tuple[str, datetime]]:
        """Two folders holding the same reports (a run read twice) are one run."""
        return frozenset((p.image, p.started_at) for p in self.images.values())


def read_runs(folders: list[Path], previous: Path | None = None) -> tuple[list[Run], list[str], list[str]]:
    """The runs in ``folders`` and in every subfolder of ``previous`` (hidden ones aside), oldest
    first, each run read once. Returns (runs, problems, notes): a problem is a folder or report
    that cannot be used (the history then cannot be trusted: exit 2); a note says what was merged."""
    candidates = list(folders)
    if previous is not None:
        if not previous.is_dir():
            return [], [f"--previous {previous} is not a folder of past runs."], []
        candidates = sorted(p for p in previous.iterdir() if p.is_dir() and not p.name.startswith(".")) + candidates
    runs: list[Run] = []
    problems: list[str] = []
    notes: list[str] = []
    seen: dict[frozenset[tuple[str, datetime]], Run] = {}
    for folder in candidates:
        try:
            run = read_run(folder)
        except HistoryError as exc:
            problems.append(str(exc))
            continue
        if run.identity() in seen:
            notes.append(f"{folder} holds the same reports as {seen[run.identity()].folder}; counted once.")
            continue
        seen[run.identity()] = run
        runs.append(run)
    runs.sort(key=lambda r: (r.started_at, r.name))
    return runs, problems, notes


def read_run(folder: Path) -> Run:
    if not folder.is_dir():
        raise HistoryError(f"{folder} is not a folder (a run's --out folder or its downloaded artifacts).")
    reports = sorted(folder.rglob(REPORT_NAME))
    if not reports:
        raise HistoryError(f"{folder} holds no {REPORT_NAME}: the run wrote no report, or this is not a run's folder.")
    run = Run(folder.name, folder)
    for path in reports:
        point = read_point(path, folder)
        if point.image in run.images:
            raise HistoryError(f"{folder} holds two reports for image {point.image}: {run.images[point.image].report} "
                               f"and {path}.")
        run.images[point.image] = point
    return run


def read_point(path: Path, run_folder: Path) -> ImagePoint:
    """One report.json as a point of the history (HistoryError naming the file and field)."""
    try:
        report = json_report.read_file(path)   # validated: errors name the file and the field
    except JsonFileError as exc:
        raise HistoryError(f"{exc}.") from None
    record = report.record
    folder = path.parent
    image = folder.name if folder != run_folder else Path(record.notebook).stem or "notebook"
    return ImagePoint(image=image, report=path, started_at=_started_at(record, path), verdict=report.verdict,
                      installs=_installs(record, path), tier1_s=_tier1_seconds(record, path), tiers=_tiers(record))


def _started_at(record: RunRecord, path: Path) -> datetime:
    try:
        when = datetime.fromisoformat(record.started_at)
    except (TypeError, ValueError):
        raise HistoryError(f"{path}: field 'record.started_at' is {record.started_at!r}, "
                           "not an ISO 8601 time.") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _seconds(value: Any, path: Path, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise HistoryError(f"{path}: field '{where}' is {value!r}, not a number of seconds.")
    return float(value)


def _installs(record: RunRecord, path: Path) -> dict[str, float]:
    return {cell_label(obs.cell_index, obs.cell_tag): _seconds(obs.duration_s, path, f"record.installs[{i}].duration_s")
            for i, obs in enumerate(record.installs)}


def _tier1_seconds(record: RunRecord, path: Path) -> float | None:
    """The Tier 1 cell's time (what a user waits for); None when no cell tagged tier1 ran."""
    cells = [(i, c) for i, c in enumerate(record.cells) if c.tag == TIER1 and c.status != "not-run"]
    if not cells:
        return None
    return sum(_seconds(c.duration_s, path, f"record.cells[{i}].duration_s") for i, c in cells)


def _tiers(record: RunRecord) -> dict[str, str]:
    statuses: dict[str, str] = {}
    for output in record.tier_outputs():
        parsed = parse_payload(output.payload, output.cell_tag)
        statuses[parsed.tier or output.cell_tag] = "error" if parsed.problem else parsed.status
    return statuses


# -- keeping the history -----------------------------------------------------------------------------

def run_name(run: Run) -> str:
    """A folder name for a run that sorts by time: ``2026-12-01T051703Z``."""
    return run.started_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")


def store(run: Run, into: Path) -> Path:
    """Copy ``run``'s report.json files (only those: the history must stay small) to
    ``into/<run name>/<image>/report.json``, redacted; an earlier copy of the same run is replaced."""
    target = into / run_name(run)
    staging = into / f".{target.name}.partial"   # never leave half a run where the history reads
    shutil.rmtree(staging, ignore_errors=True)
    for point in run.images.values():
        data = redact_data(read_json(point.report, json_report.SCHEMA))   # as read_point validated it
        (staging / point.image).mkdir(parents=True, exist_ok=True)
        (staging / point.image / REPORT_NAME).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n",
                                                         encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
