"""Baseline: built from a run, saved, loaded back equal; unusable files fail with one clear sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.checks.baseline import BASELINE_SCHEMA_VERSION, Baseline, BaselineError, install_key, load_baseline
from tests.harness.recorded_runs import load_record


def test_from_record_collects_tests_and_installs() -> None:
    record = load_record("clean_run")
    baseline = Baseline.from_record(record, created_at="2026-03-01T18:42:00+00:00")
    assert baseline.schema_version == BASELINE_SCHEMA_VERSION
    assert baseline.notebook == "<repo>/notebook/template.ipynb"
    assert baseline.installs == {install_key(o.cell_index, o.cell_tag): o.duration_s for o in record.installs}
    assert {"3:install", "7:tier2-install", "9:tier3-install"} <= set(baseline.installs)
    benchmark = baseline.tests["tier3/benchmark"]
    assert benchmark["status"] == "pass" and benchmark["metrics"]["speed_ratio"] > 0
    # every tier's tests, once: the summary cell's copy of them is not part of the baseline
    assert {"tier1/shape_robustness", "tier2/attribution", "tier3/training_loop"} <= set(baseline.tests)
    assert not [key for key in baseline.tests if key.startswith("summary/")]
    assert install_key(3, "install") == "3:install"


@pytest.mark.parametrize("name", ["clean_run", "numpy_upgrade_center", "numpy_downgrade"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    baseline = Baseline.from_record(load_record(name))
    path = baseline.save(tmp_path / "baselines" / "local.json")
    assert load_baseline(path) == baseline
    assert [p.name for p in path.parent.iterdir()] == ["local.json"]  # no temp file left behind
    assert path.stat().st_mode & 0o777 == 0o644
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and json.loads(text)["schema_version"] == BASELINE_SCHEMA_VERSION == 2


def test_a_baseline_written_with_the_summary_copy_still_judges_a_run_cleanly(tmp_path: Path) -> None:
    """colab-ci 0.1 also stored the summary cell's repeat of every test ("summary/tier1/..."). Those
    entries are never compared; read literally, each would be "in the baseline but did not run"."""
    from harness.checks import CheckOptions, run_checks

    record = load_record("clean_run")
    data = Baseline.from_record(record).to_json()
    data["tests"].update({f"summary/{key}": entry for key, entry in data["tests"].items()})
    baseline = load_baseline(_write(tmp_path, data))
    assert not [key for key in baseline.tests if key.startswith("summary/")]
    findings = run_checks(record, baseline, CheckOptions())
    assert not [f for f in findings if f.check == "tiers" and f.severity != "info"], findings


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "b.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _valid() -> dict:
    return Baseline.from_record(load_record("clean_run"), created_at="2026-03-01T00:00:00+00:00").to_json()


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(BaselineError, match=r"Baseline file .*nope\.json does not exist; create it with `python -m "
                                            r"harness run notebook/template\.ipynb --update-baseline --baseline"):
        load_baseline(path)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '{\n  "schema_version": 1,\n  "tests": {,}\n}')
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    assert str(info.value).startswith(f"Baseline file {path}: not JSON (")
    assert "line 3" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("change, message", [
    ({"schema_version": 3}, "field 'schema_version': 3 is not one of [1, 2]; this harness reads schema_version 1 or 2"),
    ({"tests": {"tier1/x": {"status": "pass", "metrics": {}, "accepted_failure": True}}},
     "field 'tests.tier1/x.accepted_failure': False was expected (accepted_failure is true only on a test whose "
     "status is 'fail'"),
    ({"tests": {"tier1/x": {"status": "fail", "metrics": {}, "accepted_failure": "yes"}}},
     "field 'tests.tier1/x.accepted_failure': 'yes' is not of type 'boolean'"),
    ({"schema_version": None}, "field 'schema_version': None is not one of [1, 2]"),
    ({"created_at": 5}, "field 'created_at': 5 is not of type 'string'"),
    ({"tests": []}, "field 'tests': [] is not of type 'object'"),
    ({"tests": {"tier1/x": {"status": "ok", "metrics": {}}}},
     "field 'tests.tier1/x.status': 'ok' is not one of ['pass', 'warn', 'fail', 'skip']"),
    ({"tests": {"tier1/x": {"status": "pass", "metrics": {"latency_ms": "fast"}}}},
     "field 'tests.tier1/x.metrics.latency_ms': 'fast' is not of type 'number', 'null'"),
    ({"installs": {"3:install": -1}}, "field 'installs.3:install': -1 is less than the minimum of 0"),
    ({"environment": {"numpy": 2}}, "field 'environment.numpy': 2 is not of type 'string'"),
])
def test_invalid_fields_are_named(tmp_path: Path, change: dict, message: str) -> None:
    path = _write(tmp_path, {**_valid(), **change})
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    assert str(info.value).startswith(f"Baseline file {path}: ")
    assert message in str(info.value)


def test_missing_schema_version_and_non_object(tmp_path: Path) -> None:
    data = _valid()
    del data["schema_version"]
    with pytest.raises(BaselineError, match="'schema_version' is a required property; this harness reads schema_version"):
        load_baseline(_write(tmp_path, data))
    with pytest.raises(BaselineError, match=r"field '\(top level\)': \[\] is not of type 'object'"):
        load_baseline(_write(tmp_path, "[]"))


def test_environment_is_optional(tmp_path: Path) -> None:
    data = _valid()
    del data["environment"]
    assert load_baseline(_write(tmp_path, data)).environment == {}


# -- baselines record only what passed ------------------------------------------------------------------

def test_a_run_with_a_failing_tier_test_is_refused_and_accepted_only_explicitly(tmp_path: Path) -> None:
    from harness.checks import CheckOptions, run_checks
    from harness.checks.baseline import FailingTests, for_update

    record = load_record("numpy_upgrade_center")   # tier1/shape_robustness fails: '_center' after the swap
    findings = run_checks(record, None, CheckOptions())
    with pytest.raises(FailingTests) as refused:
        for_update(record, findings, accept_failures=False)
    assert refused.value.keys == ["tier1/shape_robustness"]
    assert "tier1/shape_robustness" in str(refused.value) and "--accept-failures" in str(refused.value)

    accepted = for_update(record, findings, accept_failures=True)
    assert accepted.tests["tier1/shape_robustness"]["accepted_failure"] is True
    path = accepted.save(tmp_path / "b.json")
    assert json.loads(path.read_text())["tests"]["tier1/shape_robustness"]["accepted_failure"] is True
    assert load_baseline(path) == accepted
    # a passing run needs nothing accepted, and marks nothing
    clean = load_record("clean_run")
    written = for_update(clean, run_checks(clean, None, CheckOptions()), accept_failures=False).to_json()
    assert not [key for key, test in written["tests"].items() if "accepted_failure" in test]


def test_a_test_skipped_because_its_install_failed_is_a_failing_test() -> None:
    from harness.checks import CheckOptions, run_checks
    from harness.checks.baseline import failing_tests

    record = load_record("failed_install")
    assert failing_tests(record) == []    # published as skip ...
    assert failing_tests(record, run_checks(record, None, CheckOptions())) == ["tier2/attribution"]   # ... failed


def test_a_test_that_now_warns_is_not_a_failing_test_even_as_a_regression() -> None:
    from harness.checks import CheckOptions, run_checks
    from harness.checks.baseline import failing_tests
    from tests.harness.recorded_runs import minimal_record, tier_payload, with_tiers

    warns = with_tiers(minimal_record(), tier_payload("tier1", [("shape_robustness", "warn")]))
    old = Baseline.from_record(with_tiers(minimal_record(), tier_payload("tier1", [("shape_robustness", "pass")])))
    findings = run_checks(warns, old, CheckOptions())
    assert any(f.severity == "fail" and "regressed from pass to warn" in f.message for f in findings)
    assert failing_tests(warns, findings) == []


def test_every_report_compared_with_an_accepted_failure_says_so(tmp_path: Path) -> None:
    from harness.checks import CheckOptions, exit_code, run_checks
    from harness.checks.baseline import for_update
    from harness.report import write_reports
    from tests.harness.recorded_runs import minimal_record, tier_payload, with_tiers

    failing = with_tiers(minimal_record(), tier_payload("tier1", [("shape_robustness", "fail"), ("ok", "pass")]))
    baseline = load_baseline(for_update(failing, [], accept_failures=True).save(tmp_path / "b.json"))
    findings = run_checks(failing, baseline, CheckOptions())
    [accepted] = [f for f in findings if f.check == "tiers" and f.severity != "info"]
    assert accepted.severity == "warn" and accepted.evidence["accepted_failure"] is True
    assert "tier1/shape_robustness still fails, an accepted failure in the baseline" in accepted.message
    assert exit_code(findings) == 0
    paths = write_reports(failing, findings, tmp_path / "out", env={})
    for kind in ("json", "markdown", "html"):
        assert "accepted failure" in paths[kind].read_text(encoding="utf-8"), kind


def test_a_schema_1_baseline_is_read_and_its_failures_are_not_accepted(tmp_path: Path) -> None:
    from harness.checks import CheckOptions, run_checks
    from tests.harness.recorded_runs import minimal_record, tier_payload, with_tiers

    data = {**_valid(), "schema_version": 1,
            "tests": {"tier1/shape_robustness": {"status": "fail", "metrics": {}}}}
    baseline = load_baseline(_write(tmp_path, data))
    assert baseline.schema_version == 1 and "accepted_failure" not in baseline.tests["tier1/shape_robustness"]
    failing = with_tiers(minimal_record(), tier_payload("tier1", [("shape_robustness", "fail")]))
    [f] = [f for f in run_checks(failing, baseline, CheckOptions()) if f.check == "tiers" and f.severity == "fail"]
    assert "not as an accepted failure" in f.message
