"""The matrix's reports: ``matrix.md`` (and the table printed at the end), ``matrix.json``,
``junit.xml`` (by the one JUnit writer, harness/report/junit.py) and ``matrix.html``
(harness/report/matrix_html.py), from the ``ImageRun`` of each image (harness/report/matrix_records.py).

Renderers compute nothing: each run's verdict was decided as its report was read.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from harness.checks import CHECKS
from harness.core import secrets
from harness.core.verdicts import verdict_of
from harness.report import junit, matrix_html
from harness.report.matrix_records import ImageRun, exit_code, numpy_cell, stand_ins_line

MATRIX_FILES = ("matrix.md", "matrix.json", "junit.xml")


def write_reports(runs: list[ImageRun], notebook: Path, out: Path) -> list[Path]:
    """Write matrix.md, matrix.json, junit.xml and matrix.html into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    # Redacted before any renderer escapes them (XML, HTML, JSON would split a secret): runs quote logs.
    runs = [ImageRun(**secrets.redact_data(asdict(run))) for run in runs]
    verdict = verdict_of(exit_code(runs))
    paths = [out / name for name in MATRIX_FILES]
    secrets.write_text(paths[0], render_markdown(runs, notebook) + "\n")
    secrets.write_json(paths[1], {"notebook": str(notebook), "verdict": verdict, "checks": list(CHECKS),
                                  "images": [asdict(r) for r in runs]}, indent=1, ensure_ascii=True)
    secrets.write_text(paths[2], junit.render_matrix(runs, list(CHECKS)))
    paths.append(matrix_html.write(runs, notebook, verdict, out))   # matrix.html: for people, in a browser
    return paths


def render_markdown(runs: list[ImageRun], notebook: Path, details: bool = True) -> str:
    """The images x checks table, what failed, and (``details``) each image's fidelity."""
    lines = [f"## colab-ci matrix: {notebook.name}: {['PASS', 'FAIL', 'ERROR'][exit_code(runs)]}", "",
             "| image | Python (image -> env) | numpy | torch (image -> env) | " + " | ".join(CHECKS) + " | verdict | time |",
             "|---|---|---|---|" + "---|" * len(CHECKS) + "---|---|"]
    for run in runs:
        checks = " | ".join(run.checks.get(name, "-") for name in CHECKS)
        lines.append(f"| {run.image} | {run.python} -> {run.env_python or '-'} | {numpy_cell(run)} | "
                     f"{run.torch or '-'} -> {run.env_torch or '-'} | {checks} | **{run.verdict}** | {run.seconds:.0f} s |")
    lines += ["", stand_ins_line(runs)]
    for run in runs:
        if run.error or run.failures:
            lines += ["", f"**{run.image}**: " + (run.error or "; ".join(run.failures))]
    if details:
        for run in runs:
            lines += ["", f"<details><summary>{run.image}: {len(run.fidelity)} deviations of its environment "
                          "from the image</summary>", ""]
            lines += [f"- {line}" for line in run.fidelity] + ["", "</details>"]
    return "\n".join(lines)
