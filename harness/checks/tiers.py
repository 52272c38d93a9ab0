"""Tiers: the notebook's own tests (the tier payloads) against the baseline.

Statuses are compared strictly: a test that passed in the baseline and now warns or fails, a new
test that fails, and a baseline test that no longer runs are failures. Without a baseline the
notebook's own verdict stands: a test it reports as ``fail`` fails the run.

Metrics are compared per metric in the direction that is "better" for it, and only warn. Absolute
timings (latencies, tokens per second, seconds) are never compared: a baseline recorded on another
machine (or the same machine under another load) says nothing about this run, and warnings that
are always there teach people to ignore them. Timing is judged by ratios measured side by side in
one run instead (Tier 3's ``speed_ratio``: the model against a reference model timed beside it),
and absolute timings stay in the reports as information. The summary cell's payload repeats every
tier's tests and is not compared a second time (``RunRecord.tier_outputs``).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Literal

from packaging.utils import canonicalize_name

from harness.checks.baseline import Baseline, BaselineTest
from harness.checks.installs import FailedInstall, failed_names
from harness.checks.options import CheckOptions
from harness.core.labels import cell_label
from harness.core.records import Finding, RunRecord
from harness.observations.tier_payload import TierTest, parse_payload

NAME = "tiers"

Direction = Literal["lower", "higher"]
Severity = Literal["fail", "warn", "info"]

# Metric name patterns (fnmatch, matched on the lower-cased name) -> which way is better (None: not
# compared) and the smallest change in that direction that counts, in the metric's own unit. First
# match wins: same-run ratios first, then absolute timings (None), then the rest. The floor keeps
# values that sit near zero by design (a loss trained to 0.01) from turning noise into a 50 % change.
# A metric that matches nothing is not compared: guessing its direction would invent regressions.
METRIC_DIRECTIONS: tuple[tuple[str, Direction | None, float], ...] = (
    ("*speed_ratio*", "higher", 0.1), ("*speedup*", "higher", 0.1),
    # absolute timings: information only
    ("*tokens_per_s*", None, 0), ("*per_s", None, 0), ("*per_sec", None, 0), ("*per_second", None, 0),
    ("*throughput*", None, 0), ("*latency*", None, 0), ("*_ms", None, 0), ("*_ms_*", None, 0),
    ("*_s", None, 0), ("*_sec", None, 0), ("*_seconds", None, 0), ("process_*", None, 0),
    ("*accuracy*", "higher", 0.02), ("*loss_drop*", "higher", 0.05),
    ("loss", "lower", 0.1), ("*_loss", "lower", 0.1), ("*perplexity*", "lower", 0.5), ("ppl", "lower", 0.5),
    ("*memory*", "lower", 1.0), ("*_mb", "lower", 1.0), ("*_mb_*", "lower", 1.0), ("*_gb", "lower", 0.01),
    ("*_bytes", "lower", 1e6),
)


def _rule(name: str) -> tuple[Direction | None, float]:
    lowered = name.lower()
    return next(((d, floor) for pattern, d, floor in METRIC_DIRECTIONS if fnmatchcase(lowered, pattern)), (None, 0))


def metric_direction(name: str) -> Direction | None:
    """Which way is better for metric ``name``; None when it is not compared (an absolute timing, or
    a name not in the table)."""
    return _rule(name)[0]


def check(record: RunRecord, baseline: Baseline | None, options: CheckOptions) -> list[Finding]:
    findings: list[Finding] = []
    current: dict[str, tuple[TierTest, int, str]] = {}  # key -> (test, cell index, cell tag)
    for output in record.tier_outputs():
        parsed = parse_payload(output.payload, output.cell_tag)
        if parsed.problem:
            findings.append(Finding(
                NAME, "fail",
                f"The tier payload of {cell_label(output.cell_index, output.cell_tag)} cannot be read: "
                f"{parsed.problem}; the notebook and this harness disagree on the result contract.",
                cell_index=output.cell_index, cell_tag=output.cell_tag,
                evidence={"problem": parsed.problem, "schema_version": _schema_version(output.payload)},
            ))
        for test in parsed.tests:  # a tier published twice (cell re-run) counts once, last wins
            current[test.key] = (test, output.cell_index, output.cell_tag)

    if not record.tier_outputs():
        findings.append(Finding(NAME, "info", "No tier results were published, so no tier test was checked."))
    # A skip because a package is missing whose install failed in this run is a failure caused by that
    # install; a skip the notebook chose (a disabled tier, no GPU) names no failed install and stays a skip.
    failed = failed_names(record)
    judged: set[str] = set()   # judged here; not compared with the baseline again
    for key, (test, index, tag) in current.items():
        cause = failed.get(canonicalize_name(test.missing_package)) if test.missing_package else None
        if test.status == "skip" and cause is not None:
            findings.append(_skipped_for_install(test, index, tag, cause))
            judged.add(key)
    if baseline is None:
        findings += [f for test, index, tag in current.values() for f in _own_verdict(test, index, tag)]
        if record.tier_outputs():
            findings.append(Finding(NAME, "info", "No baseline was given: tier statuses were judged on their "
                                                  "own and metrics were not compared."))
        return findings

    for test, index, tag in current.values():
        if test.key in judged:
            continue
        reference = baseline.tests.get(test.key)
        if reference is None:
            findings += _new_test(test, index, tag)
        else:
            findings += _status_change(test, reference, index, tag)
            findings += _metric_changes(test, reference, index, tag, options.metric_tolerance)
    findings += _missing(baseline, current)
    return findings


def _schema_version(payload: object) -> object:
    return payload.get("schema_version") if isinstance(payload, dict) else None


def _evidence(test: TierTest, **extra: object) -> dict[str, object]:
    return {"tier": test.tier, "test": test.name, "status": test.status, "message": test.message, **extra}


def _own_verdict(test: TierTest, index: int, tag: str) -> list[Finding]:
    if test.status not in ("fail", "warn"):
        return []
    severity: Severity = "fail" if test.status == "fail" else "warn"
    return [Finding(NAME, severity, f"{test.key} reported {test.status}: {test.message or '(no message)'}",
                    cell_index=index, cell_tag=tag, evidence=_evidence(test))]


def _skipped_for_install(test: TierTest, index: int, tag: str, cause: FailedInstall) -> Finding:
    where = cell_label(cause.cell_index, cause.cell_tag)
    return Finding(NAME, "fail", f"{test.key} was skipped because {test.missing_package} could not be installed: "
                                 f"the install of {' '.join(cause.requirements) or test.missing_package} in {where} "
                                 f"failed ({cause.reason}: {cause.detail}).",
                   cell_index=index, cell_tag=tag,
                   evidence=_evidence(test, missing_package=test.missing_package, install_cell=cause.cell_index,
                                      install=cause.evidence()))


def _new_test(test: TierTest, index: int, tag: str) -> list[Finding]:
    if test.status == "fail":
        return [Finding(NAME, "fail", f"{test.key} is new since the baseline and fails: "
                                      f"{test.message or '(no message)'}",
                        cell_index=index, cell_tag=tag, evidence=_evidence(test, baseline_status=None))]
    if test.status == "warn":
        return _own_verdict(test, index, tag)
    return []


def _status_change(test: TierTest, reference: BaselineTest, index: int, tag: str) -> list[Finding]:
    was, now = reference["status"], test.status
    evidence = _evidence(test, baseline_status=was)
    if was == "pass" and now in ("warn", "fail"):
        return [Finding(NAME, "fail", f"{test.key} regressed from pass to {now}: {test.message or '(no message)'}",
                        cell_index=index, cell_tag=tag, evidence=evidence)]
    if now == "fail" and was != "fail":
        return [Finding(NAME, "fail", f"{test.key} regressed from {was} to fail: {test.message or '(no message)'}",
                        cell_index=index, cell_tag=tag, evidence=evidence)]
    if now == "fail" and reference.get("accepted_failure"):
        # Accepted explicitly (--update-baseline --accept-failures): known, not a regression; every
        # report says so, so the acceptance is not forgotten.
        return [Finding(NAME, "warn", f"{test.key} still fails, an accepted failure in the baseline "
                                      f"(--accept-failures): {test.message or '(no message)'}",
                        cell_index=index, cell_tag=tag, evidence={**evidence, "accepted_failure": True})]
    if now == "fail":
        # Failing in the baseline without being accepted (a schema 1 baseline, written from any run):
        # nobody said this failure is known, so it still fails the run.
        return [Finding(NAME, "fail", f"{test.key} still fails; the baseline records it failing but not as an "
                                      f"accepted failure (refresh it with --update-baseline --accept-failures to "
                                      f"accept it): {test.message or '(no message)'}",
                        cell_index=index, cell_tag=tag, evidence={**evidence, "accepted_failure": False})]
    if was == "fail" and reference.get("accepted_failure"):
        return [Finding(NAME, "info", f"{test.key} is {now} now, an accepted failure in the baseline; refresh the "
                                      f"baseline so it records the test passing.",
                        cell_index=index, cell_tag=tag, evidence={**evidence, "accepted_failure": True})]
    if now == "skip" and was in ("pass", "warn"):
        return [Finding(NAME, "warn", f"{test.key} was {was} in the baseline and is now skipped: "
                                      f"{test.message or '(no message)'}",
                        cell_index=index, cell_tag=tag, evidence=evidence)]
    return []


def _metric_changes(test: TierTest, reference: BaselineTest, index: int, tag: str,
                    tolerance: float) -> list[Finding]:
    findings = []
    for metric, was in reference["metrics"].items():
        direction, floor = _rule(metric)
        if direction is None or was is None or metric not in test.metrics:
            continue
        now = test.metrics[metric]
        if now is None:
            findings.append(Finding(NAME, "warn", f"{test.key} metric {metric} was {was:g} in the baseline and "
                                                  f"is now not a finite number.",
                                    cell_index=index, cell_tag=tag,
                                    evidence=_evidence(test, metric=metric, baseline=was, value=None)))
            continue
        if was == 0:  # no relative change from zero; a zero baseline says nothing about "worse"
            continue
        worse = now - was if direction == "lower" else was - now
        worse_by = worse / abs(was)
        if worse_by > tolerance and worse > floor:
            better = "lower" if direction == "lower" else "higher"
            findings.append(Finding(
                NAME, "warn",
                f"{test.key} metric {metric} is {now:g} against {was:g} in the baseline, {worse_by:.0%} worse "
                f"({better} is better; tolerance {tolerance:.0%}); timings vary on shared machines, so re-run "
                f"before acting on it.",
                cell_index=index, cell_tag=tag,
                evidence=_evidence(test, metric=metric, baseline=was, value=now, direction=direction,
                                   worse_by=worse_by, tolerance=tolerance),
            ))
    return findings


def _missing(baseline: Baseline, current: dict[str, tuple[TierTest, int, str]]) -> list[Finding]:
    """Baseline tests that did not run, one finding per tier (a tier that never ran loses all its
    tests at once, and one line saying so reads better than one per test)."""
    by_tier: dict[str, list[str]] = {}
    for key in baseline.tests:
        if key not in current:
            tier, _, name = key.partition("/")
            by_tier.setdefault(tier, []).append(name)
    return [Finding(
        NAME, "fail",
        f"{tier}: {len(names)} test{'s' if len(names) > 1 else ''} in the baseline did not run: "
        f"{', '.join(names)}; a tier cell stopped early, was skipped, or the tests were removed "
        f"(refresh the baseline if that was intended).",
        evidence={"tier": tier, "missing": [f"{tier}/{n}" for n in names]},
    ) for tier, names in by_tier.items()]
