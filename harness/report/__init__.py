"""Reports: the same findings rendered for machines (report.json), people (report.md, the terminal
verdict), CI test views (junit.xml) and GitHub (annotations, step summary).

Renderers compute nothing: the checks judged, the renderers only lay out. Nothing written may
leak a secret: a cell's error or a pip line can echo an environment variable, so every string is
passed through ``redact`` before it reaches a file or stdout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from harness.checks import verdict
from harness.core.records import Finding, RunRecord
from harness.core.secrets import redact, redact_data, secret_values
from harness.report import github, json_report, junit, markdown
from harness.report.attempts import Attempt

__all__ = ["REPORT_FILES", "redact", "redact_data", "secret_values", "verdict_text", "write_reports"]

REPORT_FILES = {"json": "report.json", "markdown": "report.md", "junit": "junit.xml"}

def write_reports(record: RunRecord, findings: list[Finding], out_dir: Path,
                  env: Mapping[str, str] | None = None, stream: TextIO | None = None,
                  attempts: list[Attempt] | None = None, publish: bool = True) -> dict[str, Path]:
    """Write report.json, report.md, junit.xml, then executed.html and report.html (which links to
    them) into ``out_dir``; in GitHub Actions (and ``publish``: not for an attempt that was retried)
    also print annotations (to ``stream``, default stdout) and append the step summary. ``attempts``:
    every attempt of a run with ``--retries`` (report.json and report.md list them). Returns the paths
    written by kind: ``json``, ``markdown``, ``junit``, ``html``, ``notebook_html`` when the executed
    notebook was rendered, and ``github_summary`` when appended."""
    env = os.environ if env is None else env
    # Redact the inputs once, so every renderer works on clean data ...
    record = RunRecord.from_json(redact_data(record.to_json(), env))
    findings = [Finding.from_json(redact_data(f.to_json(), env)) for f in findings]
    texts = {
        "json": json_report.dumps(record, findings, attempts),
        "markdown": markdown.render(record, findings, attempts),
        "junit": junit.render(record, findings),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for kind, text in texts.items():
        paths[kind] = out_dir / REPORT_FILES[kind]
        paths[kind].write_text(redact(text, env), encoding="utf-8")  # ... and the outputs again
    if publish:
        lines = [redact(line, env) for line in github.annotation_lines(findings)]
        summary = github.publish(lines, redact(texts["markdown"], env), env, stream or sys.stdout)
        if summary is not None:
            paths["github_summary"] = summary
    from harness.report import html  # report.html and executed.html: for people, in a browser

    paths.update(html.write(record, findings, out_dir, env, attempts or ()))   # last: it links to the files above
    return paths


_MAX_LINES = 15  # one screen: the full list is in report.md


def verdict_text(record: RunRecord, findings: list[Finding], paths: Mapping[str, Path] | None = None) -> str:
    """The terminal verdict: headline, one line per failure, warnings counted, where the reports are."""
    failed = [f for f in findings if f.severity in ("error", "fail")]
    warned = sum(1 for f in findings if f.severity == "warn")
    headline = verdict(findings).upper()
    lines = [f"colab-ci {headline}: {record.notebook} (outcome {record.outcome}, {record.duration_s:.1f} s)"]
    for f in failed[:_MAX_LINES]:  # messages name their cell themselves
        lines.append(f"  {f.severity.upper()} {f.check}: {_one_line(f.message)}")
    if len(failed) > _MAX_LINES:
        lines.append(f"  ... and {len(failed) - _MAX_LINES} more failures")
    lines.append(f"  {warned} warning{'s' if warned != 1 else ''}" + (" (see report.md)" if warned else ""))
    if paths:
        lines.append("  reports: " + ", ".join(str(p) for p in paths.values()))
    return redact("\n".join(lines))


def _one_line(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
