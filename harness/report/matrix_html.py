"""matrix.html: the matrix (the notebook in every image) for people, in a browser.

The verdict first; the images x checks table with each image's report.html linked; what failed;
charts comparing the images: each install cell's time and each tier test's time per image; each
image's fidelity. The matrix (harness/matrix/run.py) judged the images; this page reads each image's
report.json again only for the numbers the charts draw.
The markup is templates/matrix.html.j2 (harness/report/templates.py, autoescaped).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from harness.checks import CHECKS
from harness.core.json_files import JsonFileError
from harness.core.labels import cell_label
from harness.core.records import RunRecord
from harness.core.secrets import redact
from harness.core.verdicts import VERDICT_WORDS
from harness.observations.tier_payload import parse_payload
from harness.report import json_report
from harness.report.charts import PALETTE, Bar, Heading, bar_chart, number
from harness.report.html import REPORT_HTML
from harness.report.matrix_records import ImageRun, notebooks_named, numpy_cell, stand_ins_line
from harness.report.templates import render as render_template

MATRIX_HTML = "matrix.html"


def write(runs: list[ImageRun], notebook: Path | Sequence[Path], verdict: str, out: Path) -> Path:
    """Write matrix.html into ``out``; ``verdict`` is the matrix's (pass | fail | error)."""
    records: dict[str, RunRecord] = {}
    problems: dict[str, str] = {}
    links: dict[str, str] = {}
    for run in runs:
        if not run.out or not run.checks:   # no report of this run was read: nothing to draw or link
            continue
        folder = Path(run.out)
        try:
            records[run.label] = json_report.read_file(folder / "report.json").record
        except JsonFileError as exc:   # the message names the file and the field
            problems[run.label] = f"cannot draw its charts: {exc}"
        if _fresh(folder / REPORT_HTML, folder / "report.json"):
            links[run.label] = os.path.relpath(folder / REPORT_HTML, out)
    path = out / MATRIX_HTML
    path.write_text(redact(render(runs, notebook, verdict, records, links, problems)), encoding="utf-8")
    return path


def _fresh(page_path: Path, report: Path) -> bool:
    """The run's own report.html: written after its report.json (an older one is an earlier run's)."""
    try:
        return page_path.stat().st_mtime >= report.stat().st_mtime
    except OSError:
        return False


def render(runs: list[ImageRun], notebook: Path | Sequence[Path], verdict: str, records: Mapping[str, RunRecord],
           links: Mapping[str, str], problems: Mapping[str, str] | None = None) -> str:
    failing = sum(1 for r in runs if r.verdict != "pass")
    failures = [(r.label, r.error or "; ".join(r.failures)) for r in runs if r.error or r.failures]
    failures += list((problems or {}).items())
    return render_template(
        "matrix.html.j2", title=f"colab-ci matrix {verdict.upper()}: {notebooks_named(notebook)}", verdict=verdict,
        headline=f"colab-ci matrix: {VERDICT_WORDS.get(verdict, verdict.upper())}",
        summary=(f"{notebook.name} in {len(runs)} image{'s' if len(runs) != 1 else ''}" if isinstance(notebook, Path)
                 else f"{notebooks_named(notebook)} x images: {len(runs)} runs") + f"; {failing} not passing. "
                f"{stand_ins_line(runs)}",
        checks=list(CHECKS), runs=[_row(run, links) for run in runs], failures=failures,
        charts=_charts(runs, records),
        fidelity=[(f"{r.label}: {len(r.fidelity)} deviations of its environment from the image", r.fidelity)
                  for r in runs])


def _row(run: ImageRun, links: Mapping[str, str]) -> dict[str, Any]:
    """One image's row of the table: a check it did not run is None (shown as "-")."""
    return {"image": run.label, "python": f"{run.python} -> {run.env_python or '-'}", "numpy": numpy_cell(run),
            "torch": f"{run.torch or '-'} -> {run.env_torch or '-'}", "checks": [run.checks.get(c) for c in CHECKS],
            "verdict": run.verdict, "time": number(run.seconds, "s"), "link": links.get(run.label)}


def _charts(runs: list[ImageRun], records: Mapping[str, RunRecord]) -> list[Markup]:
    colours = {run.label: PALETTE[i % len(PALETTE)] for i, run in enumerate(runs)}
    drawn = [r for r in runs if r.label in records]
    charts = [_install_chart(drawn, records, colours), _tier_chart(drawn, records, colours),
              bar_chart("Each image's run: seconds", [Bar(r.label, r.seconds, colours[r.label]) for r in runs])]
    return [c for c in charts if c]


def _install_chart(runs: list[ImageRun], records: Mapping[str, RunRecord],
                   colours: Mapping[str, str]) -> Markup | None:
    """Install time per install cell (a group) per image (a bar)."""
    groups: dict[str, list[Bar]] = {}
    for run in runs:
        for obs in records[run.label].installs:
            groups.setdefault(cell_label(obs.cell_index, obs.cell_tag), []).append(
                Bar(run.label, obs.duration_s, colours[run.label]))
    return bar_chart("Install cells: seconds per image", _grouped(groups)) if groups else None


def _tier_chart(runs: list[ImageRun], records: Mapping[str, RunRecord],
                colours: Mapping[str, str]) -> Markup | None:
    """Each tier test's time (a group) per image (a bar)."""
    groups: dict[str, list[Bar]] = {}
    for run in runs:
        for output in records[run.label].tier_outputs():
            for test in parse_payload(output.payload, output.cell_tag).tests:
                note = "" if test.status == "pass" else test.status
                groups.setdefault(test.key, []).append(Bar(run.label, test.duration_s, colours[run.label], note=note))
    return bar_chart("Tier tests: seconds per image", _grouped(groups)) if groups else None


def _grouped(groups: Mapping[str, list[Bar]]) -> list[Bar | Heading]:
    rows: list[Bar | Heading] = []
    for label, bars in groups.items():
        rows += [Heading(label), *bars]
    return rows
