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
from typing import Any, TextIO

from harness.checks import exit_code
from harness.records import Finding, RunRecord
from harness.report import github, json_report, junit, markdown

__all__ = ["REPORT_FILES", "redact", "redact_data", "verdict_text", "write_reports"]

REPORT_FILES = {"json": "report.json", "markdown": "report.md", "junit": "junit.xml"}

SECRET_NAME_PARTS = ("TOKEN", "SECRET", "PASSWORD")
# Shorter values are not redacted: replacing every "1" or "true" in a report would destroy it,
# and a 3-character secret is not protected by hiding it anyway.
MIN_SECRET_LENGTH = 4
REDACTED = "***"


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose name marks them secret, longest first (so a secret
    containing another is replaced whole)."""
    env = os.environ if env is None else env
    values = {v for k, v in env.items() if any(p in k.upper() for p in SECRET_NAME_PARTS)
              and len(v) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    for value in secret_values(env):
        text = text.replace(value, REDACTED)
    return text


def redact_data(data: Any, env: Mapping[str, str] | None = None) -> Any:
    """``data`` (JSON-like) with every string, keys included, redacted. Done before serialising,
    because JSON and XML escaping can split a secret (quotes, ampersands) so the text no longer
    contains it verbatim."""
    secrets = secret_values(env)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            for secret in secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    return walk(data) if secrets else data


def write_reports(record: RunRecord, findings: list[Finding], out_dir: Path,
                  env: Mapping[str, str] | None = None, stream: TextIO | None = None) -> dict[str, Path]:
    """Write report.json, report.md and junit.xml into ``out_dir``; in GitHub Actions also print
    annotations (to ``stream``, default stdout) and append the step summary. Returns the paths
    written by kind: ``json``, ``markdown``, ``junit`` and, when appended, ``github_summary``."""
    env = os.environ if env is None else env
    # Redact the inputs once, so every renderer works on clean data ...
    record = RunRecord.from_json(redact_data(record.to_json(), env))
    findings = [Finding.from_json(redact_data(f.to_json(), env)) for f in findings]
    texts = {
        "json": json_report.dumps(record, findings),
        "markdown": markdown.render(record, findings),
        "junit": junit.render(record, findings),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for kind, text in texts.items():
        paths[kind] = out_dir / REPORT_FILES[kind]
        paths[kind].write_text(redact(text, env), encoding="utf-8")  # ... and the outputs again
    lines = [redact(line, env) for line in github.annotation_lines(findings)]
    summary = github.publish(lines, redact(texts["markdown"], env), env, stream or sys.stdout)
    if summary is not None:
        paths["github_summary"] = summary
    return paths


_MAX_LINES = 15  # one screen: the full list is in report.md


def verdict_text(record: RunRecord, findings: list[Finding], paths: Mapping[str, Path] | None = None) -> str:
    """The terminal verdict: headline, one line per failure, warnings counted, where the reports are."""
    failed = [f for f in findings if f.severity == "fail"]
    warned = sum(1 for f in findings if f.severity == "warn")
    headline = "FAIL" if exit_code(findings) else "PASS"
    lines = [f"colab-ci {headline}: {record.notebook} (outcome {record.outcome}, {record.duration_s:.1f} s)"]
    for f in failed[:_MAX_LINES]:  # messages name their cell themselves
        lines.append(f"  FAIL {f.check}: {_one_line(f.message)}")
    if len(failed) > _MAX_LINES:
        lines.append(f"  ... and {len(failed) - _MAX_LINES} more failures")
    lines.append(f"  {warned} warning{'s' if warned != 1 else ''}" + (" (see report.md)" if warned else ""))
    if paths:
        lines.append("  reports: " + ", ".join(str(p) for p in paths.values()))
    return redact("\n".join(lines))


def _one_line(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
