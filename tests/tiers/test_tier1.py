"""Tier 1: passes on the example model, catches each purpose-built broken model, degrades gracefully.

No timing is asserted anywhere: durations are only checked to be recorded.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from tiers import modelio, tier1
from tiers.models import example_model
from tiers.results import TierResult, timed

try:  # tests/tiers is a package in some layouts and a plain rootdir-inserted folder in others
    from . import broken_models as bm
except ImportError:
    import broken_models as bm  # type: ignore[no-redef]

SCHEMA = Path(tier1.__file__).with_name("tier-result.schema.json")
TEST_NAMES = list(tier1.TESTS)


def run_one(model: torch.nn.Module, config: Any, name: str):
    """One Tier 1 test as ``run`` runs it (exceptions become a fail)."""
    return timed(name, lambda: tier1.TESTS[name](model, config))


@pytest.fixture(scope="module")
def example_result() -> TierResult:
    model, config = example_model()
    return tier1.run(model, config)


# ---- the example model passes everything --------------------------------------------------------


def test_tests_are_the_twelve_in_order() -> None:
    """The first six keep their names and places (baselines are keyed tier/test); the new ones follow."""
    assert TEST_NAMES == ["shape_robustness", "gradient_flow", "output_stability", "parameter_initialization",
                          "memory_footprint", "inference_speed", "causality", "batch_independence", "initial_loss",
                          "activation_scale", "memory_leak", "mixed_precision"]


@pytest.mark.parametrize("name", TEST_NAMES)
def test_example_model_passes(example_result: TierResult, name: str) -> None:
    result = next(t for t in example_result.tests if t.name == name)
    assert result.status == "pass", result.message
    assert result.message  # a short summary
    assert result.metrics and all(v is None or isinstance(v, (int, float)) for v in result.metrics.values())
    assert result.duration_s > 0


def test_example_tier_status_and_order(example_result: TierResult) -> None:
    assert example_result.tier == "tier1"
    assert [t.name for t in example_result.tests] == TEST_NAMES
    assert example_result.status == "pass"


def test_example_metrics_are_meaningful(example_result: TierResult) -> None:
    by_name = {t.name: t.metrics for t in example_result.tests}
    assert by_name["shape_robustness"]["shapes_checked"] == 9
    assert by_name["shape_robustness"]["vocab_size"] == 256
    assert by_name["gradient_flow"]["params_no_grad"] == 0
    assert 0 < by_name["gradient_flow"]["grad_norm_min"] <= by_name["gradient_flow"]["grad_norm_median"] \
        <= by_name["gradient_flow"]["grad_norm_max"]
    assert by_name["output_stability"]["deterministic"] == 1
    assert by_name["parameter_initialization"]["total_parameters"] == sum(
        p.numel() for p in example_model()[0].parameters())
    memory = by_name["memory_footprint"]
    assert memory["peak_mb_small"] <= memory["peak_mb_medium"] <= memory["peak_mb_large"]
    assert memory["activation_growth"] > 1
    speed = by_name["inference_speed"]
    assert speed["tokens_per_s_batch1"] > 0 and speed["tokens_per_s_batch4"] > 0
    assert speed["on_cuda"] == 0 or torch.cuda.is_available()
    assert by_name["shape_robustness"]["shapes_nonfinite"] == 0 and by_name["shape_robustness"]["seq_capped"] == 0
    assert by_name["causality"]["gradient_checked"] == 1 and by_name["causality"]["leaking_positions"] == 0
    assert by_name["causality"]["max_past_gradient"] > 0  # the gradient really reached the embedding
    assert by_name["batch_independence"]["cross_sequence_gradient"] == 0
    assert by_name["initial_loss"]["initial_loss"] == pytest.approx(math.log(256), abs=0.1)
    assert by_name["activation_scale"]["blocks"] == 2 and by_name["activation_scale"]["max_block_growth"] < 4
    assert by_name["memory_leak"]["growing_containers"] == 0
    assert by_name["mixed_precision"]["dtypes_checked"] >= 1
    assert 0 < by_name["parameter_initialization"]["max_std_sqrt_fan_in"] < 3


# ---- each broken model trips the relevant test --------------------------------------------------

BROKEN = [
    # (model class, test, expected status, words the message must contain)
    (bm.WrongShapeModel, "shape_robustness", "fail", ["batch=1, seq=1", "expected logits (1, 1, 32)", "got (1, 32)"]),
    (bm.NaNOutputModel, "output_stability", "fail", ["NaN"]),
    (bm.NaNOutputModel, "gradient_flow", "fail", ["NaN/Inf gradients"]),
    # NaN logits cannot show a leak or a precision loss: said so, never passed
    (bm.NaNOutputModel, "causality", "skip", ["not judged", "NaN/Inf"]),
    (bm.NaNOutputModel, "batch_independence", "skip", ["not judged", "NaN/Inf"]),
    (bm.NaNOutputModel, "mixed_precision", "skip", ["float32 logits already contain NaN/Inf"]),
    (bm.NaNOutputModel, "initial_loss", "fail", ["nan"]),
    (bm.DetachedLayerModel, "gradient_flow", "fail", ["no gradient", "ff.0.weight", ".detach()"]),
    (bm.UnusedLayerModel, "gradient_flow", "fail", ["no gradient", "unused_proj.weight"]),
    (bm.ZeroInitModel, "parameter_initialization", "fail", ["all zero", "token_embedding.weight"]),
    (bm.ZeroInitModel, "gradient_flow", "warn", ["vanishing"]),
    (bm.ZeroInitModel, "output_stability", "fail", ["same for every input", "ignores input_ids"]),
    (bm.ConstantInitModel, "parameter_initialization", "fail", ["constant", "ff.0.weight"]),
    (bm.ExplodingInitModel, "parameter_initialization", "fail", ["exploding", "token_embedding.weight"]),
    (bm.ExplodingInitModel, "gradient_flow", "fail", ["exploding gradient"]),
    (bm.ExplodingInitModel, "output_stability", "warn", ["logits reach"]),
    (bm.NondeterministicModel, "output_stability", "fail", ["differ", "self.training"]),
    (bm.SuperlinearMemoryModel, "memory_footprint", "warn", ["activation memory grows"]),
]


@pytest.mark.parametrize(("cls", "name", "status", "words"), BROKEN,
                         ids=[f"{c.__name__}-{n}" for c, n, _, _ in BROKEN])
def test_broken_model_is_caught(cls: type, name: str, status: str, words: list[str]) -> None:
    result = run_one(cls(), bm.config(), name)
    assert result.status == status, result.message
    for word in words:
        assert word in result.message, (word, result.message)


@pytest.mark.parametrize("cls", [bm.DetachedLayerModel, bm.ZeroInitModel, bm.ExplodingInitModel])
def test_broken_models_still_have_the_right_shape(cls: type) -> None:
    """Each breaks one thing: the unrelated shape test still passes (the fault is pinned down)."""
    assert run_one(cls(), bm.config(), "shape_robustness").status == "pass"


def test_some_zero_matrices_only_warn() -> None:
    """All-zero can be intended (LoRA B, zero-initialised residual projections): one of five warns."""
    model = bm.TinyLM()
    torch.nn.init.zeros_(model.ff[2].weight)
    result = run_one(model, bm.config(), "parameter_initialization")
    assert result.status == "warn" and "ff.2.weight" in result.message
    assert result.metrics["zero_matrices"] == 1


def test_layernorm_ones_and_zero_biases_are_not_flagged() -> None:
    result = run_one(bm.TinyLM(), bm.config(), "parameter_initialization")
    assert result.status == "pass"
    assert result.metrics["constant_matrices"] == 0 and result.metrics["zero_matrices"] == 0


def test_nan_weight_fails_initialization() -> None:
    model = bm.TinyLM()
    with torch.no_grad():
        model.ln_f.bias[3] = float("nan")  # 1-D tensors are checked for NaN too
    result = run_one(model, bm.config(), "parameter_initialization")
    assert result.status == "fail" and "NaN" in result.message and "ln_f.bias" in result.message


def test_wrong_vocab_in_config_fails_shape_naming_both_sizes() -> None:
    result = run_one(bm.TinyLM(), bm.config(vocab_size=16), "shape_robustness")
    assert result.status == "fail"
    assert "expected logits (1, 1, 16), got (1, 1, 32)" in result.message


def test_frozen_model_skips_gradient_flow() -> None:
    model = bm.TinyLM().requires_grad_(False)
    result = run_one(model, bm.config(), "gradient_flow")
    assert result.status == "skip" and result.metrics["params_frozen"] == len(list(model.parameters()))


# ---- a raising forward fails what it touches, the rest still runs ----------------------------------


def test_raising_forward_fails_affected_tests_and_others_run() -> None:
    result = tier1.run(bm.RaisingModel(), bm.config())
    assert [t.name for t in result.tests] == TEST_NAMES
    by_name = {t.name: t for t in result.tests}
    # parameter_initialization never calls forward: it still runs and passes.
    assert by_name["parameter_initialization"].status == "pass"
    # shape_robustness and activation_scale report the raise as their own finding, naming the input.
    assert "raised RuntimeError: mat1 and mat2" in by_name["shape_robustness"].message
    for name in TEST_NAMES:
        if name in ("parameter_initialization", "shape_robustness"):
            continue
        assert by_name[name].status == "fail", name
        assert "RuntimeError: mat1 and mat2 shapes cannot be multiplied" in by_name[name].message, name
    assert result.status == "fail"


def test_shape_robustness_names_the_input_that_raises() -> None:
    """A model that breaks only at length 1 (an off-by-one on positions) is pinned to that input."""

    class BreaksAtLengthOne(bm.TinyLM):
        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            if input_ids.shape[1] == 1:
                raise IndexError("index 0 is out of bounds for dimension 0 with size 0")
            return super().forward(input_ids)

    result = run_one(BreaksAtLengthOne(), bm.config(), "shape_robustness")
    assert result.status == "fail"
    assert result.metrics["shapes_failed"] == 3  # length 1 at batch 1, 2 and 4
    assert "input (batch=1, seq=1) raised IndexError" in result.message


# ---- model I/O: output containers, devices, vocab fallback -----------------------------------------


@pytest.mark.parametrize("cls", [bm.TupleOutputModel, bm.DictOutputModel, bm.LogitsObjectModel])
def test_other_output_styles_pass(cls: type) -> None:
    result = tier1.run(cls(), bm.config())
    assert [t.status for t in result.tests] == ["pass"] * len(TEST_NAMES), result.tests


def test_inputs_are_created_on_the_models_device() -> None:
    model = bm.DeviceRecordingModel()
    tier1.run(model, bm.config())
    assert model.input_devices  # every forward-based test ran the model
    assert set(model.input_devices) == {modelio.device_of(model)}


@pytest.mark.cuda
def test_example_model_on_cuda_passes_and_measures_cuda_memory() -> None:
    model, config = example_model()
    result = tier1.run(model.cuda(), config)
    assert result.status == "pass", [(t.name, t.message) for t in result.tests]
    memory = next(t for t in result.tests if t.name == "memory_footprint")
    assert memory.metrics["on_cuda"] == 1 and memory.metrics["measured"] == 1
    assert "cuda" in next(t for t in result.tests if t.name == "inference_speed").message


def test_vocab_falls_back_to_the_embedding_size() -> None:
    config = {"max_seq_len": bm.MAX_SEQ}  # no vocab field at all
    result = tier1.run(bm.TinyLM(), config)
    shape = result.tests[0]
    assert shape.status == "pass" and shape.metrics["vocab_size"] == bm.VOCAB
    assert result.status == "pass", [(t.name, t.message) for t in result.tests]


# ---- the model is left as it was found ------------------------------------------------------------


def test_train_mode_and_gradients_are_restored() -> None:
    model = bm.TinyLM().train()
    model.ff.eval()  # a mixed-mode model: per-module flags must survive
    sentinel = {name: torch.full_like(p, 0.5) for name, p in model.named_parameters()}
    for name, param in model.named_parameters():
        param.grad = sentinel[name]
    before = {k: v.clone() for k, v in model.state_dict().items()}

    tier1.run(model, bm.config())

    assert model.training and model.lm_head.training and not model.ff.training and not model.ff[0].training
    for name, param in model.named_parameters():
        assert param.grad is sentinel[name] and torch.all(param.grad == 0.5), name
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_eval_model_stays_eval_and_gets_no_gradients() -> None:
    model, config = example_model()
    tier1.run(model, config)
    assert not any(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


# ---- optional packages missing --------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="the resource module is Unix-only")
def test_fallbacks_without_scipy_and_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("scipy", "scipy.stats", "psutil"):
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now raises ImportError
    model, config = example_model()
    result = tier1.run(model, config)
    assert result.status == "pass", [(t.name, t.message) for t in result.tests]
    by_name = {t.name: t for t in result.tests}

    stability = by_name["output_stability"]  # tiers.normality needs no scipy: the sub-check still runs
    assert stability.metrics["normality_checked"] == 1 and 0 <= stability.metrics["normality_p"] <= 1
    assert "skipped" not in stability.message and "normaltest p=" in stability.message

    memory = by_name["memory_footprint"]
    assert "resource.getrusage" in memory.message and "psutil not installed" in memory.message
    assert memory.metrics["process_resource_max_rss_mb"] > 0
    assert "process_psutil_rss_mb" not in memory.metrics


@pytest.mark.timeout(150)
def test_tier1_imports_no_scipy() -> None:
    """scipy.stats' import alone took longer than the rest of Tier 1 on a cold start (issue 16)."""
    script = ("import sys; from tiers import tier1; from tiers.models import example_model; "
              "tier1.run(*example_model()); print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))")
    notebook = Path(__file__).resolve().parents[2] / "notebook"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True,
                         env={**os.environ, "PYTHONPATH": str(notebook)}).stdout
    assert out.strip() == "[]"


def test_with_psutil_the_real_checks_run(example_result: TierResult) -> None:
    pytest.importorskip("psutil")
    by_name = {t.name: t for t in example_result.tests}
    assert by_name["output_stability"].metrics["normality_checked"] == 1
    assert 0 <= by_name["output_stability"].metrics["normality_p"] <= 1
    assert by_name["memory_footprint"].metrics["process_psutil_rss_mb"] > 0


# ---- the published payload follows the contract ----------------------------------------------------


@pytest.mark.parametrize("make", [example_model, lambda: (bm.RaisingModel(), bm.config()),
                                  lambda: (bm.NaNOutputModel(), bm.config())], ids=["example", "raising", "nan"])
def test_payload_validates_against_the_schema(make: Any) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    model, config = make()
    payload = tier1.run(model, config).to_json()
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(payload)
    json.dumps(payload, allow_nan=False)  # NaN/Inf metrics became null
