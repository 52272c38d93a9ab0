"""Tier 2: passes on the example model, flags purpose-built attention/attribution/robustness faults.

Real captum throughout (no mocks); the missing-captum fallback is in test_optional.py.
No timing is asserted anywhere.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import torch
from tiers import tier2
from tiers.models import example_model
from torch import nn
from torch.nn import functional as F

try:  # tests/tiers is a package in some layouts and a plain rootdir-inserted folder in others
    from . import broken_models as bm
except ImportError:
    import broken_models as bm  # type: ignore[no-redef]

VOCAB, SEQ = 32, 16
CONFIG = {"vocab_size": VOCAB, "max_seq_len": SEQ}


# ---- purpose-built models -----------------------------------------------------------------------

class ManualAttentionLM(nn.Module):
    """Causal attention written out by hand; keeps ``attn_weights`` (batch, heads, q, k) like DecoderBlock.

    ``score_scale`` multiplies the attention scores: 0 gives exactly uniform attention, a huge value
    puts all of each query's attention on one key (collapsed).
    """

    def __init__(self, score_scale: float, heads: int = 2, d_model: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.heads, self.score_scale = heads, score_scale
        self.embedding = nn.Embedding(VOCAB, d_model)
        self.position = nn.Embedding(SEQ, d_model)  # distinct keys even where a token repeats
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.lm_head = nn.Linear(d_model, VOCAB)
        self.attn_weights: torch.Tensor | None = None

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(input_ids) + self.position(torch.arange(input_ids.shape[1]))
        batch, seq, width = x.shape
        q, k, v = (t.reshape(batch, seq, self.heads, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        scores = self.score_scale * q @ k.transpose(-1, -2)
        causal = torch.ones(seq, seq, dtype=torch.bool).triu(diagonal=1)
        weights = scores.masked_fill(causal, float("-inf")).softmax(-1)
        self.attn_weights = weights.detach()
        return self.lm_head(x + (weights @ v).transpose(1, 2).reshape(batch, seq, width))


class EncoderLM(nn.Module):
    """nn.TransformerEncoder, whose eval-mode fast path would skip MultiheadAttention's hooks."""

    def __init__(self, heads: int = 2, layers: int = 2, d_model: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(VOCAB, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.lm_head = nn.Linear(d_model, VOCAB)
        self.eval()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.encoder(self.embedding(input_ids)))


class OneHotLM(nn.Module):
    """No nn.Embedding (one-hot times a matrix) and no attention."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(VOCAB, VOCAB, generator=torch.Generator().manual_seed(0)))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.one_hot(input_ids, VOCAB).float() @ self.weight


class ChaoticLM(nn.Module):
    """Each position's logits come from a hash of the sequence up to it: causal, but any change replaces
    every prediction after it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(VOCAB, VOCAB)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        digest = (input_ids * torch.arange(1, input_ids.shape[1] + 1)).cumsum(1) % VOCAB
        return self.embedding(digest)


class ConstantLM(nn.Module):
    """Logits that ignore the input entirely."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.linspace(-1, 1, VOCAB))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(*input_ids.shape, VOCAB)


def scale_attention_scores(model: nn.Module, factor: float, layer: int | None = None, head: int | None = None) -> None:
    """Multiply the query and key projections of a TinyDecoder (all heads or one) by ``factor``."""
    with torch.no_grad():
        for index, block in enumerate(model.blocks):
            if layer is not None and index != layer:
                continue
            d_model, heads = block.attn.embed_dim, block.attn.num_heads
            width = d_model // heads
            rows = range(heads) if head is None else [head]
            for h in rows:
                block.attn.in_proj_weight[h * width:(h + 1) * width] *= factor  # query
                block.attn.in_proj_weight[d_model + h * width:d_model + (h + 1) * width] *= factor  # key


# ---- the example model passes everything; the payload follows the contract ------------------------

def test_example_model_passes_every_tier2_test(tier_schema: dict) -> None:
    model, config = example_model()
    result = tier2.run(model, config)
    assert [t.name for t in result.tests] == list(tier2.TESTS)
    assert {t.name: t.status for t in result.tests} == {name: "pass" for name in tier2.TESTS}, result.tests
    payload = result.to_json()
    jsonschema.validate(payload, tier_schema)
    assert payload["tier"] == "tier2" and payload["status"] == "pass"
    assert all(t.duration_s >= 0 and t.message for t in result.tests)


def test_example_attention_metrics_describe_every_head() -> None:
    model, config = example_model()
    result = tier2.attention_patterns(model, config)
    assert result.metrics["layers"] == config["n_layers"]
    assert result.metrics["heads"] == config["n_layers"] * config["n_heads"]
    assert 0.0 < result.metrics["min_head_entropy"] <= result.metrics["max_head_entropy"] < tier2.UNIFORM_ENTROPY


def test_head_entropy_table_lists_every_head() -> None:
    model, config = example_model()
    table = tier2.head_entropy_table(model, config)  # a DataFrame here (pandas is installed)
    assert list(table.columns) == ["layer", "head", "entropy", "collapsed", "uniform"]
    assert len(table) == config["n_layers"] * config["n_heads"]
    assert set(table["layer"]) == {"blocks.0.attn", "blocks.1.attn"}


def test_capture_leaves_the_model_without_hooks() -> None:
    model, config = example_model()
    tier2.capture_attention(model, config)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


# ---- attention_patterns ---------------------------------------------------------------------------

def test_attention_skips_a_model_without_attention() -> None:
    result = tier2.attention_patterns(OneHotLM(), CONFIG)
    assert result.status == "skip"
    assert "no attention weights could be extracted" in result.message and "attn_weights" in result.message


@pytest.mark.parametrize("build", [
    lambda: (ManualAttentionLM(score_scale=1e4), CONFIG),
    lambda: _example_with_scores_scaled(1000.0),
], ids=["attn_weights-attribute", "multihead-attention-hooks"])
def test_collapsed_heads_are_flagged(build: Any) -> None:
    result = tier2.attention_patterns(*build())
    assert result.status == "warn", result.message
    assert result.metrics["collapsed_heads"] == result.metrics["heads"]
    assert result.metrics["uniform_heads"] == 0
    assert "collapsed head" in result.message


@pytest.mark.parametrize("build", [
    lambda: (ManualAttentionLM(score_scale=0.0), CONFIG),
    lambda: _example_with_scores_scaled(0.0),
], ids=["attn_weights-attribute", "multihead-attention-hooks"])
def test_uniform_heads_are_flagged(build: Any) -> None:
    result = tier2.attention_patterns(*build())
    assert result.status == "warn", result.message
    assert result.metrics["uniform_heads"] == result.metrics["heads"]
    assert result.metrics["collapsed_heads"] == 0
    assert "uniform head" in result.message


def test_only_the_collapsed_head_is_named() -> None:
    model, config = example_model()
    scale_attention_scores(model, 1000.0, layer=1, head=2)
    result = tier2.attention_patterns(model, config)
    assert result.status == "warn"
    assert result.metrics["collapsed_heads"] == 1
    assert "blocks.1.attn head 2" in result.message and "blocks.0.attn" not in result.message


def test_attention_found_in_transformer_encoder_despite_its_fast_path() -> None:
    result = tier2.attention_patterns(EncoderLM(heads=2, layers=2), CONFIG)
    assert result.status in {"pass", "warn"}, result.message
    assert result.metrics["layers"] == 2 and result.metrics["heads"] == 4


def test_non_causal_attention_is_normalised_by_all_keys() -> None:
    weights = torch.full((1, 1, 8, 8), 1 / 8)  # every query spreads over all 8 keys
    (head,) = tier2.head_entropies("layer", weights)
    assert head.entropy == pytest.approx(1.0) and head.uniform


def test_causal_attention_ignores_queries_with_too_few_keys() -> None:
    weights = torch.tril(torch.ones(8, 8))
    weights = (weights / weights.sum(-1, keepdim=True))[None, None]  # uniform over the allowed keys
    (head,) = tier2.head_entropies("layer", weights)
    assert head.entropy == pytest.approx(1.0)
    assert tier2.head_entropies("layer", weights[..., :3, :3]) == []  # no query sees MIN_KEYS keys


# ---- attribution --------------------------------------------------------------------------------

def test_attribution_reports_completeness_on_the_example() -> None:
    model, config = example_model()
    result = tier2.attribution(model, config)
    assert result.status == "pass", result.message
    assert result.metrics["convergence_delta"] < 1e-3
    assert 0.0 <= result.metrics["last_token_share"] <= result.metrics["recent_tokens_share"] <= 1.0
    assert 0 <= result.metrics["target_token"] < config["vocab_size"]


def test_attribution_fails_on_nan() -> None:
    result = tier2.attribution(bm.NaNOutputModel(), bm.config())
    assert result.status == "fail" and "NaN" in result.message


def test_attribution_skips_without_an_embedding() -> None:
    result = tier2.attribution(OneHotLM(), CONFIG)
    assert result.status == "skip" and "nn.Embedding" in result.message


# ---- robustness ---------------------------------------------------------------------------------

def test_robustness_measures_perturbed_and_untouched_positions() -> None:
    model, config = example_model()
    result = tier2.robustness(model, config)
    assert result.status == "pass", result.message
    assert 0 < result.metrics["perturbed_fraction"] <= 0.2
    assert result.metrics["kl_perturbed"] > 0 and result.metrics["kl_unperturbed"] >= 0


def test_robustness_flags_absurd_sensitivity() -> None:
    result = tier2.robustness(ChaoticLM(), CONFIG)
    assert result.status == "warn" and "absurd sensitivity" in result.message


def test_robustness_fails_an_output_that_ignores_the_input() -> None:
    result = tier2.robustness(ConstantLM(), CONFIG)
    assert result.status == "fail" and "does not change" in result.message and "ignores its input" in result.message


def test_robustness_fails_on_nan_output() -> None:
    result = tier2.robustness(bm.NaNOutputModel(), bm.config())
    assert result.status == "fail" and "NaN" in result.message


def test_perturbation_replaces_the_requested_share_with_different_tokens() -> None:
    ids = torch.randint(0, VOCAB, (4, 20), generator=torch.Generator().manual_seed(0))
    perturbed, mask = tier2.perturb_tokens(ids, VOCAB, 0.1)
    assert mask.sum(1).tolist() == [2, 2, 2, 2]
    assert (perturbed[mask] != ids[mask]).all() and (perturbed[~mask] == ids[~mask]).all()


# ---- output styles ------------------------------------------------------------------------------

@pytest.mark.parametrize("model_class", [bm.TupleOutputModel, bm.DictOutputModel, bm.LogitsObjectModel])
def test_output_styles_work(model_class: type[nn.Module], tier_schema: dict) -> None:
    result = tier2.run(model_class(), bm.config())
    statuses = {t.name: t.status for t in result.tests}
    assert statuses == {"attention_patterns": "pass", "attribution": "pass", "robustness": "pass"}, result.tests
    jsonschema.validate(result.to_json(), tier_schema)


def test_a_raising_model_fails_every_test_without_stopping_the_tier() -> None:
    result = tier2.run(bm.RaisingModel(), bm.config())
    assert [t.status for t in result.tests] == ["fail", "fail", "fail"]
    assert all("mat1 and mat2" in t.message for t in result.tests)


# ---- helpers ------------------------------------------------------------------------------------

def _example_with_scores_scaled(factor: float) -> tuple[nn.Module, dict[str, Any]]:
    model, config = example_model()
    scale_attention_scores(model, factor)
    return model, config
