"""Tier 1's newer checks, each on a model built to trip it: memory leaks, the shape sweep's memory cap,
mixed precision, the initial loss, activation scale; and the SDPA weights recomputation Tier 2 relies on.

Real models throughout; no timing is asserted.
"""

from __future__ import annotations

import gc
import math
from typing import Any

import pytest
import torch
from tiers import attention_capture, checks_memory, modelio, tier1
from tiers.models import TinyDecoder, example_model
from torch import nn
from torch.nn import functional as F

try:  # tests/tiers is a package in some layouts and a plain rootdir-inserted folder in others
    from . import broken_models as bm
except ImportError:
    import broken_models as bm  # type: ignore[no-redef]


# ---- memory_leak ------------------------------------------------------------------------------------

class HistoryKeepingLM(bm.TinyLM):
    """Appends every hidden state (with its graph) to a list: memory grows with every step."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[torch.Tensor] = []

    def hidden(self, input_ids: torch.Tensor) -> torch.Tensor:
        hidden = super().hidden(input_ids)
        self.history.append(hidden)
        return hidden


class CachedBufferLM(bm.TinyLM):
    """Builds its causal mask once and caches it: memory settles after the first step (not a leak)."""

    def __init__(self) -> None:
        super().__init__()
        self.masks: dict[int, torch.Tensor] = {}

    def attend(self, h: torch.Tensor) -> torch.Tensor:
        seq = h.shape[1]
        mask = self.masks.setdefault(seq, torch.ones(seq, seq, dtype=torch.bool).triu(diagonal=1))
        return self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]


def test_a_model_that_keeps_every_step_leaks_and_is_named() -> None:
    result = tier1.memory_leak(HistoryKeepingLM(), bm.config())
    assert result.status == "fail", result.message
    assert "memory grows" in result.message and "history (1 -> 7 items)" in result.message
    assert result.metrics["growth_kb_first"] > 0 and result.metrics["growth_kb_second"] > 0


_KEPT_OUTSIDE_THE_MODEL: list[torch.Tensor] = []


class GlobalHistoryLM(bm.TinyLM):
    """Keeps a copy of every hidden state in a module-level list: no container of the model grows, only
    the bytes of live tensors (made after memory_leak froze the older objects out of its walk)."""

    def hidden(self, input_ids: torch.Tensor) -> torch.Tensor:
        hidden = super().hidden(input_ids)
        _KEPT_OUTSIDE_THE_MODEL.append(hidden.detach().clone())
        return hidden


def test_a_leak_outside_the_model_is_found_by_its_bytes() -> None:
    _KEPT_OUTSIDE_THE_MODEL.clear()
    try:
        result = tier1.memory_leak(GlobalHistoryLM(), bm.config())
    finally:
        _KEPT_OUTSIDE_THE_MODEL.clear()
    assert result.status == "fail", result.message
    assert result.metrics["growing_containers"] == 0 and result.metrics["growth_kb_second"] > 0


def test_memory_leak_leaves_the_garbage_collector_as_it_found_it() -> None:
    gc.freeze()  # a caller's own freeze stays; with none, memory_leak's freeze is undone
    try:
        frozen = gc.get_freeze_count()
        assert tier1.memory_leak(bm.TinyLM(), bm.config()).status == "pass"
        assert gc.get_freeze_count() > frozen // 2  # still frozen (a frozen object may still be freed)
    finally:
        gc.unfreeze()
    assert tier1.memory_leak(bm.TinyLM(), bm.config()).status == "pass"
    assert gc.get_freeze_count() == 0


def test_a_cache_filled_once_is_not_a_leak() -> None:
    result = tier1.memory_leak(CachedBufferLM(), bm.config())
    assert result.status == "pass", result.message
    assert result.metrics["growing_containers"] == 0


def test_memory_leak_leaves_the_users_gradients_alone() -> None:
    model = bm.TinyLM()
    sentinel = {name: torch.full_like(p, 0.25) for name, p in model.named_parameters()}
    for name, param in model.named_parameters():
        param.grad = sentinel[name]
    tier1.memory_leak(model, bm.config())
    assert all(p.grad is sentinel[n] and bool((p.grad == 0.25).all()) for n, p in model.named_parameters())


# ---- the shape sweep's memory cap -----------------------------------------------------------------------

def test_long_context_lengths_are_capped_by_the_memory_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    """An 8k-context model on a machine with 64 MB free: the sweep stops where batch 4 would not fit."""
    model = TinyDecoder(vocab_size=64, d_model=32, n_heads=2, n_layers=1, max_seq_len=8192).eval()
    config = {"vocab_size": 64, "max_seq_len": 8192}
    monkeypatch.setattr("tiers.devices.available_memory_bytes", lambda device: 64_000_000)
    result = tier1.shape_robustness(model, config)
    assert result.status == "pass", result.message
    assert result.metrics["seq_capped"] == 1 and result.metrics["max_seq_checked"] < 8192
    assert result.metrics["estimated_mb_at_max_len"] > 16  # the budget is a quarter of the free memory
    assert "lengths capped at" in result.message and "MB of activations" in result.message
    longest, _ = checks_memory.affordable_length(model, config, 4, 8192)
    assert longest == result.metrics["max_seq_checked"]


def test_models_that_fit_are_not_capped() -> None:
    model, config = example_model()
    longest, estimate_mb = checks_memory.affordable_length(model, config, 4, 64)
    assert longest == 64 and estimate_mb is not None and estimate_mb < 100


def test_nan_at_one_length_fails_the_shape_sweep_naming_it() -> None:
    class NaNWhenLong(bm.TinyLM):
        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            logits = super().forward(input_ids)
            return logits * float("nan") if input_ids.shape[1] == bm.MAX_SEQ else logits

    result = tier1.shape_robustness(NaNWhenLong(), bm.config())
    assert result.status == "fail" and result.metrics["shapes_nonfinite"] == 3
    assert f"input (batch=1, seq={bm.MAX_SEQ}) gives NaN/Inf logits" in result.message


# ---- mixed_precision -----------------------------------------------------------------------------------

class PreallocatedOutputLM(bm.TinyLM):
    """Writes its logits into a float32 buffer through a mask: under autocast they are bfloat16, and
    index_put refuses to mix the two (a classic of hand-written generation code)."""

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        logits = super().forward(input_ids)
        out = torch.zeros(logits.shape, device=logits.device)  # float32, whatever autocast does
        keep = torch.ones(logits.shape, dtype=torch.bool, device=logits.device)
        out[keep] = logits[keep]
        return out


def test_a_model_that_breaks_under_autocast_fails_naming_the_dtype() -> None:
    result = tier1.mixed_precision(PreallocatedOutputLM(), bm.config())
    assert result.status == "fail", result.message
    assert "bfloat16 autocast forward raised" in result.message and "dtype" in result.message


def test_mixed_precision_passes_and_measures_the_difference() -> None:
    model, config = example_model()
    result = tier1.mixed_precision(model, config)
    assert result.status == "pass", result.message
    assert 0 < result.metrics["bfloat16_difference"] < 0.1


# ---- initial_loss and activation_scale -----------------------------------------------------------------

def test_initial_loss_warns_then_fails_as_the_output_scale_grows() -> None:
    statuses = []
    for scale in (1.0, 25.0, 100.0):  # logit std about 0.08, 2 and 8: 0, 2 and 15 nats above ln(vocab)
        model = bm.TinyLM()
        with torch.no_grad():
            model.lm_head.weight.mul_(scale)
        statuses.append(tier1.initial_loss(model, bm.config()))
    assert [r.status for r in statuses] == ["pass", "warn", "fail"], [r.message for r in statuses]
    assert statuses[0].metrics["initial_loss"] == pytest.approx(math.log(bm.VOCAB), abs=0.05)
    assert "nats above it" in statuses[2].message


def test_post_norm_blocks_that_compound_growth_fail_activation_scale() -> None:
    class GrowingBlock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(bm.D_MODEL, bm.D_MODEL)
            nn.init.normal_(self.proj.weight, std=2.0)  # x8 per layer at width 16

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.proj(x)

    class GrowingLM(bm.TinyLM):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(GrowingBlock() for _ in range(4))
            with torch.no_grad():
                self.token_embedding.weight.normal_()

        def hidden(self, input_ids: torch.Tensor) -> torch.Tensor:
            x = self.token_embedding(input_ids)
            for block in self.blocks:
                x = block(x)
            return x

    result = tier1.activation_scale(GrowingLM(), bm.config())
    assert result.status == "fail", result.message
    assert result.metrics["blocks"] == 4 and result.metrics["max_block_growth"] > 4
    assert "activations grow x" in result.message and "hidden-state RMS by block" in result.message


# ---- SDPA weights, recomputed for Tier 2 ------------------------------------------------------------------

@pytest.mark.parametrize("case", ["plain", "causal", "bool_mask", "float_mask", "scale", "gqa"])
def test_recomputed_sdpa_weights_reproduce_the_real_output(case: str) -> None:
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4, 6, 8, generator=generator)
    k = torch.randn(2, 2 if case == "gqa" else 4, 6, 8, generator=generator)
    v = torch.randn(k.shape, generator=generator)
    kwargs: dict[str, Any] = {
        "causal": {"is_causal": True},
        "bool_mask": {"attn_mask": torch.rand(6, 6, generator=generator) > 0.3},
        "float_mask": {"attn_mask": torch.randn(6, 6, generator=generator)},
        "scale": {"scale": 0.05},
        "gqa": {"enable_gqa": True},
    }.get(case, {})
    if case == "bool_mask":
        kwargs["attn_mask"][:, 0] = True  # every query keeps at least one key
    expected = F.scaled_dot_product_attention(q, k, v, **kwargs)
    weights = attention_capture.sdpa_weights(q, k, kwargs.get("attn_mask"), kwargs.get("is_causal", False),
                                             kwargs.get("scale"), kwargs.get("enable_gqa", False))
    values = v.repeat_interleave(2, dim=1) if case == "gqa" else v
    assert torch.allclose(weights @ values, expected, atol=1e-5)


def test_the_reference_model_takes_the_fused_attention_path() -> None:
    """TinyDecoder asks nn.MultiheadAttention for no weights and says the mask is causal, so PyTorch
    can use its fused scaled-dot-product kernels; Tier 3's benchmark compares against a fast baseline."""
    model, config = example_model()
    seen: list[dict[str, Any]] = []
    handles = [block.attn.register_forward_pre_hook(lambda m, args, kwargs: seen.append(dict(kwargs)),
                                                    with_kwargs=True) for block in model.blocks]
    try:
        modelio.forward_for(model, config, modelio.random_tokens(model, config, 2, 16))
    finally:
        for handle in handles:
            handle.remove()
    assert len(seen) == config["n_layers"]
    assert all(call["need_weights"] is False and call["is_causal"] is True for call in seen)
