"""Several runs' reports as one: which images fail in which cells, and the evidence.

The monthly workflow runs the notebook once per image profile; each run writes its own
``report.json`` (harness/report/json_report.py) into a directory named after the image, and the
aggregate job downloads them all into one directory. ``load_reports`` reads either one
``report.json`` (or a directory holding one) or such a directory of per-image directories;
``render_markdown`` lays out the images x cells table and the evidence of each failing image. The
``aggregate`` verb writes it to stdout and to the job's step summary; harness/alert.py puts the
same text into the GitHub issue.

Nothing here judges: the checks already did (a report's ``fail`` findings and its verdict), this
only collects and lays out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.labels import cell_label
from harness.records import CellRecord, Finding, RunRecord

REPORT_NAME = "report.json"
SUPPORTED_REPORT_VERSIONS = (1,)
TRACEBACK_LINES = 5
MAX_FINDINGS_PER_IMAGE = 10
STATUS_ICON = {"ok": "✅", "fail": "❌", "not-run": "⏭️", "absent": "—"}


@dataclass
class ImageReport:
    """One run's report.json, named after the image it ran on."""

    image: str
    path: Path
    verdict: str
    record: RunRecord
    findings: list[Finding]

    @property
    def failing(self) -> bool:
        return self.verdict == "fail" or bool(self.failures)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "fail"]

    def versions(self) -> dict[str, str]:
        """python / numpy / torch as the kernel saw them at start (whatever the record holds)."""
        env = dict(self.record.environment)
        if "python" not in env and self.record.python:
            env["python"] = self.record.python
        return env

    def cell_statuses(self) -> dict[str, str]:
        """Column label -> "ok" | "fail" | "not-run" for every code cell, plus "run" for failures
        that concern no cell (a kernel death, a timeout)."""
        failing_cells = {f.cell_index for f in self.failures if f.cell_index is not None}
        tier_failed = {t.cell_index for t in self.record.tiers
                       if isinstance(t.payload, dict) and t.payload.get("status") == "fail"}
        statuses: dict[str, str] = {}
        for cell in self.record.cells:
            if cell.cell_type != "code":
                continue
            if cell.status == "error" or cell.index in failing_cells or cell.index in tier_failed:
                status = "fail"
            elif cell.status == "not-run":
                status = "not-run"
            else:
                status = "ok"
            statuses[column(cell.index, cell.tag)] = status
        # A finding for a cell the record did not list still gets its column.
        for finding in self.failures:
            if finding.cell_index is not None:
                statuses.setdefault(column(finding.cell_index, finding.cell_tag), "fail")
        statuses["run"] = "fail" if any(f.cell_index is None for f in self.failures) else "ok"
        return statuses

    def cell(self, index: int | None) -> CellRecord | None:
        return next((c for c in self.record.cells if c.index == index), None)


def column(index: int, tag: str) -> str:
    return tag or f"cell {index}"


def _read_one(path: Path, image: str) -> ImageReport:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HarnessError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise HarnessError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise HarnessError(f"{path} is not a report.json (a JSON object with record and findings)")
    version = data.get("report_schema_version")
    if version not in SUPPORTED_REPORT_VERSIONS:
        raise HarnessError(f"{path} has report_schema_version {version!r}; this harness reads "
                           f"{', '.join(map(str, SUPPORTED_REPORT_VERSIONS))}")
    try:
        record = RunRecord.from_json(data["record"])
        findings = [Finding.from_json(f) for f in data.get("findings", [])]
    except (KeyError, TypeError) as exc:
        raise HarnessError(f"{path} is missing or has a malformed field ({exc})") from exc
    verdict = data.get("verdict") or ("fail" if any(f.severity == "fail" for f in findings) else "pass")
    image = str(data.get("image") or record.environment.get("image") or image)
    return ImageReport(image, path, verdict, record, findings)


def missing_report(image: str, root: Path) -> ImageReport:
    """A failing entry for an image whose run left no report.json (its job died before the end):
    an absent report must never read as a pass, or the alert would close its issue."""
    detail = "no report.json: the run ended before writing one (see its job's log)"
    record = RunRecord(notebook="", output_notebook="", python="", parameters={}, started_at="",
                       duration_s=0.0, outcome="interrupted", outcome_detail=detail)
    finding = Finding("report", "fail", f"{image} has {detail}.", evidence={"expected_under": str(root)})
    return ImageReport(image, root / image / REPORT_NAME, "fail", record, [finding])


def load_reports(path: Path, expect: list[str] | tuple[str, ...] = ()) -> list[ImageReport]:
    """The reports at ``path``: a report.json, a directory holding one, or a directory of
    per-image directories (each image named by its directory, relative to ``path``). Each name in
    ``expect`` without a report is added as a failing ``missing_report``."""
    if path.is_file():
        reports = [_read_one(path, path.parent.name or "this run")]
    elif not path.is_dir():
        if not expect:
            raise HarnessError(f"{path} does not exist: pass a report.json or a directory of them")
        reports = []
    elif (path / REPORT_NAME).is_file():
        reports = [_read_one(path / REPORT_NAME, path.resolve().name)]
    else:
        found = sorted(p for p in path.rglob(REPORT_NAME) if p.is_file())
        if not found and not expect:
            raise HarnessError(f"no {REPORT_NAME} under {path}: did the runs upload their reports?")
        reports = [_read_one(p, p.parent.relative_to(path).as_posix()) for p in found]
    seen = {r.image for r in reports}
    return reports + [missing_report(name, path) for name in dict.fromkeys(expect) if name not in seen]


# -- markdown -------------------------------------------------------------------------------------

def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def failing_columns(reports: list[ImageReport]) -> list[str]:
    """Columns that fail in at least one image, in notebook order ("run" last)."""
    order: dict[str, int] = {}
    for report in reports:
        for cell in report.record.cells:
            order.setdefault(column(cell.index, cell.tag), cell.index)
        for finding in report.failures:
            if finding.cell_index is not None:
                order.setdefault(column(finding.cell_index, finding.cell_tag), finding.cell_index)
    failing = {c for r in reports for c, s in r.cell_statuses().items() if s == "fail"}
    return sorted(failing, key=lambda c: (c == "run", order.get(c, 10**6), c))


def render_table(reports: list[ImageReport]) -> str:
    """Images (rows) x failing cells (columns); every image appears, passing ones too."""
    columns = failing_columns(reports)
    header = ["image", "verdict", "python", "numpy", "torch", *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for report in reports:
        versions = report.versions()
        statuses = report.cell_statuses()
        row = [report.image, "❌ fail" if report.failing else "✅ pass",
               versions.get("python", "?"), versions.get("numpy", "?"), versions.get("torch", "?")]
        row += [STATUS_ICON[statuses.get(c, "absent")] for c in columns]
        lines.append("| " + " | ".join(_escape_cell(str(v)) for v in row) + " |")
    return "\n".join(lines)


def _traceback(report: ImageReport, finding: Finding) -> list[str]:
    head = finding.evidence.get("traceback_head") if isinstance(finding.evidence, dict) else None
    if not head:
        cell = report.cell(finding.cell_index)
        head = cell.error.traceback_head if cell is not None and cell.error is not None else []
    return [str(line) for line in head][:TRACEBACK_LINES]


def render_evidence(report: ImageReport) -> str:
    """The failing image's versions, outcome, and each failing finding with its first traceback lines."""
    versions = ", ".join(f"{k} {v}" for k, v in sorted(report.versions().items())) or "unknown"
    lines = [f"### {report.image}", "",
             f"* versions: {versions}",
             f"* outcome: {report.record.outcome}"
             + (f" ({report.record.outcome_detail})" if report.record.outcome_detail else ""),
             f"* report: `{report.path.as_posix()}`"]
    if report.record.fidelity:
        lines.append(f"* differences from the image: {'; '.join(report.record.fidelity)}")
    lines.append("")
    for finding in report.failures[:MAX_FINDINGS_PER_IMAGE]:
        where = cell_label(finding.cell_index, finding.cell_tag)
        lines.append(f"* **{finding.check}** ({where}): {finding.message}")
        tb = _traceback(report, finding)
        if tb:
            lines += ["", "  ```text", *(f"  {line}" for line in tb), "  ```", ""]
    hidden = len(report.failures) - MAX_FINDINGS_PER_IMAGE
    if hidden > 0:
        lines.append(f"* ... and {hidden} more failing finding(s) in the report")
    if report.verdict == "fail" and not report.failures:
        lines.append("* the report's verdict is fail, with no failing finding recorded")
    return "\n".join(lines).rstrip() + "\n"


def render_markdown(reports: list[ImageReport], run_url: str = "", title: str = "colab-ci") -> str:
    failing = [r for r in reports if r.failing]
    verdict = (f"{len(failing)} of {len(reports)} image(s) failing" if failing
               else f"all {len(reports)} image(s) pass")
    parts = [f"## {title}: {verdict}", ""]
    if run_url:
        parts += [f"Run: {run_url}", ""]
    parts += [render_table(reports), ""]
    if failing:
        parts += ["Failing cells are marked ❌ (⏭️ not run, — not in that run's notebook).", ""]
        parts += [render_evidence(r) for r in failing]
    return "\n".join(parts).rstrip() + "\n"


# -- CLI ------------------------------------------------------------------------------------------

def run_url_from_env(env: dict[str, str] | None = None) -> str:
    """``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`` inside Actions, else ''."""
    env = dict(os.environ) if env is None else env
    server, repo, run_id = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}" if server and repo and run_id else ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report", type=Path, required=True, metavar="DIR",
                        help="a report.json, or a directory of per-image directories holding one each")
    parser.add_argument("--expect", nargs="*", default=[], metavar="IMAGE",
                        help="images that must have a report; one without counts as failing")
    parser.add_argument("--run-url", default=None, help="link to the CI run (default: from GITHUB_* variables)")
    parser.add_argument("--summary", type=Path, default=None,
                        help="append the markdown here (default: $GITHUB_STEP_SUMMARY when set)")


def run(args: argparse.Namespace) -> int:
    """The ``aggregate`` verb: 0 every image passes, 1 one fails, 2 no usable report."""
    try:
        reports = load_reports(args.report, args.expect)
    except HarnessError as exc:
        print(f"aggregate: {exc}", file=sys.stderr)
        return 2
    from harness.report import redact  # every string that leaves the harness is redacted

    text = redact(render_markdown(reports, args.run_url if args.run_url is not None else run_url_from_env()))
    sys.stdout.write(text)
    target = args.summary or (Path(os.environ["GITHUB_STEP_SUMMARY"]) if os.environ.get("GITHUB_STEP_SUMMARY") else None)
    if target is not None:
        with target.open("a", encoding="utf-8") as handle:
            handle.write(text)
    return 1 if any(r.failing for r in reports) else 0
