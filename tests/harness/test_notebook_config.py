"""What a notebook says about itself (harness/source/notebook_config.py): its declared tiers and first heading.

The template's tiers live in its own metadata, not in the harness; a malformed declaration stops
``run`` before any kernel starts (exit 2, naming the field).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

from harness.source.notebook_config import declared_tiers, first_heading, tiers_enabled
from tests.harness.conftest import make_notebook, run_cli

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "notebook" / "template.ipynb"


def test_the_template_declares_its_tiers_in_its_own_metadata():
    metadata = json.loads(TEMPLATE.read_text(encoding="utf-8"))["metadata"]
    declared = declared_tiers(metadata)
    assert declared == {"tier1": "", "tier2": "ENABLE_TIER2", "tier3": "ENABLE_TIER3"}
    assert tiers_enabled(declared, {}) == {"tier1", "tier2", "tier3"}
    assert tiers_enabled(declared, {"ENABLE_TIER2": "False", "ENABLE_TIER3": False}) == {"tier1"}
    assert tiers_enabled(declared, {"ENABLE_TIER3": "0"}) == {"tier1", "tier2"}


def test_a_notebook_that_declares_nothing_expects_nothing():
    assert declared_tiers({}) == declared_tiers(None) == declared_tiers({"colab_ci": {}}) == {}
    assert tiers_enabled({}, {"ENABLE_TIER2": True}) == set()


@pytest.mark.parametrize(("metadata", "said"), [
    ({"colab_ci": []}, "metadata.colab_ci is not an object"),
    ({"colab_ci": {"tiers": ["tier1"]}}, "metadata.colab_ci.tiers is not an object"),
    ({"colab_ci": {"tiers": {"tier2": "ENABLE_TIER2"}}}, "metadata.colab_ci.tiers.tier2 is not an object"),
    ({"colab_ci": {"tiers": {"tier2": {"switch": "X"}}}}, "has the unknown field 'switch'"),
    ({"colab_ci": {"tiers": {"tier2": {"enabled_by": "not a name"}}}}, "is not a parameter name: 'not a name'"),
])
def test_a_malformed_declaration_names_the_field(metadata, said):
    with pytest.raises(ValueError, match=said):
        declared_tiers(metadata)


@pytest.mark.parametrize(("sources", "heading"), [
    (["Some text first.", "# Transformer Builder: model validation\n\nmore"], "Transformer Builder: model validation"),
    (["<h2 align='center'>Stable <b>Diffusion</b></h2>"], "Stable Diffusion"),
    (["## Fine-tuning *BERT* with [Hugging Face](https://huggingface.co) ##"], "Fine-tuning BERT with Hugging Face"),
    (["no heading at all", "#hashtag is not a heading"], ""),
])
def test_first_heading_is_what_the_notebook_shows_on_top(sources, heading):
    notebook = {"cells": [{"cell_type": "code", "source": "# a comment, not a heading"}]
                + [{"cell_type": "markdown", "source": text} for text in sources]}
    assert first_heading(notebook) == heading


def test_run_refuses_a_malformed_declaration_before_any_kernel(tmp_path):
    path = make_notebook(tmp_path / "nb.ipynb", [("print('never runs')", [])])
    nb = nbformat.read(str(path), as_version=4)
    nb.metadata["colab_ci"] = {"tiers": {"tier1": {"enabled_by": 3}}}
    nbformat.write(nb, str(path))
    done = run_cli("run", str(path), "--out", str(tmp_path / "out"), timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "metadata.colab_ci.tiers.tier1.enabled_by is not a parameter name: 3" in done.stderr
    assert not (tmp_path / "out" / "executed.ipynb").exists()


@pytest.mark.slow
def test_a_real_run_records_the_declaration_for_the_reports(tmp_path):
    from harness.execution.execute import execute

    path = make_notebook(tmp_path / "nb.ipynb", [("ENABLE_EXTRA = True", ["parameters"]), ("print('ok')", [])])
    nb = nbformat.read(str(path), as_version=4)
    nb.metadata["colab_ci"] = {"tiers": {"basic": {}, "extra": {"enabled_by": "ENABLE_EXTRA"}}}
    nbformat.write(nb, str(path))
    record = execute(path, tmp_path / "out", python=Path(sys.executable), parameters={"ENABLE_EXTRA": False},
                     cell_timeout=120)
    assert record.outcome == "completed", record.outcome_detail
    assert record.declared_tiers == {"basic": "", "extra": "ENABLE_EXTRA"}
    assert tiers_enabled(record.declared_tiers, record.parameters) == {"basic"}
    executed = json.loads((tmp_path / "out" / "executed.ipynb").read_text(encoding="utf-8"))
    assert executed["metadata"]["colab_ci"]["tiers"] == nb.metadata["colab_ci"]["tiers"]   # kept beside the run's
    assert executed["metadata"]["colab_ci"]["outcome"] == "completed"
