"""Install time: every install cell within a fixed budget, and not much slower than its baseline.

A Colab user sits through each install cell on every fresh runtime, so install time is part of
the notebook's usability. A dependency that suddenly builds from source or pulls a CUDA wheel
shows up here first. Installs are keyed by cell index and tag (``baseline.install_key``).
"""

from __future__ import annotations

from harness.checks.baseline import Baseline, install_key
from harness.checks.options import CheckOptions
from harness.core.labels import cell_label
from harness.core.records import Finding, InstallObservation, RunRecord

NAME = "install-time"


def check(record: RunRecord, baseline: Baseline | None, options: CheckOptions) -> list[Finding]:
    if not record.installs:
        return [Finding(NAME, "info", "No install cells were observed, so no install time was checked.")]
    findings = [f for obs in record.installs for f in _budget(obs, options)]
    if baseline is None:
        findings.append(Finding(NAME, "info", "No baseline was given, so install times were checked "
                                              "against the budget only."))
        return findings
    for obs in record.installs:
        findings += _regression(obs, baseline, options)
    return findings


def _budget(obs: InstallObservation, options: CheckOptions) -> list[Finding]:
    if obs.duration_s <= options.install_budget_s:
        return []
    return [Finding(
        NAME, "fail",
        f"{cell_label(obs.cell_index, obs.cell_tag)} took {obs.duration_s:.1f} s to install, over the "
        f"{options.install_budget_s:.0f} s budget; trim or pin what it installs so pip has less to "
        f"resolve, download and build.",
        cell_index=obs.cell_index, cell_tag=obs.cell_tag,
        evidence={"duration_s": obs.duration_s, "budget_s": options.install_budget_s},
    )]


def _regression(obs: InstallObservation, baseline: Baseline, options: CheckOptions) -> list[Finding]:
    key = install_key(obs.cell_index, obs.cell_tag)
    label = cell_label(obs.cell_index, obs.cell_tag)
    reference = baseline.installs.get(key)
    if reference is None:
        return [Finding(NAME, "info", f"The baseline has no duration for {label}, so its install time "
                                      f"was not compared.", cell_index=obs.cell_index, cell_tag=obs.cell_tag)]
    slower_by = obs.duration_s - reference
    # Both conditions: the factor catches real slowdowns, the margin ignores jitter on short installs.
    too_slow = obs.duration_s > reference * options.install_regression_factor
    if not too_slow or slower_by <= options.install_regression_margin_s:
        return []
    return [Finding(
        NAME, "fail",
        f"{label} took {obs.duration_s:.1f} s to install against {reference:.1f} s in the baseline "
        f"({obs.duration_s / reference if reference else float('inf'):.1f}x, +{slower_by:.1f} s); look for a "
        f"dependency that now builds from source or pulls a larger wheel.",
        cell_index=obs.cell_index, cell_tag=obs.cell_tag,
        evidence={"duration_s": obs.duration_s, "baseline_s": reference,
                  "factor": options.install_regression_factor, "margin_s": options.install_regression_margin_s},
    )]
