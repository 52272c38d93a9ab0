"""Reading what a workflow run left into ``RunReports`` (harness/report/aggregate_model.py).

The workflow's jobs each upload a folder, and the aggregate and alert jobs download them all,
merged, into one folder:

* one folder per image (and ``colab-runtime``) holding the run's ``report.json``
  (harness/report/json_report.py), or, when the job ran several notebooks, one sub-folder per
  notebook (``IMAGE/<notebook slug>/report.json``, read as the image ``IMAGE/<notebook slug>``);
* ``smoke/smoke.json`` from the browser smoke test (harness/smoke/);
* ``preflight/preflight.json`` from ``harness preflight --out`` (harness/preflight/document.py).

``load_run`` reads such a folder (or one of those files). Each file is validated against its schema
(harness/core/schemas/); one that cannot be used, or that an ``--expect``-ed part did not leave, is
``error`` with a sentence naming the file and the field: never skipped, never a pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.checks import verdict as findings_verdict
from harness.core.errors import HarnessError
from harness.core.json_files import JsonFileError, read_json
from harness.core.verdicts import EXIT_FAIL, EXIT_HARNESS, EXIT_INTERRUPTED, EXIT_OK
from harness.preflight.document import PREFLIGHT_JSON, read_document
from harness.report import json_report
from harness.report.attempts import is_retried_attempt
from harness.report.aggregate_model import (
    PREFLIGHT,
    SMOKE,
    ImageReport,
    PreflightReport,
    RunReports,
    SmokeCheck,
    SmokeReport,
    worst,
)

REPORT_NAME = "report.json"
SMOKE_NAME = "smoke.json"
PREFLIGHT_NAME = PREFLIGHT_JSON
SMOKE_SCHEMA = "smoke"      # harness/core/schemas/smoke.schema.json

# A written exit status as a status: an interrupted run (130) could not tell.
_STATUS_OF_EXIT_CODE = {EXIT_OK: "pass", EXIT_FAIL: "fail", EXIT_HARNESS: "error", EXIT_INTERRUPTED: "error"}


def read_image_report(path: Path, image: str) -> ImageReport:
    """A report.json; one that cannot be used is an ``error`` entry saying why, never skipped."""
    try:
        report = json_report.read_file(path)
    except JsonFileError as exc:
        return ImageReport(image, path, "error", None, problem=str(exc))
    # The worst of what was written and what the findings say: a report claiming "pass" over a
    # failing finding still fails.
    status = worst(report.verdict, _STATUS_OF_EXIT_CODE[report.exit_code], findings_verdict(report.findings))
    name = str(report.data.get("image") or report.record.environment.get("image") or image)
    return ImageReport(name, path, status, report.record, report.findings)


def read_smoke(path: Path) -> SmokeReport:
    """smoke.json (``smoke_schema_version`` 1): ``{verdict, exit_code, results: [SmokeResult...]}``."""
    try:
        data = read_json(path, SMOKE_SCHEMA)
    except JsonFileError as exc:
        return SmokeReport(path, "error", [], problem=str(exc))
    checks = [SmokeCheck(item["mode"], item["ok"], item["message"], item.get("problems", []),
                         str(item.get("skipped") or ""), [str(s) for s in item.get("screenshots") or []])
              for item in data["results"]]
    written = (data["verdict"], _STATUS_OF_EXIT_CODE[data["exit_code"]])
    return SmokeReport(path, worst(*written, *(c.status for c in checks)), checks)


def read_preflight(path: Path) -> PreflightReport:
    """preflight.json as ``harness preflight --out`` writes it (harness.preflight.document)."""
    try:
        document = read_document(_parse(path), where=str(path))
    except ValueError as exc:
        return PreflightReport(path, "error", None, problem=str(exc))
    return PreflightReport(path, document.verdict, document)


def _parse(path: Path) -> Any:
    """The JSON at ``path``, for harness.preflight's own reader of its document."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None


def missing_image(image: str, root: Path) -> ImageReport:
    """An image whose run left no report.json (its job died before the end): the harness cannot tell
    how it went, so it is ``error``, never a pass (or the alert would close its issue)."""
    return ImageReport(image, root / image / REPORT_NAME, "error", None,
                       problem=f"{image} has no {REPORT_NAME}: its run ended before writing one (see its job's log)")


def load_run(path: Path, expect: list[str] | tuple[str, ...] = (),
             skipped: dict[str, str] | None = None) -> RunReports:
    """The reports at ``path``: a report.json, smoke.json or preflight.json, or a folder holding them
    at any depth (each image named by its report's folder, relative to ``path``). Each name in
    ``expect`` (images, and ``smoke`` / ``preflight``) without its report is added as ``error``;
    ``skipped`` (name -> why) are the parts left out on purpose, said as such."""
    run = RunReports(path, skipped=dict(skipped or {}))   # nothing but skips is still nothing to read: exit 2
    if path.is_file():
        _add_file(run, path, path.parent.name or "this run")
    elif path.is_dir():
        found = sorted(p for name in (REPORT_NAME, SMOKE_NAME, PREFLIGHT_NAME) for p in path.rglob(name)
                       if p.is_file() and not is_retried_attempt(p))   # --retries keeps attempts beside the final
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
        elif name not in (SMOKE, PREFLIGHT) and name not in seen and not any(s.startswith(f"{name}/") for s in seen):
            # (an image whose job ran several notebooks left IMAGE/<notebook>/report.json: it is there)
            run.images.append(missing_image(name, path))
    return run


def _add_file(run: RunReports, file: Path, image: str) -> None:
    if file.name == SMOKE_NAME:
        run.smoke.append(read_smoke(file))
    elif file.name == PREFLIGHT_NAME:
        run.preflight.append(read_preflight(file))
    else:
        run.images.append(read_image_report(file, image))
