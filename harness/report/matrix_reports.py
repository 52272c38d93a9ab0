"""The matrix's reports: ``matrix.md`` (and the table printed at the end), ``matrix.json``,
``junit.xml`` (by the one JUnit writer, harness/report/junit.py) and ``matrix.html``
(harness/report/matrix_html.py), from the ``ImageRun`` of each image (harness/report/matrix_records.py).

Renderers compute nothing: each run's verdict was decided as its report was read. With several
notebooks every leg is a notebook in an image: the tables gain a ``notebook`` column, what failed is
named ``notebook / image``, and junit.xml holds one test suite per notebook and image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from harness.checks import CHECKS
from harness.core import secrets
from harness.core.verdicts import verdict_of
from harness.core.json_files import JsonFileError
from harness.report import json_report, junit, matrix_html
from harness.report.matrix_records import ImageRun, exit_code, notebooks_named, numpy_cell, stand_ins_line

MATRIX_FILES = ("matrix.md", "matrix.json", "junit.xml")


def write_reports(runs: list[ImageRun], notebook: Path | Sequence[Path], out: Path) -> list[Path]:
    """Write matrix.md, matrix.json, junit.xml and matrix.html into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    # Redacted before any renderer escapes them (XML, HTML, JSON would split a secret): runs quote logs.
    runs = [ImageRun(**secrets.redact_data(asdict(run))) for run in runs]
    verdict = verdict_of(exit_code(runs))
    paths = [out / name for name in MATRIX_FILES]
    secrets.write_text(paths[0], render_markdown(runs, notebook) + "\n")
    several = {} if isinstance(notebook, Path) else {"notebooks": [str(p) for p in notebook]}
    secrets.write_json(paths[1], {"notebook": str(notebook) if isinstance(notebook, Path) else "", **several,
                                  "verdict": verdict, "checks": list(CHECKS),
                                  "images": [_leg_json(r) for r in runs]}, indent=1, ensure_ascii=True)
    secrets.write_text(paths[2], junit.render_matrix(runs, list(CHECKS), _leg_records(runs)))
    paths.append(matrix_html.write(runs, notebook, verdict, out))   # matrix.html: for people, in a browser
    return paths


def _leg_json(run: ImageRun) -> dict:
    """A leg in matrix.json: its fields, ``notebook`` only where there are several notebooks."""
    data = asdict(run)
    if not run.notebook:
        del data["notebook"]
    return data


def _leg_records(runs: list[ImageRun]) -> dict[int, tuple]:
    """With several notebooks, each leg's (record, findings) from its report.json, by position, for
    junit.xml's suite per leg (a leg whose report was not read, or cannot be, is left out)."""
    legs: dict[int, tuple] = {}
    for position, run in enumerate(runs):
        if not run.notebook or not run.out or not run.checks:
            continue
        try:
            document = json_report.read_file(Path(run.out) / "report.json")
        except JsonFileError:
            continue
        legs[position] = (document.record, document.findings)
    return legs


def render_markdown(runs: list[ImageRun], notebook: Path | Sequence[Path], details: bool = True) -> str:
    """The (notebooks x) images x checks table, what failed, and (``details``) each leg's fidelity."""
    several = any(run.notebook for run in runs)
    lines = [f"## colab-ci matrix: {notebooks_named(notebook)}: {['PASS', 'FAIL', 'ERROR'][exit_code(runs)]}", "",
             ("| notebook " if several else "") + "| image | Python (image -> env) | numpy | torch (image -> env) | "
             + " | ".join(CHECKS) + " | verdict | time |",
             ("|---" if several else "") + "|---|---|---|---|" + "---|" * len(CHECKS) + "---|---|"]
    for run in runs:
        checks = " | ".join(run.checks.get(name, "-") for name in CHECKS)
        lines.append((f"| {run.notebook} " if several else "")
                     + f"| {run.image} | {run.python} -> {run.env_python or '-'} | {numpy_cell(run)} | "
                     f"{run.torch or '-'} -> {run.env_torch or '-'} | {checks} | **{run.verdict}** | {run.seconds:.0f} s |")
    lines += ["", stand_ins_line(runs)]
    for run in runs:
        if run.error or run.failures:
            lines += ["", f"**{run.label}**: " + (run.error or "; ".join(run.failures))]
    if details:
        for run in runs:
            lines += ["", f"<details><summary>{run.label}: {len(run.fidelity)} deviations of its environment "
                          "from the image</summary>", ""]
            lines += [f"- {line}" for line in run.fidelity] + ["", "</details>"]
    return "\n".join(lines)
