"""Checks on recorded runs: every check's pass and fail paths, no kernels involved."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from harness.checks import (
    CHECKS,
    CheckOptions,
    cells,
    corruption,
    exit_code,
    install_time,
    run_checks,
    signatures,
    tiers,
)
from harness.checks.baseline import Baseline
from harness.observations import pip_lines
from harness.core.records import CellError, Finding, ProbeStats, RunRecord
from tests.conftest import SCHEMA
from tests.harness.recorded_runs import (
    code_cell,
    install,
    load_record,
    minimal_record,
    replaced,
    tier_payload,
    with_tiers,
)

OPTIONS = CheckOptions()


def fails(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "fail"]


def of(findings: list[Finding], severity: str) -> list[Finding]:
    return [f for f in findings if f.severity == severity]


# --- signatures ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("ImportError: cannot import name '_center' from 'numpy._core.umath' "
     "(/usr/local/lib/python3.12/dist-packages/numpy/_core/umath.py)", "numpy-umath-center"),
    ("ImportError: cannot import name '_slice' from 'numpy._core.umath' (/x/umath.py)", "numpy-umath-slice"),
    ("AttributeError: 'numpy.ufunc' object has no attribute '__qualname__'", "numpy-ufunc-qualname"),
    ("ValueError: numpy.dtype size changed, may indicate binary incompatibility. Expected 96 from C header, "
     "got 88 from PyObject", "numpy-dtype-size-changed"),
    ("A module that was compiled using NumPy 1.x cannot be run in\nNumPy 2.1.3 as it may crash.",
     "numpy1-module-under-numpy2"),  # numpy wraps the message over lines: whitespace is normalised
    ("A module that was compiled using NumPy 1.x cannot be run in NumPy 2.1.3 as it may crash.",
     "numpy1-module-under-numpy2"),
    ("AttributeError: _ARRAY_API not found", "numpy-array-api-not-found"),
    ("ImportError: numpy.core.multiarray failed to import", "numpy-multiarray-failed"),
    ("ModuleNotFoundError: No module named 'numpy.char'", "numpy-char-missing"),
    ("ImportError: cannot import name '_vec_string' from 'numpy._core.multiarray'", "numpy-core-import"),
    ("ValueError: shapes (2,3) and (4,5) not aligned", None),
    ("ModuleNotFoundError: No module named 'captum'", None),
])
def test_signature_match(text: str, expected: str | None) -> None:
    found = signatures.match(text)
    assert (found.id if found else None) == expected


def test_signature_catalogue_is_well_formed() -> None:
    ids = [s.id for s in signatures.SIGNATURES]
    assert len(ids) == len(set(ids))
    assert all(s.meaning and s.trigger and s.pattern for s in signatures.SIGNATURES)
    assert signatures.by_id("numpy-umath-center").pattern == "cannot import name '_center' from 'numpy._core.umath'"


# --- corruption -----------------------------------------------------------------------------------

def test_downgrade_under_kernel_fails_with_pip_evidence() -> None:
    findings = corruption.check(load_record("numpy_downgrade"), None, OPTIONS)
    [f] = [f for f in fails(findings) if f.evidence.get("package")]
    assert (f.cell_index, f.cell_tag) == (1, "install")
    ev = f.evidence
    assert (ev["package"], ev["version_in_memory"], ev["version_on_disk"], ev["change"]) == \
        ("numpy", "2.0.2", "1.26.4", "downgraded")
    assert ev["evidence"] == "files" and ev["identity_now"] != ev["identity_loaded"]
    assert ev["module"] == "numpy._core._multiarray_umath" and ev["loaded_in_cell"] is None
    assert ev["pulled_by"] == [{"requirement": "numpy==1.26.4", "from": "scipy==1.11.1"}]
    assert ev["pip_uninstalled"] == "2.0.2" and ev["pip_installed"] == "1.26.4"
    assert ev["installed_with"] == {"scipy": "1.11.1"}
    assert [(c["dependent"], c["specifier"], c["installed"]) for c in ev["conflicts"]] == [
        ("needs-numpy2", ">=2", "1.26.4")]
    assert "cell 1 [install] downgraded numpy 2.0.2 -> 1.26.4 on disk while the kernel had numpy 2.0.2 loaded " \
           "at start-up" in f.message
    assert "scipy==1.11.1 (numpy==1.26.4)" in f.message and "numpy==2.0.2" in f.message


def test_upgrade_under_kernel_cites_only_what_pip_printed() -> None:
    findings = corruption.check(load_record("numpy_upgrade_center"), None, OPTIONS)
    f = next(f for f in findings if f.evidence.get("package") == "numpy")
    assert f.severity == "fail" and f.evidence["change"] == "upgraded"
    assert f.evidence["version_on_disk"] == "2.1.3"
    assert f.evidence["pulled_by"] == [{"requirement": "numpy==2.1.3", "from": None}]
    assert "conflicts" not in f.evidence  # not in the pip lines
    assert f.evidence["installed_with"] == {"tabulate": "0.9.0"}
    assert "(requested directly by the install command)" in f.message


def test_untagged_subprocess_swap_with_no_later_error_fails_naming_the_cell() -> None:
    record = load_record("untagged_subprocess")
    assert all(c.status == "ok" for c in record.cells)   # nothing visible failed
    [f] = fails(corruption.check(record, None, OPTIONS))
    assert (f.cell_index, f.cell_tag, f.evidence["package"]) == (1, "", "numpy")
    assert f.message.startswith("cell 1 upgraded numpy 2.0.2 -> 2.1.3 on disk while the kernel had numpy 2.0.2")
    assert f.evidence["recognised_as_install"] is True


def test_a_change_no_install_rule_recognised_says_so() -> None:
    record = minimal_record(installs=[install(index=4, tag="", changed={"numpy": ("2.1.3", "1.26.4")},
                                              loaded={"numpy": "2.1.3"}, recognised=())],
                            replaced=[replaced(index=4, tag="")])
    [f] = fails(corruption.check(record, None, OPTIONS))
    assert f.message.startswith("cell 4 (an untagged cell that no install rule recognised) downgraded numpy")


def test_removed_package_counts_as_replaced() -> None:
    record = minimal_record(replaced=[replaced(on_disk=None)], installs=[install(
        changed={"numpy": ("2.1.3", None)}, loaded={"numpy": "2.1.3"},
        pip_lines=["Found existing installation: numpy 2.1.3", "Successfully uninstalled numpy-2.1.3"])])
    [f] = fails(corruption.check(record, None, OPTIONS))
    assert f.evidence["change"] == "removed" and f.evidence["version_on_disk"] is None
    assert "removed numpy 2.1.3" in f.message


def test_same_version_reinstall_over_loaded_files_warns() -> None:
    record = minimal_record(replaced=[replaced(loaded="2.1.3", on_disk="2.1.3", loaded_in_cell=1)],
                            installs=[install(changed={})])
    findings = corruption.check(record, None, OPTIONS)
    assert not fails(findings)
    [w] = of(findings, "warn")
    assert "reinstalled numpy 2.1.3 over the files the kernel had loaded in cell 1" in w.message


def test_replaced_files_no_distribution_claims_warn() -> None:
    [w] = of(corruption.check(minimal_record(replaced=[replaced(name=None, loaded=None, on_disk=None)]),
                              None, OPTIONS), "warn")
    assert "which no installed distribution claims" in w.message


def test_versions_only_evidence_when_the_kernel_died_in_the_install() -> None:
    record = minimal_record(outcome="kernel-died", replaced=[replaced(evidence="versions")],
                            installs=[install(changed={"numpy": ("2.1.3", "1.26.4")}, loaded={"numpy": "2.1.3"})])
    [f] = [f for f in fails(corruption.check(record, None, OPTIONS)) if f.evidence.get("package")]
    assert "judged from versions on disk" in f.message


def test_changed_but_never_loaded_warns_naming_it() -> None:
    obs = install(changed={"numpy": ("2.1.3", "1.26.4"), "captum": (None, "0.8.0")}, loaded={})
    findings = corruption.check(minimal_record(installs=[obs]), None, OPTIONS)
    assert not fails(findings)
    [w] = of(findings, "warn")
    assert "numpy 2.1.3 -> 1.26.4" in w.message and "captum" not in w.message
    assert w.evidence["packages"] == {"numpy": {"before": "2.1.3", "after": "1.26.4"}}


def test_new_packages_and_untouched_imports_are_fine() -> None:
    findings = corruption.check(load_record("clean_run"), None, OPTIONS)
    assert not fails(findings) and not of(findings, "warn") and not of(findings, "error")


def test_a_probe_that_failed_or_never_ran_means_could_not_tell() -> None:
    record = minimal_record(cells=[code_cell(1), code_cell(2)], probes=ProbeStats(
        cells_probed=1, missing=[2], errors=["cell 1: the probe failed: OSError: boom"]))
    errors = of(corruption.check(record, None, OPTIONS), "error")
    assert [e.message.split(";")[0] for e in errors] == ["cell 1: the probe failed: OSError: boom",
                                                         "Cell 2 ran without a probe after them (was the probe's "
                                                         "post_run_cell hook removed?)"]
    # the cell the kernel died in has no probe: expected, and judged from the disk instead
    died = minimal_record(outcome="kernel-died", cells=[code_cell(1), code_cell(2, status="error")],
                          probes=ProbeStats(cells_probed=1, missing=[2]))
    assert not of(corruption.check(died, None, OPTIONS), "error")


def test_a_run_stopped_in_its_last_cell_says_it_could_not_check_after_it() -> None:
    died = minimal_record(outcome="kernel-died", cells=[code_cell(1), code_cell(2, "install", status="error"),
                                                        code_cell(3, status="not-run")],
                          probes=ProbeStats(cells_probed=1, missing=[2]))
    findings = corruption.check(died, None, OPTIONS)
    [w] = of(findings, "warn")
    assert w.message.startswith("Could not check after cell 2 [install]: the run stopped in it (kernel-died) "
                                "before its probe ran")
    assert (w.cell_index, w.cell_tag) == (2, "install")
    assert not [f for f in findings if f.message.startswith("No cell replaced")]
    assert [f.message.split(" (")[0] for f in of(findings, "info")][0] == \
        "No cell before cell 2 replaced a file of a loaded module"
    # what versions on disk show is still reported beside it
    died.replaced = [replaced(index=2, evidence="versions")]
    assert of(corruption.check(died, None, OPTIONS), "warn") == [w] and fails(corruption.check(died, None, OPTIONS))


def test_later_error_is_classified_by_signature_and_linked_to_the_install() -> None:
    findings = corruption.check(load_record("numpy_downgrade"), None, OPTIONS)
    [f] = [f for f in findings if "signature" in f.evidence]
    assert f.severity == "fail" and (f.cell_index, f.cell_tag) == (2, "model")
    assert f.evidence["signature"] == "numpy-dtype-size-changed"
    assert f.evidence["replaced_earlier"][0]["cell"] == "cell 1 [install]"
    assert f.message.startswith("cell 2 [model] failed with known corruption signature numpy-dtype-size-changed "
                                "after cell 1 [install] replaced numpy 2.0.2 -> 1.26.4")


def test_center_signature_in_a_cell_and_in_a_tier_test_message() -> None:
    findings = corruption.check(load_record("numpy_upgrade_center"), None, OPTIONS)
    classified = [f for f in findings if "signature" in f.evidence]
    assert [(f.cell_index, f.evidence["signature"], f.evidence["source"]) for f in classified] == [
        (2, "numpy-umath-center", "cell error"), (3, "numpy-umath-center", "tier test tier1/shape_robustness")]
    assert classified[1].message.startswith("cell 3 [tier1] test tier1/shape_robustness failed with known "
                                            "corruption signature numpy-umath-center after cell 1 [install]")


def test_unrelated_error_is_not_classified() -> None:
    error = CellError("ValueError", "bad config: n_heads must divide d_model", ["ValueError: bad config"])
    record = minimal_record(cells=[code_cell(4, "model", "error", error)])
    assert not [f for f in corruption.check(record, None, OPTIONS) if "signature" in f.evidence]


def test_corruption_says_when_it_had_nothing_to_look_at() -> None:
    findings = corruption.check(minimal_record(cells=[code_cell(1)]), None, OPTIONS)
    assert [f.severity for f in findings] == ["info", "info"]
    assert "No cell replaced a file of a loaded module" in findings[0].message
    assert "no error to classify" in findings[1].message


def test_pip_lines_parse_names_versions_and_both_conflict_forms() -> None:
    summary = pip_lines.parse([
        "\x1b[1;31mERROR: pip's dependency resolver does not currently take into account all the packages\x1b[0m",
        "thinc 8.3.6 requires blis<1.4.0,>=1.3.0, which is not installed.",
        "Torch_Geometric 2.6.1 requires numpy>=2, but you have numpy 1.26.4 which is incompatible.",
        "Collecting https://example.org/pkg.whl",
        "Collecting typing_extensions>=4.10 (from torch==2.8.0)",
        "  Attempting uninstall: Typing_Extensions",
        "Successfully installed nvidia-cublas-cu12-12.4.5.8 typing_extensions-4.12.2",
    ])
    assert summary.installed == {"nvidia-cublas-cu12": "12.4.5.8", "typing-extensions": "4.12.2"}
    assert summary.uninstalled == {"typing-extensions": None}  # no "Found existing installation" line
    assert summary.collected == {"typing-extensions": [pip_lines.Pull("typing_extensions>=4.10", "torch==2.8.0")]}
    missing, conflict = summary.conflicts
    assert (missing.dependent, missing.name, missing.specifier, missing.installed) == \
        ("thinc", "blis", "<1.4.0,>=1.3.0", None)
    assert (conflict.dependent, conflict.name, conflict.installed) == ("torch-geometric", "numpy", "1.26.4")
    assert summary.conflicts_on("NumPy") == [conflict]


# --- install time ------------------------------------------------------------------------------------

def _baseline(installs: dict[str, float] | None = None, tests: dict | None = None) -> Baseline:
    return Baseline(schema_version=1, created_at="2026-03-01T00:00:00+00:00", notebook="notebook/template.ipynb",
                    tests=tests or {}, installs=installs or {})


def test_install_within_budget_and_baseline_passes() -> None:
    record = load_record("clean_run")
    findings = install_time.check(record, Baseline.from_record(record), OPTIONS)
    assert findings == []


def test_install_over_budget_fails() -> None:
    record = minimal_record(installs=[install(duration_s=412.0)])
    [f] = fails(install_time.check(record, None, OPTIONS))
    assert (f.cell_index, f.cell_tag) == (3, "install")
    assert "412.0 s" in f.message and "300 s budget" in f.message
    assert not fails(install_time.check(record, None, CheckOptions(install_budget_s=600)))


@pytest.mark.parametrize("baseline_s, now_s, regressed", [
    (10.0, 20.0, True),    # 2x and +10 s
    (10.0, 14.0, False),   # 1.4x: under the factor
    (2.0, 6.0, False),     # 3x but only +4 s: under the margin
    (40.0, 61.0, True),    # 1.525x and +21 s
    (40.0, 30.0, False),   # faster
])
def test_install_regression_needs_factor_and_margin(baseline_s: float, now_s: float, regressed: bool) -> None:
    record = minimal_record(installs=[install(duration_s=now_s)])
    findings = install_time.check(record, _baseline({"3:install": baseline_s}), OPTIONS)
    assert bool(fails(findings)) is regressed
    if regressed:
        assert fails(findings)[0].evidence["baseline_s"] == baseline_s


def test_install_keyed_by_index_and_tag() -> None:
    record = minimal_record(installs=[install(index=3, tag="install", duration_s=50.0)])
    findings = install_time.check(record, _baseline({"4:install": 5.0}), OPTIONS)
    assert not fails(findings)
    assert "no duration for cell 3 [install]" in of(findings, "info")[0].message


def test_install_time_infos() -> None:
    assert "No install cells" in install_time.check(minimal_record(), None, OPTIONS)[0].message
    findings = install_time.check(minimal_record(installs=[install()]), None, OPTIONS)
    assert [f.severity for f in findings] == ["info"] and "No baseline" in findings[0].message


# --- tiers ----------------------------------------------------------------------------------------

def test_tier_payload_fixtures_follow_the_schema(tier_schema: dict) -> None:
    # Full-schema validation lives here, not in the harness (which must not import the notebook).
    schema = tier_schema
    payloads = [t.payload for name in ("clean_run", "numpy_upgrade_center") for t in load_record(name).tiers]
    payloads.append(tier_payload("tier1", [("a", "pass")]))
    for payload in payloads:
        jsonschema.validate(payload, schema)


def test_payloads_the_notebook_publishes_are_read_as_published(tier_schema: dict) -> None:
    # The contract from the other side: a payload built by the notebook's own tiers.results
    # (imported by the test only; the harness never imports the notebook package).
    from tiers.results import TestResult, TierResult

    payload = TierResult("tier1", [TestResult("shape_robustness", "fail", "logits shape (2, 8) is not 3-D",
                                              {"shapes_checked": 4, "latency_ms": float("nan")}, 0.25),
                                   TestResult("gradient_flow", "pass")],
                         {"python": "3.12.11", "torch": "2.8.0", "numpy": "2.1.3", "device": "cpu"}).to_json()
    jsonschema.validate(payload, tier_schema)
    record = with_tiers(minimal_record(), payload)
    baseline = Baseline.from_record(record)
    assert baseline.tests["tier1/shape_robustness"] == {"status": "fail",
                                                        "metrics": {"shapes_checked": 4, "latency_ms": None}}
    [f] = fails(tiers.check(record, None, OPTIONS))
    assert f.message == "tier1/shape_robustness reported fail: logits shape (2, 8) is not 3-D"


def test_without_baseline_the_notebooks_own_fail_fails() -> None:
    record = with_tiers(minimal_record(), tier_payload("tier1", [("shape_robustness", "fail"), ("ok", "pass"),
                                                                 ("slowish", "warn")]))
    findings = tiers.check(record, None, OPTIONS)
    [f] = fails(findings)
    assert "tier1/shape_robustness reported fail" in f.message
    assert [w.evidence["test"] for w in of(findings, "warn")] == ["slowish"]
    assert any("No baseline" in i.message for i in of(findings, "info"))


def test_same_statuses_as_baseline_pass() -> None:
    record = load_record("clean_run")
    assert tiers.check(record, Baseline.from_record(record), OPTIONS) == []


@pytest.mark.parametrize("was, now, severity", [
    ("pass", "fail", "fail"), ("pass", "warn", "fail"), ("warn", "fail", "fail"), ("skip", "fail", "fail"),
    ("fail", "fail", "fail"), ("pass", "skip", "warn"),   # fail -> fail: failing in the baseline, never accepted
    ("fail", "pass", None), ("warn", "warn", None), ("warn", "pass", None), ("skip", "skip", None),
])
def test_status_changes_against_baseline(was: str, now: str, severity: str | None) -> None:
    record = with_tiers(minimal_record(), tier_payload("tier1", [("shape_robustness", now)]))
    baseline = _baseline(tests={"tier1/shape_robustness": {"status": was, "metrics": {}}})
    findings = [f for f in tiers.check(record, baseline, OPTIONS) if f.severity != "info"]
    assert [f.severity for f in findings] == ([severity] if severity else [])
    if severity == "fail" and was != now:
        assert f"regressed from {was} to {now}" in findings[0].message
    if (was, now) == ("fail", "fail"):
        assert "not as an accepted failure" in findings[0].message


def test_new_failing_test_fails_and_new_passing_test_is_fine() -> None:
    record = with_tiers(minimal_record(), tier_payload("tier2", [("attribution", "fail"), ("speed", "pass")]))
    findings = tiers.check(record, _baseline(tests={}), OPTIONS)
    [f] = fails(findings)
    assert "tier2/attribution is new since the baseline and fails" in f.message


def test_missing_baseline_tests_fail_once_per_tier() -> None:
    record = with_tiers(minimal_record(), tier_payload("tier1", [("shape_robustness", "pass")]))
    baseline = _baseline(tests={
        "tier1/shape_robustness": {"status": "pass", "metrics": {}},
        "tier1/gradient_flow": {"status": "pass", "metrics": {}},
        "tier2/inference_speed": {"status": "pass", "metrics": {}},
        "tier2/attribution": {"status": "warn", "metrics": {}},
    })
    missing = fails(tiers.check(record, baseline, OPTIONS))
    assert [(f.evidence["tier"], f.evidence["missing"]) for f in missing] == [
        ("tier1", ["tier1/gradient_flow"]), ("tier2", ["tier2/inference_speed", "tier2/attribution"])]
    assert "tier2: 2 tests in the baseline did not run: inference_speed, attribution" in missing[1].message


@pytest.mark.parametrize("name, direction", [
    ("loss", "lower"), ("perplexity", "lower"), ("peak_memory_mb", "lower"), ("gpu_memory", "lower"),
    ("convergence_delta", None), ("shapes_checked", None), ("max_abs_diff", None),
    # absolute timings are information, never compared across runs
    ("latency_ms", None), ("p95_latency", None), ("step_s", None), ("tokens_per_s", None),
    ("throughput", None), ("samples_per_second", None), ("process_psutil_rss_mb", None),
    # names the tiers publish (notebook/tiers/tier1.py, tier3.py)
    ("latency_ms_batch4", None), ("tokens_per_s_batch4", None), ("tokens_per_s_forward", None),
    ("peak_mb_small", "lower"), ("final_loss", "lower"),
    ("loss_drop", "higher"), ("speed_ratio", "higher"), ("perplexity", "lower"), ("peak_growth", None),
    ("normality_p", None), ("steps", None),
])
def test_metric_direction_table(name: str, direction: str | None) -> None:
    assert tiers.metric_direction(name) == direction


def _speed_run(**metrics: float | None) -> RunRecord:
    return with_tiers(minimal_record(), tier_payload("tier3", [{
        "name": "benchmark", "status": "pass", "message": "", "metrics": metrics, "duration_s": 1.0}]))


SPEED_BASELINE = {"tier3/benchmark": {"status": "pass", "metrics": {
    "speed_ratio": 1.0, "tokens_per_s_forward": 240000.0, "latency_ms": 12.5, "peak_memory_mb": 310.0,
    "convergence_delta": 0.01}}}


@pytest.mark.parametrize("metrics, warned", [
    ({"speed_ratio": 0.33}, ["speed_ratio"]),                                 # 3x slower than the reference
    ({"speed_ratio": 0.8}, []),                                               # within 50 %
    ({"speed_ratio": 1.4}, []),                                               # faster
    ({"tokens_per_s_forward": 55597.0, "latency_ms": 60.0}, []),              # another machine: information
    ({"peak_memory_mb": 620.0}, ["peak_memory_mb"]),
    ({"convergence_delta": 0.9}, []),                                         # unknown direction
    ({"speed_ratio": None}, ["speed_ratio"]),                                 # became NaN/Inf
])
def test_metric_regressions_warn_in_the_metrics_direction(metrics: dict, warned: list[str]) -> None:
    findings = tiers.check(_speed_run(**metrics), _baseline(tests=SPEED_BASELINE), OPTIONS)
    assert not fails(findings)
    assert [f.evidence["metric"] for f in of(findings, "warn")] == warned


def test_metric_tolerance_is_an_option() -> None:
    findings = tiers.check(_speed_run(speed_ratio=0.8), _baseline(tests=SPEED_BASELINE),
                           CheckOptions(metric_tolerance=0.1))
    [w] = of(findings, "warn")
    assert "speed_ratio is 0.8 against 1 in the baseline" in w.message and "20% worse" in w.message


def test_the_summary_payload_is_neither_compared_nor_reported_twice() -> None:
    tier1 = tier_payload("tier1", [("shape_robustness", "fail")])
    summary = tier_payload("summary", [("tier1/shape_robustness", "fail")])
    record = with_tiers(minimal_record(), tier1, summary)
    assert [f.evidence["test"] for f in fails(tiers.check(record, None, OPTIONS))] == ["shape_robustness"]
    assert list(Baseline.from_record(record).tests) == ["tier1/shape_robustness"]


def test_unsupported_schema_version_fails() -> None:
    record = with_tiers(minimal_record(), tier_payload("tier1", [("a", "pass")], schema_version=2))
    [f] = fails(tiers.check(record, None, OPTIONS))
    assert "unsupported schema_version 2" in f.message and f.evidence["schema_version"] == 2


def test_malformed_payload_fails_with_the_field() -> None:
    record = with_tiers(minimal_record(), tier_payload("tier1", [{"status": "pass"}]))
    [f] = fails(tiers.check(record, None, OPTIONS))
    assert "field 'tests/0': 'name' is a required property" in f.message
    wrong = tier_payload("tier1", [("a", "pass")])
    wrong["tests"][0]["status"] = "maybe"
    [f] = fails(tiers.check(with_tiers(minimal_record(), wrong), None, OPTIONS))
    assert "field 'tests/0/status': 'maybe' is not one of ['pass', 'warn', 'fail', 'skip']" in f.message


def test_the_harness_validates_against_the_notebooks_own_schema_file() -> None:
    from harness.observations import tier_payload

    assert tier_payload.SCHEMA == json.loads(SCHEMA.read_text())   # one source of truth


def test_no_tier_output_is_said() -> None:
    findings = tiers.check(minimal_record(), None, OPTIONS)
    assert [f.severity for f in findings] == ["info"] and "No tier results" in findings[0].message


# --- cells -----------------------------------------------------------------------------------------

def test_cell_error_names_index_tag_exception_and_first_traceback_line() -> None:
    [f] = fails(cells.check(load_record("numpy_downgrade"), None, OPTIONS))
    assert (f.cell_index, f.cell_tag) == (2, "model")
    assert f.message.startswith("cell 2 [model] raised ValueError: numpy.dtype size changed")
    assert f.message.endswith("(traceback: Cell In[4], line 1)")
    assert f.evidence["traceback_first_line"] == "Cell In[4], line 1"


def test_raises_exception_tag_exempts_the_cell() -> None:
    error = CellError("ValueError", "expected", ["ValueError: expected"])
    record = minimal_record(cells=[code_cell(2, "model", "error", error, extra_tags=("raises-exception",))])
    findings = cells.check(record, None, OPTIONS)
    assert not fails(findings)
    assert "raises-exception tag allows" in findings[0].message


def test_clean_cells_pass() -> None:
    assert cells.check(load_record("clean_run"), None, OPTIONS) == []


@pytest.mark.parametrize("outcome, detail, stopped", [
    ("kernel-died", "kernel died (SIGKILL) while running cell 5", 5),
    ("timeout", "cell 6 exceeded 60 s", 6),
    ("interrupted", "", 5),   # no detail: the errored cell before the first that never ran
])
def test_abnormal_outcome_fails_naming_the_cell(outcome: str, detail: str, stopped: int) -> None:
    record = minimal_record(
        outcome=outcome, outcome_detail=detail,
        cells=[code_cell(4, "model"), code_cell(5, "tier1", "error", CellError("KeyboardInterrupt", "", [])),
               code_cell(6, "tier2", "not-run"), code_cell(7, "summary", "not-run")])
    found = [f for f in fails(cells.check(record, None, OPTIONS)) if f.evidence.get("outcome")]
    [f] = found
    assert f.cell_index == stopped and f"ended with {outcome}" in f.message
    if detail:
        assert detail in f.message
    assert f.evidence["not_run"] == 2


def test_kernel_death_without_error_cell_points_at_the_first_cell_not_run() -> None:
    record = minimal_record(outcome="kernel-died", outcome_detail="kernel died (SIGSEGV)",
                            cells=[code_cell(4, "model"), code_cell(5, "tier1", "not-run")])
    [f] = fails(cells.check(record, None, OPTIONS))
    assert "cell 5 [tier1]" in f.message and "SIGSEGV" in f.message


def test_cell_error_outcome_without_an_errored_cell_still_fails() -> None:
    record = minimal_record(outcome="cell-error", outcome_detail="cell 4 raised", cells=[code_cell(4, "model")])
    [f] = fails(cells.check(record, None, OPTIONS))
    assert "no cell recorded" in f.message and "cell 4 raised" in f.message


def test_no_cells_is_said() -> None:
    assert cells.check(minimal_record(), None, OPTIONS)[0].severity == "info"


# --- run_checks / exit_code ----------------------------------------------------------------------------

def test_run_checks_orders_causes_first_and_exit_code() -> None:
    findings = run_checks(load_record("numpy_downgrade"), None, OPTIONS)
    assert exit_code(findings) == 1
    order = [f.check for f in findings]
    assert order == sorted(order, key=list(CHECKS).index)
    assert fails(findings)[0].check == "corruption"


def test_clean_run_against_its_own_baseline_passes() -> None:
    record = load_record("clean_run")
    findings = run_checks(record, Baseline.from_record(record), OPTIONS)
    assert exit_code(findings) == 0
    assert not of(findings, "warn")


def test_checks_do_not_modify_the_record() -> None:
    record = load_record("numpy_upgrade_center")
    before = copy.deepcopy(record.to_json())
    run_checks(record, Baseline.from_record(record), OPTIONS)
    assert record.to_json() == before


def test_exit_code() -> None:
    assert exit_code([]) == 0
    assert exit_code([Finding("x", "warn", "w"), Finding("x", "info", "i")]) == 0
    assert exit_code([Finding("x", "warn", "w"), Finding("x", "fail", "f")]) == 1


def test_a_metric_that_sits_near_zero_by_design_needs_an_absolute_change_to_count() -> None:
    def run(final_loss: float) -> RunRecord:
        return with_tiers(minimal_record(), tier_payload("tier3", [{
            "name": "training_loop", "status": "pass", "message": "", "metrics": {"final_loss": final_loss},
            "duration_s": 1.0}]))

    baseline = _baseline(tests={"tier3/training_loop": {"status": "pass", "metrics": {"final_loss": 0.01}}})
    assert not of(tiers.check(run(0.04), baseline, OPTIONS), "warn")     # 4x, but 0.03 nats: noise
    [w] = of(tiers.check(run(0.9), baseline, OPTIONS), "warn")          # stopped learning: counted
    assert w.evidence["metric"] == "final_loss"
