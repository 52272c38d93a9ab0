"""The baseline: what a known-good run of the notebook looked like, to compare a new run against.

A baseline holds, per tier test, its status and metrics, and per install cell, its duration. It is
written from a run (``for_update`` then ``save``, behind ``--update-baseline``) and committed under
``baselines/`` (docs/baselines.md). A baseline records what passed: a run with failing tier tests is
refused (``FailingTests``) unless the failures are accepted explicitly (``--accept-failures``), and
then each such test carries ``"accepted_failure": true``, which every later comparison repeats. A
baseline someone edited by hand or an older harness wrote must fail loudly and precisely, so
``load_baseline`` validates it against ``core/schemas/baseline.schema.json`` and raises
``BaselineError`` with one sentence naming the file and the field at fault.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, NotRequired, TypedDict

from harness.core.json_files import JsonFileError, parse_json
from harness.core.records import SUMMARY_TIER, Finding, RunRecord
from harness.core.secrets import redact_data
from harness.observations.tier_payload import parse_payload

# 2: a failing test is recorded only as an accepted failure ("accepted_failure": true). Version 1 is
# still read; its failing tests carry no acceptance, so a run failing them again fails.
# (baseline.schema.json lists the versions it reads: keep the two in step.)
BASELINE_SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)
_REFRESH = "python -m harness run notebook/template.ipynb --update-baseline --baseline {path}"


class BaselineError(ValueError):
    """A baseline file that cannot be used; the message names the file and the field at fault."""


class FailingTests(BaselineError):
    """``--update-baseline`` on a run with failing tier tests, without ``--accept-failures``."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        super().__init__(f"{len(keys)} tier test{'s' if len(keys) != 1 else ''} failed in this run: "
                         f"{', '.join(keys)}; a baseline records what passed. Fix them, or pass --accept-failures "
                         f"to record them as accepted failures (marked so in the baseline and in every report "
                         f"compared with it).")


class BaselineTest(TypedDict):
    status: str                             # "pass" | "warn" | "fail" | "skip"
    metrics: dict[str, float | int | None]  # as the tier published them (None: was NaN/Inf)
    accepted_failure: NotRequired[bool]     # present (True) only on a failing test accepted with --accept-failures


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
    def from_record(cls, record: RunRecord, created_at: str | None = None,
                    accept_failures: bool = False) -> Baseline:
        """The baseline a run would set. Later payloads of the same tier replace earlier ones
        (a tier cell run twice reports its last result). ``accept_failures`` marks every failing
        test as an accepted failure; ``for_update`` is what ``--update-baseline`` calls."""
        tests: dict[str, BaselineTest] = {}
        for output in record.tier_outputs():
            # An unusable payload sets nothing: the tiers check reports it on the same run.
            for test in parse_payload(output.payload, output.cell_tag).tests:
                tests[test.key] = {"status": test.status, "metrics": dict(test.metrics)}
                if accept_failures and test.status == "fail":
                    tests[test.key]["accepted_failure"] = True
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
            "tests": {k: {"status": v["status"], "metrics": dict(v["metrics"]),
                          **({"accepted_failure": True} if v.get("accepted_failure") else {})}
                      for k, v in self.tests.items()},
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


def failing_tests(record: RunRecord, findings: Iterable[Finding] = ()) -> list[str]:
    """The tier tests this run fails: published as ``fail`` (the last payload of a tier wins), or
    failed by a check although published otherwise (a skip whose package's install failed)."""
    status: dict[str, str] = {}
    for output in record.tier_outputs():
        for test in parse_payload(output.payload, output.cell_tag).tests:
            status[test.key] = test.status
    failed = [key for key, value in status.items() if value == "fail"]
    for finding in findings:   # a regression against the old baseline (pass -> warn) is not a failing test
        ev = finding.evidence
        if finding.check == "tiers" and finding.severity == "fail" and "install" in ev \
                and isinstance(ev.get("tier"), str) and isinstance(ev.get("test"), str):
            key = tier_test_key(ev["tier"], ev["test"])
            if key in status and key not in failed:
                failed.append(key)
    return failed


def for_update(record: RunRecord, findings: Iterable[Finding], accept_failures: bool) -> Baseline:
    """The baseline ``--update-baseline`` writes from this run; ``FailingTests`` when a tier test
    fails and ``accept_failures`` is not set. Accepted, each test published as ``fail`` is marked
    ``accepted_failure``; a test failed by another check (a skip whose install failed) is written as
    published, and that check fails it again on every run, whatever the baseline says."""
    failing = failing_tests(record, findings)
    if failing and not accept_failures:
        raise FailingTests(failing)
    return Baseline.from_record(record, accept_failures=accept_failures)


def accepted_note(keys: list[str], path: Path | str) -> Finding:
    """What the run that wrote accepted failures into a baseline reports about them."""
    plural = len(keys) != 1
    return Finding("baseline", "info", f"Written to the baseline {path} as accepted failure{'s' if plural else ''} "
                                       f"(--accept-failures): {', '.join(keys)}; later runs that fail "
                                       f"{'them' if plural else 'it'} only warn, and say so.",
                   evidence={"baseline": str(path), "accepted_failures": list(keys)})


def load_baseline(path: Path | str) -> Baseline:
    """The baseline in ``path``; ``BaselineError`` naming the file, and the field at fault where one is
    (validated against ``core/schemas/baseline.schema.json``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"Baseline file {path} does not exist; create it with "
                            f"`{_REFRESH.format(path=path)}`.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"Baseline file {path} cannot be read: {exc}.") from None
    try:
        data = parse_json(text, "baseline", f"Baseline file {path}")
    except JsonFileError as exc:      # the schema names the field; say what to do about the two a person meets
        hint = ""
        if "'schema_version'" in str(exc):   # missing, or a version this harness does not read
            hint = (f"; this harness reads schema_version {' or '.join(map(str, READABLE_SCHEMA_VERSIONS))}: "
                    f"refresh it with `{_REFRESH.format(path=path)}`")
        elif ".accepted_failure'" in str(exc):
            hint = " (accepted_failure is true only on a test whose status is 'fail': --accept-failures writes it)"
        raise BaselineError(f"{exc}{hint}") from None
    return Baseline(
        schema_version=data["schema_version"],
        created_at=data["created_at"],
        notebook=data["notebook"],
        # colab-ci 0.1 also recorded the summary cell's repeat of every test; never compared
        tests={key: _test(entry) for key, entry in data.get("tests", {}).items()
               if not key.startswith(SUMMARY_TIER + "/")},
        installs={k: float(v) for k, v in data.get("installs", {}).items()},
        environment=dict(data.get("environment", {})),
    )


def _test(entry: dict[str, Any]) -> BaselineTest:
    test: BaselineTest = {"status": entry["status"], "metrics": dict(entry.get("metrics", {}))}
    if entry.get("accepted_failure"):
        test["accepted_failure"] = True
    return test
