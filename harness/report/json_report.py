"""report.json: the machine-readable report, the run record and every finding, versioned.

Tools reading it check ``report_schema_version``; the record inside carries its own
``schema_version`` (harness/core/records.py). ``read`` is the inverse of ``render``.
"""

from __future__ import annotations

import json
from typing import Any

from harness import __version__
from harness.checks import exit_code, verdict
from harness.core.records import Finding, RunRecord

REPORT_SCHEMA_VERSION = 2   # 2: record schema 2 (probe after every cell), verdict "error"


def render(record: RunRecord, findings: list[Finding]) -> dict[str, Any]:
    code = 130 if record.outcome == "interrupted" else exit_code(findings)   # the CLI's exit status
    return {
        "report_schema_version": REPORT_SCHEMA_VERSION,
        "harness_version": __version__,
        "verdict": verdict(findings),
        "exit_code": code,
        "counts": {s: sum(1 for f in findings if f.severity == s) for s in ("error", "fail", "warn", "info")},
        "record": record.to_json(),
        "findings": [f.to_json() for f in findings],
    }


def dumps(record: RunRecord, findings: list[Finding]) -> str:
    # default=str: evidence is plain data by contract; a stray non-JSON value must not lose the report.
    return json.dumps(render(record, findings), indent=2, default=str, ensure_ascii=False) + "\n"


def read(data: dict[str, Any]) -> tuple[RunRecord, list[Finding]]:
    """The record and findings of a parsed report.json (ValueError on an unknown report version)."""
    version = data.get("report_schema_version")
    if version != REPORT_SCHEMA_VERSION:
        raise ValueError(f"report.json has report_schema_version {version!r}; this harness reads "
                         f"{REPORT_SCHEMA_VERSION}")
    return RunRecord.from_json(data["record"]), [Finding.from_json(f) for f in data["findings"]]
