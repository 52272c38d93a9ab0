"""Recorded runs (tests/harness/recorded/*.json) and small builders for variants of them.

The JSON files are RunRecords from real runs, written by ``python -m tests.harness.record_runs``
(see there): numpy downgraded under the kernel by a requirement's ``numpy<1.28``, numpy upgraded
under the kernel (the `_center` ImportError), an untagged subprocess swap that nothing visible
reports, and a clean run of the template. Tests change one thing at a time.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from harness.core.records import CellError, CellRecord, InstallObservation, ReplacedDistribution, RunRecord, TierOutput

RECORDED = Path(__file__).parent / "recorded"


def load_record(name: str) -> RunRecord:
    path = RECORDED / f"{name}.json"
    return RunRecord.from_json(json.loads(path.read_text(encoding="utf-8")), where=path)


def minimal_record(**changes: Any) -> RunRecord:
    record = RunRecord(notebook="notebook/template.ipynb", output_notebook="out/x.ipynb", python="python3",
                       parameters={}, started_at="2026-03-01T00:00:00+00:00", duration_s=1.0, outcome="completed")
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def code_cell(index: int, tag: str = "", status: str = "ok", error: CellError | None = None,
              extra_tags: tuple[str, ...] = ()) -> CellRecord:
    tags = ([tag] if tag else []) + list(extra_tags)
    return CellRecord(index=index, cell_type="code", tags=tags, source_head=f"# cell {index}",
                      status=status, duration_s=0.1 if status != "not-run" else None, error=error)  # type: ignore[arg-type]


def install(index: int = 3, tag: str = "install", duration_s: float = 10.0,
            changed: dict[str, tuple[str | None, str | None]] | None = None,
            loaded: dict[str, str] | None = None, pip_lines: list[str] | None = None,
            recognised: tuple[str, ...] = ("%pip",)) -> InstallObservation:
    return InstallObservation(
        cell_index=index, cell_tag=tag, duration_s=duration_s,
        changed={n: [b, a] for n, (b, a) in (changed or {}).items()}, recognised=list(recognised),
        loaded=dict(loaded or {}), pip_lines=list(pip_lines or []),
    )


def replaced(index: int = 3, tag: str = "install", name: str | None = "numpy", loaded: str | None = "2.1.3",
             on_disk: str | None = "1.26.4", loaded_in_cell: int | None = None,
             evidence: str = "files") -> ReplacedDistribution:
    """Files of ``name``'s loaded modules replaced, as the probe after cell ``index`` reports it."""
    top = (name or "mystery").replace("-", "_")
    return ReplacedDistribution(
        cell_index=index, cell_tag=tag, distribution=name, version_loaded=loaded, version_on_disk=on_disk,
        modules=[top], module_count=12, path=f"/env/lib/python3.11/site-packages/{top}/_core.so",
        module=f"{top}._core", identity_loaded={"device": 1, "inode": 100, "size": 10, "mtime_ns": 1},
        identity_now=None if on_disk is None else {"device": 1, "inode": 200, "size": 11, "mtime_ns": 2},
        loaded_in_cell=loaded_in_cell, evidence=evidence)


def tier_payload(tier: str, tests: list[tuple[str, str]] | list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    """A schema-valid payload; tests as (name, status) pairs or full test dicts."""
    full = [t if isinstance(t, dict) else {"name": t[0], "status": t[1], "message": f"{t[0]} {t[1]}",
                                           "metrics": {}, "duration_s": 0.1} for t in tests]
    order = {"pass": 0, "skip": 1, "warn": 2, "fail": 3}
    payload = {"schema_version": 1, "tier": tier,
               "status": max((t["status"] for t in full), key=order.__getitem__, default="skip"),
               "tests": full, "environment": {"python": "3.12.11", "torch": "2.8.0", "numpy": "2.1.3", "device": "cpu"}}
    payload.update(overrides)
    return payload


def with_tiers(record: RunRecord, *payloads: dict[str, Any]) -> RunRecord:
    record = copy.deepcopy(record)
    record.tiers = [TierOutput(cell_index=10 + i, cell_tag=p.get("tier", "tier1"), payload=p)
                    for i, p in enumerate(payloads)]
    return record
