"""The baseline: what a known-good run of the notebook looked like, to compare a new run against.

A baseline holds, per tier test, its status and metrics, and per install cell, its duration. It is
written from a run (``Baseline.from_record`` then ``save``, behind ``--update-baseline``) and
committed under ``baselines/`` (docs/baselines.md). A baseline someone edited by hand or an older
harness wrote must fail loudly and precisely, so ``load_baseline`` validates every field it reads
and raises ``BaselineError`` with one sentence naming the file and the field at fault.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypedDict

from harness.observations.tier_payload import STATUSES, parse_payload
from harness.records import SUMMARY_TIER, RunRecord
from harness.secrets import redact_data

BASELINE_SCHEMA_VERSION = 1
_REFRESH = "python -m harness run notebook/template.ipynb --update-baseline --baseline {path}"


class BaselineError(ValueError):
    """A baseline file that cannot be used; the message names the file and the field at fault."""


class BaselineTest(TypedDict):
    status: str                             # "pass" | "warn" | "fail" | "skip"
    metrics: dict[str, float | int | None]  # as the tier published them (None: was NaN/Inf)


def tier_test_key(tier: str, name: str) -> str:
    """``tier1/shape_robustness``: how baselines and checks key a tier test."""
    return f"{tier}/{name}"  # TierTest.key spells it the same way


def install_key(cell_index: int, cell_tag: str) -> str:
    """``2:install``: how baselines and checks key an install cell (index and tag, so a moved or
    retagged cell is a new cell rather than a false regression)."""
    return f"{cell_index}:{cell_tag}"


@dataclass
class Baseline:
    schema_version: int
    created_at: str                         # ISO 8601, UTC
    notebook: str                           # the notebook the baseline run executed
    tests: dict[str, BaselineTest] = field(default_factory=dict)  # test_key -> status, metrics
    installs: dict[str, float] = field(default_factory=dict)      # install_key -> duration_s
    environment: dict[str, str] = field(default_factory=dict)     # optional: the run's python/numpy/torch

    @classmethod
    def from_record(cls, record: RunRecord, created_at: str | None = None) -> Baseline:
        """The baseline a run would set. Later payloads of the same tier replace earlier ones
        (a tier cell run twice reports its last result)."""
        tests: dict[str, BaselineTest] = {}
        for output in record.tier_outputs():
            # An unusable payload sets nothing: the tiers check reports it on the same run.
            for test in parse_payload(output.payload, output.cell_tag).tests:
                tests[test.key] = {"status": test.status, "metrics": dict(test.metrics)}
        installs = {install_key(o.cell_index, o.cell_tag): o.duration_s for o in record.installs}
        return cls(
            schema_version=BASELINE_SCHEMA_VERSION,
            created_at=created_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            notebook=record.notebook,
            tests=tests,
            installs=installs,
            environment=dict(record.environment),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "created_at": self.created_at,
            "notebook": self.notebook,
            "tests": {k: {"status": v["status"], "metrics": dict(v["metrics"])} for k, v in self.tests.items()},
            "installs": dict(self.installs),
            "environment": dict(self.environment),
        }

    def save(self, path: Path | str) -> Path:
        """Write atomically (a crash mid-write must not leave a half baseline to be committed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(redact_data(self.to_json()), indent=2, sort_keys=True) + "\n"   # a committed file
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a baseline is an ordinary repository file
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def load_baseline(path: Path | str) -> Baseline:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"Baseline file {path} does not exist; create it with "
                            f"`{_REFRESH.format(path=path)}`.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"Baseline file {path} cannot be read: {exc}.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"Baseline file {path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                            f"column {exc.colno}.") from None
    return _parse(data, path)


def _parse(data: Any, path: Path) -> Baseline:
    def fail(where: str, problem: str) -> BaselineError:
        return BaselineError(f"Baseline file {path}: field '{where}' {problem}.")

    if not isinstance(data, dict):
        raise BaselineError(f"Baseline file {path} must hold a JSON object, not {type(data).__name__}.")
    version = data.get("schema_version")
    if version != BASELINE_SCHEMA_VERSION:
        found = "is missing" if "schema_version" not in data else f"is {version!r}"
        raise fail("schema_version", f"{found}, but this harness reads schema_version "
                   f"{BASELINE_SCHEMA_VERSION}; refresh it with `{_REFRESH.format(path=path)}`")
    for name in ("created_at", "notebook"):
        if not isinstance(data.get(name), str):
            raise fail(name, "must be a string")

    tests_in = data.get("tests", {})
    if not isinstance(tests_in, dict):
        raise fail("tests", "must be an object of test name -> {status, metrics}")
    tests: dict[str, BaselineTest] = {}
    for key, entry in tests_in.items():
        if key.startswith(SUMMARY_TIER + "/"):
            continue  # colab-ci 0.1 also recorded the summary cell's repeat of every test; never compared
        if not isinstance(entry, dict):
            raise fail(f"tests.{key}", "must be an object with 'status' and 'metrics'")
        if entry.get("status") not in STATUSES:
            raise fail(f"tests.{key}.status", f"must be one of {', '.join(STATUSES)}, not {entry.get('status')!r}")
        metrics = entry.get("metrics", {})
        if not isinstance(metrics, dict):
            raise fail(f"tests.{key}.metrics", "must be an object of metric name -> number")
        for metric, value in metrics.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise fail(f"tests.{key}.metrics.{metric}", f"must be a number or null, not {value!r}")
        tests[key] = {"status": entry["status"], "metrics": dict(metrics)}

    installs_in = data.get("installs", {})
    if not isinstance(installs_in, dict):
        raise fail("installs", "must be an object of '<index>:<tag>' -> seconds")
    for key, value in installs_in.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise fail(f"installs.{key}", f"must be a non-negative number of seconds, not {value!r}")

    environment = data.get("environment", {})
    if not isinstance(environment, dict) or not all(isinstance(v, str) for v in environment.values()):
        raise fail("environment", "must be an object of strings")

    return Baseline(
        schema_version=version,
        created_at=data["created_at"],
        notebook=data["notebook"],
        tests=tests,
        installs={k: float(v) for k, v in installs_in.items()},
        environment=dict(environment),
    )
