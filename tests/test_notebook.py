"""The committed notebook: its cell contract, and a real headless run of it with papermill."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import nbformat
import papermill
import pytest
import torch

from tests.conftest import REPO_ROOT, TEMPLATE

MIME = "application/vnd.colab-ci.tier+json"
CELL_TIMEOUT_S = 600  # papermill's per-cell limit: a hung cell fails the test instead of blocking CI
TIER1_TESTS = ["shape_robustness", "gradient_flow", "output_stability", "parameter_initialization",
               "memory_footprint", "inference_speed", "causality", "batch_independence", "initial_loss",
               "activation_scale", "memory_leak", "mixed_precision"]
REQUIRED_TAGS = ["parameters", "version", "install", "restart-recovery", "model", "tier1", "tier2-install",
                 "tier2", "tier3-install", "tier3", "summary", "feedback"]

# A model that runs but whose output is NaN: its shapes are right, its weights fine, its logits NaN.
NAN_MODEL = '''
import torch
from torch import nn

class NanLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embedding = nn.Embedding(config["vocab_size"], config["d_model"])
        self.head = nn.Linear(config["d_model"], config["vocab_size"])

    def forward(self, input_ids):
        return self.head(self.embedding(input_ids)) * float("nan")

def build_model(config):
    return NanLM(config)
'''


def tags_in_order(nb: nbformat.NotebookNode) -> list[str]:
    return [t for cell in nb.cells for t in cell.metadata.get("tags", [])]


def tier_outputs(nb: nbformat.NotebookNode, mime: str = MIME) -> dict[str, dict]:
    """tier name -> payload, from the contract's MIME outputs only (never printed text)."""
    found = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIME in data:
                found[data[MIME]["tier"]] = data[MIME] if mime == MIME else data.get(mime)
    return found


def run_template(tmp_path: Path, **parameters) -> nbformat.NotebookNode:
    out = tmp_path / "executed.ipynb"
    env_before = os.environ.get("COLAB_CI_CHECKOUT")
    os.environ["COLAB_CI_CHECKOUT"] = str(REPO_ROOT)  # import the tiers library from this checkout
    try:
        papermill.execute_notebook(str(TEMPLATE), str(out), parameters=parameters, kernel_name="python3",
                                   progress_bar=False, cwd=str(tmp_path), execution_timeout=CELL_TIMEOUT_S)
    finally:
        if env_before is None:
            os.environ.pop("COLAB_CI_CHECKOUT")
        else:
            os.environ["COLAB_CI_CHECKOUT"] = env_before
    return nbformat.read(out, as_version=4)


def test_committed_notebook_is_clean_and_tagged():
    nb = nbformat.read(TEMPLATE, as_version=4)
    nbformat.validate(nb)
    assert tags_in_order(nb) == REQUIRED_TAGS
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {index} carries outputs"
    parameters = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    for name in ("MODEL_SOURCE", "TRUST_MODEL_CODE", "DEVICE", "ENABLE_TIER2", "ENABLE_TIER3"):
        assert any(line.startswith(name) and "#@param" in line for line in parameters.source.splitlines()), name
    lines = parameters.source.splitlines()
    assert 'DEVICE = "auto"  #@param ["auto", "cuda", "cpu"]' in lines
    assert 'TRUST_MODEL_CODE = ""  #@param {type:"string"}' in lines  # takes the sha256 shown


def test_requirements_colab_is_only_torchinfo():
    lines = [line.split("#")[0].strip() for line in (REPO_ROOT / "requirements-colab.txt").read_text().splitlines()]
    assert [line for line in lines if line] == ["torchinfo==1.8.0"]


@pytest.mark.slow
def test_template_runs_headless_and_tier1_passes(tmp_path, tier_schema):
    nb = run_template(tmp_path)
    outputs = tier_outputs(nb)
    assert set(outputs) == {"tier1", "tier2", "tier3", "summary"}
    for payload in outputs.values():
        jsonschema.validate(payload, tier_schema)
    tier1 = {t["name"]: t["status"] for t in outputs["tier1"]["tests"]}
    assert tier1 == dict.fromkeys(TIER1_TESTS, "pass"), outputs["tier1"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert {payload["environment"]["device"] for payload in outputs.values()} == {device}
    for html in tier_outputs(nb, "text/html").values():
        assert "text-align:left" in html and all(ord(ch) < 0x2000 for ch in html)
    # captum and optuna are installed in the test environment, so tiers 2 and 3 really ran, and passed.
    assert all(t["status"] == "pass" for t in outputs["tier2"]["tests"]), outputs["tier2"]
    assert all(t["status"] == "pass" for t in outputs["tier3"]["tests"]), outputs["tier3"]
    assert len(outputs["summary"]["tests"]) == sum(len(outputs[t]["tests"]) for t in ("tier1", "tier2", "tier3"))
    version_cell = next(c for c in nb.cells if "install" in c.metadata.get("tags", []))
    printed = "".join(o.get("text", "") for o in version_cell.outputs)
    assert f"from {REPO_ROOT / 'notebook' / 'tiers'}" in printed  # the checkout under test, said aloud


@pytest.mark.slow
def test_broken_model_parameter_fails_tier1_tests(tmp_path):
    model_dir = tmp_path / "nan-model"
    model_dir.mkdir()
    (model_dir / "model.py").write_text(NAN_MODEL)
    (model_dir / "config.json").write_text(json.dumps({"vocab_size": 50, "d_model": 16, "max_seq_len": 32}))
    nb = run_template(tmp_path, MODEL_SOURCE=str(model_dir), TRUST_MODEL_CODE=True,
                      ENABLE_TIER2=False, ENABLE_TIER3=False)
    outputs = tier_outputs(nb)
    tier1 = {t["name"]: t for t in outputs["tier1"]["tests"]}
    assert tier1["output_stability"]["status"] == "fail"
    # the shapes are right, but the sweep now checks every input for NaN too
    assert tier1["shape_robustness"]["status"] == "fail" and "gives NaN/Inf logits" in tier1["shape_robustness"]["message"]
    assert tier1["parameter_initialization"]["status"] == "pass"  # the weights themselves are fine
    assert {t["status"] for t in outputs["tier2"]["tests"]} == {"skip"}
    assert "ENABLE_TIER2" in outputs["tier2"]["tests"][0]["message"]


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: torch.cuda.is_available() is False")
def test_template_with_device_auto_runs_every_tier_on_cuda(tmp_path):
    nb = run_template(tmp_path, DEVICE="auto")
    outputs = tier_outputs(nb)
    for tier in ("tier1", "tier2", "tier3", "summary"):
        assert outputs[tier]["environment"]["device"] == "cuda", outputs[tier]["environment"]
        assert outputs[tier]["status"] == "pass", [(t["name"], t["message"]) for t in outputs[tier]["tests"]]
    model_cell = next(c for c in nb.cells if "model" in c.metadata.get("tags", []))
    assert "model on cuda:" in "".join(o.get("text", "") for o in model_cell.outputs)


@pytest.mark.slow
def test_a_nanogpt_style_export_passes_every_tier_through_the_notebook(tmp_path):
    """The user's path for a model nobody here wrote: a folder with model.py (GPTConfig dataclass, GPT(config),
    forward(idx, targets=None) returning the last position at inference) and config.json."""
    export = REPO_ROOT / "tests" / "tiers" / "exports" / "nanogpt"
    nb = run_template(tmp_path, MODEL_SOURCE=str(export), TRUST_MODEL_CODE=True)
    outputs = tier_outputs(nb)
    for tier in ("tier1", "tier2", "tier3"):
        assert outputs[tier]["status"] == "pass", [(t["name"], t["status"], t["message"])
                                                   for t in outputs[tier]["tests"] if t["status"] != "pass"]
    model_cell = next(c for c in nb.cells if "model" in c.metadata.get("tags", []))
    printed = "".join(o.get("text", "") for o in model_cell.outputs)
    assert "GPT(GPTConfig(**config))" in printed and "sha256" in printed
