"""Tier 1: does each position see only its past, and each sequence only itself?

``causality``           for a decoder-only model, the gradient of the logits at position t with respect to
                        the token embeddings at positions after t is exactly zero, and changing later tokens
                        leaves earlier logits unchanged. Forgetting the causal mask is the most common bug of
                        a hand-built transformer; it also makes next-token training deceptively easy.
``batch_independence``  a sequence's logits depend on that sequence only: the gradient with respect to the
                        other sequences' embeddings is exactly zero, changing them changes nothing, and a
                        sequence alone gives the logits it gets inside a batch (Hugging Face's
                        batching-equivalence test).

Where a check fails, the first module whose output shows the leak is found by the same gradient test
applied to every module's output, and the message names it (``probing.describe_culprit``).

Gradients are taken with respect to the token embedding's output (``probing.embedding_probe``), so
they measure exactly which input positions each output depends on. A model without an
``nn.Embedding`` is judged by the perturbation part alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from . import modelio
from .probing import (describe_culprit, embedding_probe, inspecting, recording_outputs, relative_difference)
from .results import TestResult

CAUSAL_BATCH, CAUSAL_SEQ = 2, 16
BATCH_SEQ = 16
BATCH = 4
# Relative change allowed where nothing may change at all: float noise of identical computations.
UNCHANGED_TOLERANCE = 1e-5
# A sequence alone vs inside a batch of four: different batch shapes may pick different kernels, which round
# differently (float32 about 1e-6; TF32 matmuls, which a notebook may switch on, about 1e-3). A model
# whose output depends on the batch size is off by far more.
BATCH_SIZE_TOLERANCE = 1e-2

# config.json's model_type (or architecture) words, checked in this order.
ENCODER_WORDS = ("encoder", "bert", "masked", "bidirectional", "mlm", "roberta")
DECODER_WORDS = ("decoder", "causal", "gpt", "llama", "autoregressive", "mistral", "qwen", "gemma", "phi")
CAUSAL_CLASS_WORDS = ("causallm", "gpt", "decoder", "lmhead")
CAUSAL_FIX = ("give every attention a causal mask: F.scaled_dot_product_attention(q, k, v, is_causal=True), "
              "nn.MultiheadAttention(..., attn_mask=torch.triu(torch.ones(L, L, dtype=torch.bool), 1)), or "
              "scores.masked_fill(upper triangle, float('-inf')) before the softmax")


@dataclass(frozen=True)
class ModelKind:
    """Whether each position may see only its past, and why we think so (one phrase)."""

    causal: bool
    reason: str


def model_kind(model: nn.Module, config: Any) -> ModelKind:
    """Declared in config.json (``model_type``), or on a Hugging Face ``model.config``, or detected.

    A model that declares nothing is taken as decoder-only: the tiers train and score it on
    next-token prediction, which only a causal model can do honestly.
    """
    hf_config = getattr(model, "config", None)
    for source, value in (("config.json", modelio.config_get(config, ("model_type", "architecture", "model_kind"))),
                          ("model.config", modelio.config_get(hf_config, "model_type") if hf_config else None)):
        if isinstance(value, str) and value.strip():
            text = value.lower()
            if "encoder" in text and "decoder" in text:
                return ModelKind(False, f"{source} declares model_type {value!r} (encoder-decoder)")
            if any(word in text for word in ENCODER_WORDS):
                return ModelKind(False, f"{source} declares model_type {value!r}, which sees the whole sequence")
            if any(word in text for word in DECODER_WORDS):
                return ModelKind(True, f"declared decoder-only ({source} model_type {value!r})")
    if hf_config is not None:
        if getattr(hf_config, "is_encoder_decoder", False):
            return ModelKind(False, "model.config.is_encoder_decoder is True")
        if getattr(hf_config, "is_decoder", False):
            return ModelKind(True, "declared decoder-only (model.config.is_decoder)")
        architectures = getattr(hf_config, "architectures", None) or []
        if any("CausalLM" in a or "LMHead" in a for a in architectures):
            return ModelKind(True, f"declared decoder-only (model.config.architectures {architectures})")
    name = type(model).__name__
    if any(word in name.lower() for word in CAUSAL_CLASS_WORDS):
        return ModelKind(True, f"detected decoder-only (class {name})")
    return ModelKind(True, "taken as decoder-only: config.json declares no model_type, and the tiers train next-token "
                           "prediction (set model_type to 'encoder-only' if the model is meant to see the whole sequence)")


# ==================================================================================== causality

def causality(model: nn.Module, config: Any) -> TestResult:
    kind = model_kind(model, config)
    if not kind.causal:
        return TestResult("causality", "skip", f"not judged: {kind.reason}")
    seq = min(CAUSAL_SEQ, modelio.max_seq_len(config))
    if seq < 2:
        return TestResult("causality", "skip", "max_seq_len is 1: there is no future to leak")
    ids = modelio.random_tokens(model, config, CAUSAL_BATCH, seq, seed=5)
    split = seq // 2
    with inspecting(model):
        changed = _change_after_replacing(model, config, ids, positions=slice(split, None))
        if not _finite(*changed):
            return TestResult("causality", "skip", NONFINITE)
        gradient = _future_gradients(model, config, ids)
    future_change = relative_difference(changed[0][:, :split], changed[1][:, :split])

    metrics: dict[str, float | int | None] = {
        "positions_checked": seq, "gradient_checked": int(gradient is not None),
        "future_change": future_change,
    }
    problems = []
    first_leak: int | None = None
    if gradient is not None:
        leaks, past = gradient
        metrics.update(leaking_positions=len(leaks), max_future_gradient=max((g for _, _, g in leaks), default=0.0),
                       max_past_gradient=past)
        if leaks:
            first_leak, furthest, size = leaks[0]
            problems.append(f"the logits at position {first_leak} depend on the input at position {furthest} "
                            f"(gradient {size:.2g}, must be exactly 0; {len(leaks)} of {seq - 1} positions see the future)")
    if future_change > UNCHANGED_TOLERANCE:
        problems.append(f"replacing the tokens at positions {split}..{seq - 1} changes the logits at positions "
                        f"0..{split - 1} by {future_change:.2g} of their size")
    metrics["first_leaking_position"] = first_leak
    if problems:
        where = _locate(model, config, ids, output_part=lambda out: out[:, first_leak or 0],
                        forbidden=lambda grad: grad[:, (first_leak or 0) + 1:])
        culprit = f"; the leak starts {where}" if where else ""
        return TestResult("causality", "fail",
                          f"the model sees the future ({kind.reason}): {'; '.join(problems)}{culprit}. Each position "
                          f"must see only itself and earlier positions: {CAUSAL_FIX}", metrics)
    how = "gradients exactly 0 and " if gradient is not None else "no nn.Embedding to take gradients at, so only "
    return TestResult("causality", "pass",
                      f"no position sees a later one over {seq} positions ({how}later tokens change no earlier "
                      f"logit); {kind.reason}", metrics)


def _future_gradients(model: nn.Module, config: Any, ids: torch.Tensor) -> tuple[list[tuple[int, int, float]], float] | None:
    """([(position t, furthest later position it depends on, gradient size)], largest past gradient).

    None when the gradient cannot be taken (no nn.Embedding, or the logits do not depend on it).
    """
    with torch.enable_grad(), embedding_probe(model, config) as captured:
        logits = modelio.forward_for(model, config, ids).float()
    if not captured or captured[0].shape[:2] != ids.shape or not logits.requires_grad:
        return None
    embedded = captured[0]
    direction = _direction(logits.shape[-1:], logits.device)
    leaks: list[tuple[int, int, float]] = []
    past = 0.0
    for t in range(ids.shape[1] - 1):
        (grad,) = torch.autograd.grad((logits[:, t] * direction).sum(), embedded, retain_graph=True, allow_unused=True)
        if grad is None:
            return None
        per_position = grad.abs().amax(dim=tuple(d for d in range(grad.ndim) if d != 1)).cpu()
        past = max(past, float(per_position[:t + 1].max()))
        future = per_position[t + 1:]
        if bool((future > 0).any()):
            leaks.append((t, t + 1 + int(future.nonzero().max()), float(future.max())))
    return (leaks, past) if past > 0 else None


# ============================================================================ batch independence

def batch_independence(model: nn.Module, config: Any) -> TestResult:
    seq = min(BATCH_SEQ, modelio.max_seq_len(config))
    ids = modelio.random_tokens(model, config, BATCH, seq, seed=6)
    with inspecting(model):
        together, others_changed = _change_after_replacing(model, config, ids, sequences=slice(1, None))
        with torch.no_grad():
            alone = torch.cat([modelio.forward_for(model, config, ids[i:i + 1]).float() for i in range(BATCH)])
        if not _finite(together, others_changed, alone):
            return TestResult("batch_independence", "skip", NONFINITE)
        gradient = _cross_sequence_gradient(model, config, ids)
    cross_change = relative_difference(together[0], others_changed[0])
    batch_size_difference = relative_difference(together, alone) if alone.shape == together.shape else float("inf")
    metrics: dict[str, float | int | None] = {
        "sequences": BATCH, "gradient_checked": int(gradient is not None),
        "cross_sequence_gradient": gradient, "cross_sequence_change": cross_change,
        "batch_size_difference": batch_size_difference,
    }
    problems = []
    if gradient:
        problems.append(f"the logits of sequence 0 have a gradient of {gradient:.2g} with respect to the other "
                        "sequences' embeddings (must be exactly 0)")
    if cross_change > UNCHANGED_TOLERANCE:
        problems.append(f"replacing the other sequences changes sequence 0's logits by {cross_change:.2g} of their size")
    if batch_size_difference > BATCH_SIZE_TOLERANCE:
        problems.append(f"each sequence run alone gives logits {batch_size_difference:.2g} (relative) away from the "
                        f"same sequence in a batch of {BATCH}")
    if problems:
        where = _locate(model, config, ids, output_part=lambda out: out[0], forbidden=lambda grad: grad[1:])
        culprit = f"; it starts {where}" if where else ""
        return TestResult("batch_independence", "fail",
                          f"a sequence's output depends on the other sequences in the batch: {'; '.join(problems)}"
                          f"{culprit}. Look for a mean/sum/softmax over dimension 0, BatchNorm over the batch, or a "
                          "reshape that merges batch and sequence before attention; results would change with the "
                          "batch size and leak between examples", metrics)
    return TestResult("batch_independence", "pass",
                      f"each of {BATCH} sequences depends on itself only (other sequences change nothing; alone vs "
                      f"batched differ by {batch_size_difference:.1g})", metrics)


def _cross_sequence_gradient(model: nn.Module, config: Any, ids: torch.Tensor) -> float | None:
    """The largest gradient of sequence 0's logits with respect to the other sequences' embeddings."""
    with torch.enable_grad(), embedding_probe(model, config) as captured:
        logits = modelio.forward_for(model, config, ids).float()
    if not captured or captured[0].shape[:2] != ids.shape or not logits.requires_grad:
        return None
    (grad,) = torch.autograd.grad((logits[0] * _direction(logits.shape[-1:], logits.device)).sum(), captured[0],
                                  allow_unused=True)
    return None if grad is None else float(grad[1:].abs().max())


# ====================================================================================== shared

def _change_after_replacing(model: nn.Module, config: Any, ids: torch.Tensor, *, positions: slice = slice(None),
                            sequences: slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits of ``ids``, logits after replacing ``ids[sequences, positions]`` by other tokens)."""
    vocab = modelio.vocab_size(model, config)
    generator = torch.Generator().manual_seed(7)
    replaced = ids.cpu().clone()
    shift = torch.randint(1, max(vocab, 2), replaced[sequences, positions].shape, generator=generator)
    replaced[sequences, positions] = (replaced[sequences, positions] + shift) % vocab
    with torch.no_grad():
        before = modelio.forward_for(model, config, ids).float()
        after = modelio.forward_for(model, config, modelio.to_model(replaced, model, config)).float()
    return before, after


NONFINITE = ("not judged: the logits contain NaN/Inf, so neither gradients nor changes can be compared "
             "(output_stability says where they come from)")


def _finite(*tensors: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def _direction(shape: torch.Size, device: torch.device) -> torch.Tensor:
    """A fixed random direction over the vocabulary: its gradient is zero only where there is no dependence."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(11)).to(device)


def _locate(model: nn.Module, config: Any, ids: torch.Tensor, *, output_part: Callable[[torch.Tensor], torch.Tensor],
            forbidden: Callable[[torch.Tensor], torch.Tensor]) -> str | None:
    """Where the first module whose ``output_part`` has a gradient in the ``forbidden`` embedding part is."""
    embedding = modelio.token_embedding(model, config)
    with torch.enable_grad(), embedding_probe(model, config) as captured, recording_outputs(model) as recorded:
        modelio.forward_for(model, config, ids)
    if not captured:
        return None
    for name, module, output in recorded:
        if module is embedding or output.ndim < 2 or output.shape[:2] != ids.shape or not output.requires_grad:
            continue
        part = output_part(output).float()
        (grad,) = torch.autograd.grad((part * _direction(part.shape, part.device)).sum(), captured[0],
                                      retain_graph=True, allow_unused=True)
        if grad is not None and float(forbidden(grad).abs().max()) > 0:
            return describe_culprit(name, module)
    return None
