"""Tier 3: training, the optuna search and the benchmark on the example and purpose-built models.

Real optuna throughout (no mocks); the missing-optuna fallback is in test_optional.py.
No timing is asserted anywhere: the benchmark is only checked for sane, finite numbers.
"""

from __future__ import annotations

import math

import jsonschema
import pytest
import torch
from tiers import checks_speed, tier3
from tiers.models import TinyDecoder, example_model, parameter_count
from torch import nn

try:  # tests/tiers is a package in some layouts and a plain rootdir-inserted folder in others
    from . import broken_models as bm
except ImportError:
    import broken_models as bm  # type: ignore[no-redef]


class InputIgnoringLM(nn.Module):
    """Trainable parameters that never reach the loss: the optimiser can change nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("table", torch.randn(bm.VOCAB, bm.VOCAB, generator=torch.Generator().manual_seed(0)))
        self.unused = nn.Parameter(torch.ones(4))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.table[input_ids] + 0.0 * self.unused.sum()


@pytest.fixture(scope="module")
def example_result():
    model, config = example_model()
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    result = tier3.run(model, config)
    return result, model, state


# ---- the example model passes everything; the payload follows the contract ------------------------

def test_example_model_passes_every_tier3_test(example_result, tier_schema: dict) -> None:
    result, _, _ = example_result
    assert [t.name for t in result.tests] == list(tier3.TESTS)
    assert {t.name: t.status for t in result.tests} == {name: "pass" for name in tier3.TESTS}, result.tests
    payload = result.to_json()
    jsonschema.validate(payload, tier_schema)
    assert payload["tier"] == "tier3" and payload["status"] == "pass"


def test_the_users_model_is_left_untouched(example_result) -> None:
    _, model, state = example_result
    assert all(torch.equal(state[name], tensor) for name, tensor in model.state_dict().items())
    assert not model.training  # still in the eval mode example_model() returned it in
    assert all(p.grad is None for p in model.parameters())


# ---- training_loop ------------------------------------------------------------------------------

def test_training_overfits_the_batch_with_the_searched_learning_rate(example_result) -> None:
    result, _, _ = example_result
    by_name = {t.name: t.metrics for t in result.tests}
    metrics = by_name["training_loop"]
    assert metrics["lr_from_search"] == 1 and metrics["lr"] == by_name["hyperparameter_search"]["best_lr"]
    assert metrics["target_reached"] == 1 and metrics["steps"] <= tier3.TRAIN_STEPS
    assert metrics["final_loss"] < tier3.TARGET_LOSS
    assert metrics["context_blind_loss"] == pytest.approx(math.log(tier3.CONTEXT_TOKENS - 1))
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["final_loss"]))
    assert metrics["initial_loss"] == pytest.approx(math.log(256), rel=0.05)  # untrained: about log(vocab)


def test_loss_curve_is_kept_for_the_plot() -> None:
    result = tier3.training_loop(bm.TinyLM(), bm.config())
    assert tier3.loss_curve[0] == result.metrics["initial_loss"] and len(tier3.loss_curve) == result.metrics["steps"]
    assert tier3.loss_curve_html().startswith('<img alt="training loss curve" src="data:image/png;base64,')


def test_training_fails_when_the_loss_cannot_fall() -> None:
    result = tier3.training_loop(InputIgnoringLM(), bm.config())
    assert result.status == "fail" and "did not fall" in result.message


def test_training_fails_on_nan_loss() -> None:
    result = tier3.training_loop(bm.NaNOutputModel(), bm.config())
    assert result.status == "fail" and "NaN" in result.message
    assert result.metrics["steps"] == 1  # stops at the first non-finite loss


def test_training_uses_the_configured_learning_rate() -> None:
    result = tier3.training_loop(bm.TinyLM(), bm.config(learning_rate=1e-2))
    assert result.status == "pass", result.message
    assert result.metrics["lr"] == 1e-2


@pytest.mark.parametrize("model_class", [bm.TupleOutputModel, bm.DictOutputModel, bm.LogitsObjectModel])
def test_output_styles_train(model_class: type[nn.Module]) -> None:
    result = tier3.training_loop(model_class(), bm.config())
    assert result.status == "pass", result.message


def test_context_task_needs_the_token_two_back() -> None:
    """The next token is always the one two positions back, while the current token alone leaves
    CONTEXT_TOKENS - 1 equally likely successors at every position: only context solves it."""
    model, config = example_model()
    inputs, targets = tier3.context_task(model, config, seq=20)
    tokens = tier3.CONTEXT_TOKENS
    assert inputs.shape == (tokens * (tokens - 1), 20) and targets.shape == inputs.shape
    assert torch.equal(targets[:, 1:], inputs[:, :-1])  # next = two back
    for position in range(1, 20):
        successors: dict[int, set[int]] = {}
        for token, following in zip(inputs[:, position].tolist(), targets[:, position].tolist()):
            successors.setdefault(token, set()).add(following)
        assert all(len(found) == tokens - 1 for found in successors.values())
    assert tier3.context_blind_loss(inputs, targets) == pytest.approx(math.log(tokens - 1))


# ---- hyperparameter_search ----------------------------------------------------------------------

def test_optuna_finds_a_trial(example_result) -> None:
    result, _, _ = example_result
    search = next(t for t in result.tests if t.name == "hyperparameter_search")
    if search.metrics["timed_out"]:   # a loaded machine: the search's own time limit ended it, and it says so
        assert 1 <= search.metrics["trials"] < tier3.SEARCH_TRIALS
        assert f"stopped by the {tier3.SEARCH_TIMEOUT_S:g} s limit after {search.metrics['trials']} trials" \
            in search.message
    else:
        assert search.metrics["trials"] == tier3.SEARCH_TRIALS
    assert search.metrics["completed_trials"] >= 1
    assert tier3.LR_RANGE[0] <= search.metrics["best_lr"] <= tier3.LR_RANGE[1]
    assert tier3.WEIGHT_DECAY_RANGE[0] <= search.metrics["best_weight_decay"] <= tier3.WEIGHT_DECAY_RANGE[1]
    assert search.metrics["best_loss"] < search.metrics["initial_loss"]


def test_optuna_search_is_deterministic_and_restores_its_logging() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.INFO)
    model, config = bm.TinyLM(), bm.config()
    first = tier3.hyperparameter_search(model, config)
    second = tier3.hyperparameter_search(model, config)
    assert first.metrics["best_lr"] == second.metrics["best_lr"]
    assert optuna.logging.get_verbosity() == optuna.logging.INFO


def test_search_fails_when_every_trial_diverges() -> None:
    result = tier3.hyperparameter_search(bm.NaNOutputModel(), bm.config())
    assert result.status == "fail" and result.metrics["completed_trials"] == 0


# ---- benchmark ----------------------------------------------------------------------------------

def test_benchmark_compares_with_a_same_size_reference(example_result) -> None:
    result, model, _ = example_result
    metrics = next(t for t in result.tests if t.name == "benchmark").metrics
    assert metrics["tokens_per_s_forward"] > 0 and metrics["reference_tokens_per_s_forward"] > 0
    # speed_ratio is the median of per-round ratios (rounds alternate the two models so that load on a shared
    # machine hits both), not the ratio of the two medians: on a quiet machine the two agree, on a busy one
    # only the former means anything. Here: a finite positive number, and the example is no outlier.
    assert 0 < metrics["speed_ratio"] < math.inf
    assert metrics["speed_ratio"] > checks_speed.SLOW_RATIO
    assert 0.5 < metrics["reference_parameters"] / parameter_count(model) < 2


@pytest.mark.parametrize("vocab,d_model,layers", [(1000, 32, 6), (50257, 768, 12), (64, 8, 1)])
def test_reference_model_matches_the_parameter_count(vocab: int, d_model: int, layers: int) -> None:
    with torch.device("meta"):  # shapes only: a GPT-2-sized model costs nothing here
        model = TinyDecoder(vocab, d_model, 4 if d_model % 4 == 0 else 1, layers, 1024)
    config = {"vocab_size": vocab, "max_seq_len": 1024, "n_layers": layers}
    with torch.device("meta"):
        reference = checks_speed.reference_model(model, config)
    assert reference.token_embedding.num_embeddings == vocab
    assert len(reference.blocks) == layers
    if d_model > 16:
        assert 0.8 < parameter_count(reference) / parameter_count(model) < 1.25
    else:  # smaller than the smallest reference: the reference takes the minimum width
        assert reference.token_embedding.embedding_dim == 4 * checks_speed.REFERENCE_HEADS


def test_benchmark_never_fails_on_speed() -> None:
    result = tier3.benchmark(bm.TinyLM(), bm.config())
    assert result.status in {"pass", "warn"}, result.message


# ---- the search's design and bounds --------------------------------------------------------------

def test_search_starts_with_the_grid_then_models_the_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first trials cover the learning rates evenly (the enqueued grid); TPE, not random search,
    proposes the rest."""
    import optuna

    studies: list = []
    original = optuna.create_study
    monkeypatch.setattr(optuna, "create_study", lambda **kw: studies.append(original(**kw)) or studies[-1])
    result = tier3.hyperparameter_search(bm.TinyLM(), bm.config())
    assert result.status == "pass", result.message
    (study,) = studies
    assert isinstance(study.sampler, optuna.samplers.TPESampler)
    assert isinstance(study.pruner, optuna.pruners.MedianPruner)
    tried = [trial.params["lr"] for trial in study.trials]
    assert tried[:len(tier3.SEARCH_GRID)] == list(tier3.SEARCH_GRID)
    assert len(study.trials) == tier3.SEARCH_TRIALS and result.metrics["timed_out"] == 0


def test_search_is_bounded_by_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tier3, "SEARCH_TIMEOUT_S", 0.0)
    result = tier3.hyperparameter_search(bm.TinyLM(), bm.config())
    assert result.metrics["timed_out"] == 1 and result.metrics["trials"] < tier3.SEARCH_TRIALS
    assert result.status == "fail" and "cut for time" in result.message  # nothing finished in 0 s


def test_training_is_bounded_by_time_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tier3, "TRAIN_TIMEOUT_S", 0.0)
    result = tier3.training_loop(bm.TinyLM(), bm.config())
    assert result.metrics["timed_out"] == 1 and result.metrics["steps"] == 1
    assert result.status == "warn" and "stopped by the 0 s limit" in result.message


def test_run_trains_with_the_learning_rate_the_search_found() -> None:
    result = tier3.run(bm.TinyLM(), bm.config(learning_rate=1e-4))
    by_name = {t.name: t.metrics for t in result.tests}
    assert [t.name for t in result.tests] == list(tier3.TESTS)
    assert by_name["training_loop"]["lr"] == by_name["hyperparameter_search"]["best_lr"] != 1e-4
    assert result.environment["device"] == "cpu"


def test_a_model_that_ignores_its_context_fails_training_with_that_message() -> None:
    class PerTokenLM(bm.TinyLM):
        def attend(self, h: torch.Tensor) -> torch.Tensor:
            return torch.zeros_like(h)  # attention removed: each position sees only its own token

    result = tier3.training_loop(PerTokenLM(), bm.config(), lr=1e-2)
    assert result.status == "fail" and "ignores its context" in result.message
    assert result.metrics["final_loss"] >= tier3.IGNORES_CONTEXT * result.metrics["context_blind_loss"]
