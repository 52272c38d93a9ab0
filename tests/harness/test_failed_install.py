"""A failed install is a failure: real kernel, real pip, offline.

The fixture notebook (notebooks/failed_install.ipynb) asks the guarded ``tiers.install.install`` for
``captum==99.0.0`` with ``--no-index``: pip fails ("No matching distribution"), the notebook goes on
with its boxed message (as in Colab), and its tier test skips because captum is missing. The run
must exit 1 naming the install, the requirement and pip's reason; with the tier disabled (a
parameter) nothing is installed, the skip is the notebook's choice, and the run passes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness.conftest import NOTEBOOKS, run_cli, stream_text

pytestmark = pytest.mark.slow

FIXTURE = NOTEBOOKS / "failed_install.ipynb"


def _source_cell(executed: Path, index: int) -> dict:
    nb = json.loads(executed.read_text())
    return next(c for c in nb["cells"] if c["metadata"].get("colab_ci", {}).get("source_index") == index
                and "probe" not in c["metadata"]["colab_ci"])


@pytest.mark.timeout(600)
def test_a_guarded_install_of_a_release_that_does_not_exist_fails_the_run_and_a_disabled_tier_passes(
        target_venv: Path, tmp_path: Path) -> None:
    failed = run_cli("run", str(FIXTURE), "--python", str(target_venv), "--out", str(tmp_path / "on"))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "captum==99.0.0" in failed.stdout and "cell 3 [tier2-install]" in failed.stdout
    report = json.loads((tmp_path / "on" / "report.json").read_text())
    failing = [f for f in report["findings"] if f["severity"] == "fail"]
    assert [f["check"] for f in failing] == ["install", "tiers"], failing
    install, skipped = failing
    assert (install["cell_index"], install["cell_tag"]) == (3, "tier2-install")
    assert install["evidence"]["requirements"] == ["captum==99.0.0"]
    assert install["evidence"]["reason"] == "no matching distribution" and install["evidence"]["returncode"] == 1
    assert install["evidence"]["not_installed"] == ["captum==99.0.0"]
    assert "ERROR: No matching distribution found for captum==99.0.0" in install["message"]
    # the tier test that skipped for it fails, with the install named as the cause
    assert skipped["evidence"]["test"] == "attribution" and skipped["evidence"]["status"] == "skip"
    assert "tier2/attribution was skipped because captum could not be installed" in skipped["message"]
    assert "cell 3 [tier2-install]" in skipped["message"]
    # in the notebook (as in Colab) the install said so in its box, and every cell ran
    executed = tmp_path / "on" / "executed.ipynb"
    assert "INSTALL FAILED" in stream_text(_source_cell(executed, 3))
    assert [c["status"] for c in report["record"]["cells"] if c["cell_type"] == "code"] == ["ok"] * 4

    disabled = run_cli("run", str(FIXTURE), "--python", str(target_venv), "--out", str(tmp_path / "off"),
                       "-p", "ENABLE_TIER2=False")
    assert disabled.returncode == 0, disabled.stdout + disabled.stderr
    report = json.loads((tmp_path / "off" / "report.json").read_text())
    assert not [f for f in report["findings"] if f["severity"] in ("fail", "error")], report["findings"]
