"""Several runs' reports as one Markdown text: the images x cells table, the smoke and preflight
verdicts, what the run covered, and the evidence of each failure.

``render_markdown`` lays out a ``RunReports`` (harness/report/aggregate_model.py, read by
harness/report/readers.py); the ``aggregate`` verb (harness/cli/aggregate.py) writes it to stdout and
the job's step summary, and harness/alert/ puts the same text into its GitHub issue, with
``describe_subjects`` saying what an issue waits for. Renderers compute nothing: the model decided.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness.core.labels import cell_label
from harness.core.records import Finding
from harness.core.verdicts import MARKDOWN_VERDICT_WORDS
from harness.preflight.model import PROBLEMS, ImageVerdict
from harness.preflight.render import render_text as render_preflight_text
from harness.report.aggregate_model import (
    RUN_PART,
    SMOKE,
    ImageReport,
    PreflightReport,
    RunReports,
    SmokeReport,
    Subject,
    column,
    covered_subjects,
)

CELL_ICONS = {"ok": "✅", "fail": "❌", "error": "❓", "not-run": "⏭️", "absent": "—"}
CELL_LIST_MAX = 4                            # what a run covered: more cells than this are counted, not listed
TRACEBACK_LINES = 5
MAX_FINDINGS_PER_IMAGE = 10


# -- what a run covered, what an issue waits for --------------------------------------------------

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
    parts += [f"{name} skipped (not checked)" for name in run.skipped]
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


def _preflight_detail(image: ImageVerdict) -> str:
    problems = [i for i in image.installs if i.status in PROBLEMS]
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
        text = render_preflight_text(report.failing_images, problems_only=True)
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
    parts += [f"⏭️ Not checked in this run: **{name}**, skipped: {why}" for name, why in run.skipped.items()]
    parts += [""] if run.skipped else []
    failing_images = [r for r in run.images if r.failing]
    if failing_images:
        parts += ["Failing cells are marked ❌, ❓ where the harness could not tell (⏭️ not run, — not in that "
                  "run's notebook).", ""]
        parts += [render_evidence(r) for r in failing_images]
    parts += [render_smoke_evidence(s) for s in run.smoke if s.failing]
    parts += [render_preflight_evidence(p) for p in run.preflight if p.failing]
    return "\n".join(parts).rstrip() + "\n"
