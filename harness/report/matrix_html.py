"""matrix.html: the matrix (the notebook in every image) for people, in a browser.

The verdict first; the images x checks table with each image's report.html linked; what failed;
charts comparing the images: each install cell's time and each tier test's time per image; each
image's fidelity. The matrix (harness/matrix.py) judged the images; this page reads each image's
report.json again only for the numbers the charts draw.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from harness.checks import CHECKS
from harness.core.labels import cell_label
from harness.observations.tier_payload import parse_payload
from harness.core.json_files import JsonFileError
from harness.core.records import RunRecord
from harness.report import json_report
from harness.report.charts import PALETTE, Bar, Heading, bar_chart, number
from harness.report.html import REPORT_HTML
from harness.report.html_page import VERDICT_WORDS, banner, details, esc, page, status_badge, table
from harness.report.matrix_records import ImageRun
from harness.core.secrets import redact

MATRIX_HTML = "matrix.html"


def write(runs: list[ImageRun], notebook: Path, verdict: str, out: Path) -> Path:
    """Write matrix.html into ``out``; ``verdict`` is the matrix's (pass | fail | error)."""
    records: dict[str, RunRecord] = {}
    problems: dict[str, str] = {}
    links: dict[str, str] = {}
    for run in runs:
        if not run.out or not run.checks:   # no report of this run was read: nothing to draw or link
            continue
        folder = Path(run.out)
        try:
            records[run.image] = json_report.read_file(folder / "report.json").record
        except JsonFileError as exc:   # the message names the file and the field
            problems[run.image] = f"cannot draw its charts: {exc}"
        if _fresh(folder / REPORT_HTML, folder / "report.json"):
            links[run.image] = os.path.relpath(folder / REPORT_HTML, out)
    path = out / MATRIX_HTML
    path.write_text(redact(render(runs, notebook, verdict, records, links, problems)), encoding="utf-8")
    return path


def _fresh(page_path: Path, report: Path) -> bool:
    """The run's own report.html: written after its report.json (an older one is an earlier run's)."""
    try:
        return page_path.stat().st_mtime >= report.stat().st_mtime
    except OSError:
        return False


def render(runs: list[ImageRun], notebook: Path, verdict: str, records: Mapping[str, RunRecord],
           links: Mapping[str, str], problems: Mapping[str, str] | None = None) -> str:
    failing = sum(1 for r in runs if r.verdict != "pass")
    headline = banner(verdict, f"colab-ci matrix: {VERDICT_WORDS.get(verdict, verdict.upper())}",
                      esc(f"{notebook.name} in {len(runs)} image{'s' if len(runs) != 1 else ''}; "
                          f"{failing} not passing"))
    sections = [headline, _table(runs, links), _failures(runs, problems or {}), _charts(runs, records), _fidelity(runs)]
    return page(f"colab-ci matrix {verdict.upper()}: {notebook.name}", "\n".join(s for s in sections if s))


def _table(runs: list[ImageRun], links: Mapping[str, str]) -> str:
    rows = []
    for run in runs:
        link = (f'<a href="{esc(links[run.image])}">report</a>' if run.image in links
                else '<span class="muted">none</span>')
        rows.append([esc(run.image), esc(f"{run.python} -> {run.env_python or '-'}"), esc(run.numpy), esc(run.torch),
                     *(status_badge(run.checks[c]) if c in run.checks else "-" for c in CHECKS),
                     status_badge(run.verdict), esc(number(run.seconds, "s")), link])
    return '<h2 id="images">Images</h2>' + table(
        ["image", "Python (image -> env)", "numpy", "torch", *CHECKS, "verdict", "time", "report.html"], rows,
        numeric=[5 + len(CHECKS)])


def _failures(runs: list[ImageRun], problems: Mapping[str, str]) -> str:
    items = [f"<li><b>{esc(r.image)}</b>: {esc(r.error or '; '.join(r.failures))}</li>"
             for r in runs if r.error or r.failures]
    items += [f"<li><b>{esc(image)}</b>: {esc(problem)}</li>" for image, problem in problems.items()]
    return '<h2 id="failures">What failed</h2><ul>' + "".join(items) + "</ul>" if items else ""


def _charts(runs: list[ImageRun], records: Mapping[str, RunRecord]) -> str:
    colours = {run.image: PALETTE[i % len(PALETTE)] for i, run in enumerate(runs)}
    drawn = [r for r in runs if r.image in records]
    charts = [_install_chart(drawn, records, colours), _tier_chart(drawn, records, colours),
              bar_chart("Each image's run: seconds", [Bar(r.image, r.seconds, colours[r.image]) for r in runs])]
    return '<h2 id="charts">Charts</h2><div class="charts">' + "".join(c for c in charts if c) + "</div>"


def _install_chart(runs: list[ImageRun], records: Mapping[str, RunRecord], colours: Mapping[str, str]) -> str:
    """Install time per install cell (a group) per image (a bar)."""
    groups: dict[str, list[Bar]] = {}
    for run in runs:
        for obs in records[run.image].installs:
            groups.setdefault(cell_label(obs.cell_index, obs.cell_tag), []).append(
                Bar(run.image, obs.duration_s, colours[run.image]))
    return bar_chart("Install cells: seconds per image", _grouped(groups)) if groups else ""


def _tier_chart(runs: list[ImageRun], records: Mapping[str, RunRecord], colours: Mapping[str, str]) -> str:
    """Each tier test's time (a group) per image (a bar)."""
    groups: dict[str, list[Bar]] = {}
    for run in runs:
        for output in records[run.image].tier_outputs():
            for test in parse_payload(output.payload, output.cell_tag).tests:
                note = "" if test.status == "pass" else test.status
                groups.setdefault(test.key, []).append(Bar(run.image, test.duration_s, colours[run.image], note=note))
    return bar_chart("Tier tests: seconds per image", _grouped(groups)) if groups else ""


def _grouped(groups: Mapping[str, list[Bar]]) -> list[Bar | Heading]:
    rows: list[Bar | Heading] = []
    for label, bars in groups.items():
        rows += [Heading(label), *bars]
    return rows


def _fidelity(runs: list[ImageRun]) -> str:
    parts = [details(f"{r.image}: {len(r.fidelity)} deviations of its environment from the image",
                     "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in r.fidelity) + "</ul>") for r in runs]
    return '<h2 id="fidelity">Fidelity</h2>' + "".join(parts)
