"""report.json: the machine-readable report, the run record and every finding, versioned.

``render`` writes it; ``read`` and ``read_file`` read it back, validated against
harness/core/schemas/report.schema.json (its ``report_schema_version`` decides how the rest is read),
so that a report this harness cannot use is an error naming the file and the field. The record
inside carries its own ``schema_version`` (harness/core/records.py), checked as it is rebuilt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__
from harness.checks import exit_code, verdict
from harness.core.json_files import JsonFileError, read_json, validate
from harness.core.records import Finding, RunRecord
from harness.core.verdicts import EXIT_INTERRUPTED
from harness.report.attempts import Attempt

REPORT_SCHEMA_VERSION = 2   # 2: record schema 2 (probe after every cell), verdict "error"
SCHEMA = "report"           # harness/core/schemas/report.schema.json


def render(record: RunRecord, findings: list[Finding], attempts: list[Attempt] | None = None) -> dict[str, Any]:
    """``attempts``: with ``run --retries``, every attempt (the last is this report's own)."""
    code = EXIT_INTERRUPTED if record.outcome == "interrupted" else exit_code(findings)   # the CLI's exit status
    return {
        "report_schema_version": REPORT_SCHEMA_VERSION,
        "harness_version": __version__,
        "verdict": verdict(findings),
        "exit_code": code,
        "counts": {s: sum(1 for f in findings if f.severity == s) for s in ("error", "fail", "warn", "info")},
        "record": record.to_json(),
        "findings": [f.to_json() for f in findings],
        **({"attempts": [a.to_json() for a in attempts]} if attempts else {}),
    }


def dumps(record: RunRecord, findings: list[Finding], attempts: list[Attempt] | None = None) -> str:
    # default=str: evidence is plain data by contract; a stray non-JSON value must not lose the report.
    return json.dumps(render(record, findings, attempts), indent=2, default=str, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class ReportDocument:
    """A report.json read back: what its run concluded, and the record and findings it concluded from."""

    path: Path
    verdict: str                     # "pass" | "fail" | "error", as written
    exit_code: int                   # 0 | 1 | 2 | 130, as written
    record: RunRecord
    findings: list[Finding]
    data: dict[str, Any]             # the document as parsed (for fields this class leaves out)


def read(data: Any, where: str | Path = "report.json") -> tuple[RunRecord, list[Finding]]:
    """The record and findings of a parsed report.json (``JsonFileError``, a ValueError, naming
    ``where`` and the field, for a document this harness cannot read)."""
    return _build(validate(data, SCHEMA, where), where)


def _build(data: dict[str, Any], where: str | Path) -> tuple[RunRecord, list[Finding]]:
    """The record and findings of a document that matches the schema."""
    try:
        record = RunRecord.from_json(data["record"], where, within="record")
    except JsonFileError:    # names the file and the record's field already
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:   # the record's own fields
        raise JsonFileError(f"{where}: field 'record': {type(exc).__name__}: {exc}") from None
    return record, [Finding.from_json(f) for f in data["findings"]]


def read_file(path: Path) -> ReportDocument:
    """The report.json at ``path``, validated (``JsonFileError`` naming the file and the field)."""
    data = read_json(path, SCHEMA)
    record, findings = _build(data, path)
    return ReportDocument(Path(path), data["verdict"], data["exit_code"], record, findings, data)
