"""``--update-baseline`` records only what passed: a run with a failing tier test is refused (exit 2,
naming it, the baseline file unchanged) unless ``--accept-failures`` says so, and then the test is
marked as an accepted failure in the baseline and in the reports. Real kernel, real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.matrix.run import _baseline_args
from tests.harness.conftest import make_notebook, run_cli

# A tier cell as the notebook's contract has it (docs/result-contract.md), with its status a parameter.
TIER_CELL = """
from IPython.display import display
payload = {"schema_version": 1, "tier": "tier1", "status": STATUS, "environment": {
               "python": "3", "torch": "absent", "numpy": "absent", "device": "cpu"},
           "tests": [{"name": "gradient_flow", "status": STATUS, "metrics": {}, "message": "grads vanish",
                      "duration_s": 0.1},
                     {"name": "shape_robustness", "status": "pass", "metrics": {}, "message": "", "duration_s": 0.1}]}
display({"application/vnd.colab-ci.tier+json": payload, "text/plain": STATUS}, raw=True)
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_update_baseline_refuses_a_failing_run_unless_its_failures_are_accepted(target_venv: Path,
                                                                                tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "tiers.ipynb", [('STATUS = "fail"', ["parameters"]), (TIER_CELL, ["tier1"])])
    baseline = tmp_path / "baselines" / "local.json"
    baseline.parent.mkdir()
    before = json.dumps({"schema_version": 2, "created_at": "2026-03-01T00:00:00+00:00", "notebook": str(nb),
                         "tests": {"tier1/gradient_flow": {"status": "pass", "metrics": {}},
                                   "tier1/shape_robustness": {"status": "pass", "metrics": {}}},
                         "installs": {}, "environment": {}}, indent=2)
    baseline.write_text(before)

    refused = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / "refused"),
                      "--baseline", str(baseline), "--update-baseline")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"baseline {baseline} not updated: 1 tier test failed in this run: tier1/gradient_flow" in refused.stderr
    assert "--accept-failures" in refused.stderr
    assert baseline.read_text() == before

    accepted = run_cli("run", str(nb), "--python", str(target_venv), "--out", str(tmp_path / "accepted"),
                       "--baseline", str(baseline), "--update-baseline", "--accept-failures")
    assert accepted.returncode == 1, accepted.stdout + accepted.stderr   # still a regression against the old one
    assert "accepted failures: tier1/gradient_flow" in accepted.stderr
    written = json.loads(baseline.read_text())
    assert written["schema_version"] == 2
    assert written["tests"]["tier1/gradient_flow"] == {"status": "fail", "metrics": {}, "accepted_failure": True}
    assert written["tests"]["tier1/shape_robustness"] == {"status": "pass", "metrics": {}}
    for name in ("report.md", "report.json", "report.html"):
        text = (tmp_path / "accepted" / name).read_text(encoding="utf-8")
        assert "accepted failure" in text and "tier1/gradient_flow" in text, name


def test_the_matrix_passes_accept_failures_only_with_update_baselines(tmp_path: Path) -> None:
    path = str(tmp_path / "img.json")
    assert _baseline_args("img", tmp_path, True, True) == ["--baseline", path, "--update-baseline", "--accept-failures"]
    assert _baseline_args("img", tmp_path, True) == ["--baseline", path, "--update-baseline"]
    assert "--accept-failures" not in _baseline_args("img", tmp_path, False, True)


def test_accept_failures_without_update_baseline_is_a_usage_error(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "n.ipynb", [("print(1)", [])])
    done = run_cli("run", str(nb), "--accept-failures", "--out", str(tmp_path / "out"), timeout=120)
    assert done.returncode == 2 and "--accept-failures only means something with --update-baseline" in done.stderr
    assert not (tmp_path / "out").exists()
