"""Tier 2: what the model attends to, what drives its prediction, and how stable its output is.

``attention_patterns``  per-head attention entropy; collapsed or uniform heads are flagged (warn).
``attribution``         captum Integrated Gradients over the token embedding (skip without captum).
``robustness``          how much the output moves when 10% of the input tokens are replaced; and, replacing
                        one token, that a causal model's earlier positions do not move while its later
                        ones do (a model whose predictions never depend on earlier tokens fails).

Every test is ``test(model, config) -> TestResult``; ``run(model, config)`` runs them all.
``head_entropy_table(model, config)`` gives the per-head entropies for display (a pandas DataFrame
when pandas is installed, else the same columns as a dict of lists).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from . import attention_capture, modelio
from .checks_causal import model_kind
from .optional import skip_missing, try_import
from .results import TestResult, TierResult
from .running import run_tier

# --- attention_patterns --------------------------------------------------------------------------
ATTENTION_BATCH = 4
ATTENTION_SEQ = 32
# Entropy is normalised per query by log(number of keys that query may attend to), so 0 means all
# mass on one key and 1 means exactly uniform, whatever the sequence length. Under a causal mask
# query i sees i+1 keys; queries seeing fewer than MIN_KEYS keys are left out, because with 1-3
# keys the normalised entropy says little (with one key it is 0 by necessity, not by collapse).
MIN_KEYS = 4
# A head is flagged when at least HEAD_SHARE of its (batch, query) rows are below COLLAPSED or
# above UNIFORM. A randomly initialised model attends almost uniformly: the example model's heads
# sit 0.02-0.05 below 1, a nanoGPT-style model 64 wide with GPT-2's std-0.02 init only ~1e-4 below
# (scores spread by ~0.03). Scores spread by s lower the entropy by about s**2 / (2 ln keys), so
# "uniform" is reserved for spreads below ~0.01 (within 1e-5 of 1): what zeroed, missing or ~0-scaled
# query/key projections produce, to float rounding.
COLLAPSED_ENTROPY = 0.1
UNIFORM_ENTROPY = 0.99999
HEAD_SHARE = 0.9
MAX_NAMED_HEADS = 6

# --- attribution ---------------------------------------------------------------------------------
ATTRIBUTION_SEQ = 16
ATTRIBUTION_STEPS = 32
BASELINE_TOKEN = 0  # the reference input of Integrated Gradients: every token replaced by id 0
RECENT_TOKENS = 4
# Completeness: attributions should sum to F(input) - F(baseline). A gap above this share of that
# difference (plus an absolute floor for near-zero differences) means the path integral is poor.
DELTA_RELATIVE_TOLERANCE = 0.05
DELTA_ABSOLUTE_FLOOR = 1e-4

# --- robustness ----------------------------------------------------------------------------------
ROBUSTNESS_BATCH = 4
ROBUSTNESS_SEQ = 32
PERTURBED_FRACTION = 0.1
# Replacing 10% of the tokens should not move the (centred) logits at the untouched positions by
# as much as their own size; a model that does is chaotic (exploding activations, no normalisation).
ABSURD_RELATIVE_CHANGE = 1.0
INSENSITIVE_KL = 1e-10
ROBUSTNESS_SHIFT = 7  # the replaced middle token is the original id + 1 + 7 (mod vocab)
# A causal model's predictions before the replaced token must stay put (float noise only), and the ones
# after it must move: a model that uses its context moves them by far more than this.
CAUSAL_CHANGE_TOLERANCE = 1e-5
CONTEXT_CHANGE = 1e-6


# =================================================================================================
# attention_patterns
# =================================================================================================

@dataclass
class HeadEntropy:
    layer: str  # module name, e.g. "blocks.0.attn"
    head: int
    entropy: float  # mean normalised entropy over (batch, query) rows, 0 = one key, 1 = uniform
    collapsed_share: float  # share of rows with entropy < COLLAPSED_ENTROPY
    uniform_share: float  # share of rows with entropy > UNIFORM_ENTROPY

    @property
    def collapsed(self) -> bool:
        return self.collapsed_share >= HEAD_SHARE

    @property
    def uniform(self) -> bool:
        return self.uniform_share >= HEAD_SHARE

    @property
    def label(self) -> str:
        return f"{self.layer} head {self.head}"


def attention_patterns(model: nn.Module, config: Any) -> TestResult:
    weights = capture_attention(model, config)
    if not weights:
        return TestResult("attention_patterns", "skip",
                          "no attention weights could be extracted: the model has no nn.MultiheadAttention, makes no "
                          "F.scaled_dot_product_attention call, returns no output.attentions and keeps no "
                          "`attn_weights` after forward. If it computes attention another way, store the attention "
                          "probabilities as `self.attn_weights` (batch, heads, query, key) in the attention "
                          "module's forward, then re-run this cell")
    if not all(torch.isfinite(w).all() for w in weights.values()):
        bad = [name for name, w in weights.items() if not torch.isfinite(w).all()]
        return TestResult("attention_patterns", "fail",
                          f"attention weights contain NaN/Inf in {', '.join(bad)}: check the attention mask "
                          "(a query with every key masked gives NaN) and the score scaling")
    heads = [head for name, w in weights.items() for head in head_entropies(name, w)]
    if not heads:
        return TestResult("attention_patterns", "skip",
                          f"sequences are too short to judge attention: every query sees fewer than {MIN_KEYS} keys "
                          "(raise max_seq_len in the config)")

    entropies = [h.entropy for h in heads]
    collapsed = [h for h in heads if h.collapsed]
    uniform = [h for h in heads if h.uniform]
    metrics = {
        "layers": len(weights),
        "heads": len(heads),
        "mean_entropy": sum(entropies) / len(entropies),
        "min_head_entropy": min(entropies),
        "max_head_entropy": max(entropies),
        "collapsed_heads": len(collapsed),
        "uniform_heads": len(uniform),
    }
    summary = (f"{len(heads)} heads in {len(weights)} attention layers, normalised entropy "
               f"{metrics['min_head_entropy']:.2f}-{metrics['max_head_entropy']:.2f}")
    problems = []
    if collapsed:
        problems.append(
            f"{len(collapsed)} collapsed head(s) ({_name_heads(collapsed)}) put almost all attention on one key for "
            "most queries: a positional head (previous token, first token) can look like this after training, "
            "but in an untrained model or across all heads it points at a too-large score scale (missing "
            "1/sqrt(head_dim)) or a broken mask")
    if uniform:
        problems.append(
            f"{len(uniform)} uniform head(s) ({_name_heads(uniform)}) spread attention exactly evenly: query/key "
            "projections that are zero or unused, or scores multiplied by ~0 (even a freshly initialised model's "
            "scores vary more than that)")
    if problems:
        return TestResult("attention_patterns", "warn", f"{summary}; " + "; ".join(problems), metrics)
    return TestResult("attention_patterns", "pass", f"{summary}; none collapsed or uniform", metrics)


def capture_attention(model: nn.Module, config: Any) -> dict[str, torch.Tensor]:
    """Attention probabilities (batch, heads, query, key) per attention layer (see attention_capture.py)."""
    input_ids = modelio.random_tokens(model, config, ATTENTION_BATCH, min(modelio.max_seq_len(config), ATTENTION_SEQ))
    return attention_capture.capture_attention(model, config, input_ids)


def head_entropies(layer: str, weights: torch.Tensor) -> list[HeadEntropy]:
    """Per-head normalised entropy of one layer's (batch, heads, query, key) attention weights."""
    queries, keys = weights.shape[-2:]
    # A causal mask leaves exactly zero weight above the diagonal; then query i may attend to i+1 keys.
    causal = queries == keys and bool((weights.triu(diagonal=1) == 0).all())
    allowed = torch.arange(1, queries + 1) if causal else torch.full((queries,), keys)
    judged = allowed >= MIN_KEYS
    if not judged.any():
        return []
    # float64: a deficit of 1e-5 from exact uniformity must not drown in float32 rounding.
    entropy = torch.special.entr(weights.double()).sum(-1) / torch.log(allowed.double())  # (batch, heads, query)
    rows = entropy[..., judged].transpose(0, 1).reshape(weights.shape[1], -1)  # (heads, batch * query)
    return [
        HeadEntropy(layer, head, float(row.mean()), float((row < COLLAPSED_ENTROPY).float().mean()),
                    float((row > UNIFORM_ENTROPY).float().mean()))
        for head, row in enumerate(rows)
    ]


def head_entropy_table(model: nn.Module, config: Any) -> Any:
    """Per-head entropies for display: a pandas DataFrame, or a dict of columns without pandas."""
    heads = [head for name, w in capture_attention(model, config).items() for head in head_entropies(name, w)]
    columns = {
        "layer": [h.layer for h in heads],
        "head": [h.head for h in heads],
        "entropy": [round(h.entropy, 4) for h in heads],
        "collapsed": [h.collapsed for h in heads],
        "uniform": [h.uniform for h in heads],
    }
    pandas = try_import("pandas")
    return pandas.DataFrame(columns) if pandas is not None else columns


def _name_heads(heads: list[HeadEntropy]) -> str:
    named = ", ".join(h.label for h in heads[:MAX_NAMED_HEADS])
    return named + (f" and {len(heads) - MAX_NAMED_HEADS} more" if len(heads) > MAX_NAMED_HEADS else "")


# =================================================================================================
# attribution
# =================================================================================================

def attribution(model: nn.Module, config: Any) -> TestResult:
    embedding = modelio.token_embedding(model, config)
    if embedding is None:  # judged first: installing captum would not help such a model
        return TestResult("attribution", "skip",
                          "the model has no nn.Embedding, so there is no token embedding to attribute the "
                          "prediction to (Integrated Gradients here runs over the embedding layer's output)")
    captum_attr = try_import("captum.attr")
    if captum_attr is None:
        return skip_missing("attribution", "captum", "Tier 2 attribution (Integrated Gradients over the embedding)")

    input_ids = modelio.random_tokens(model, config, 1, min(modelio.max_seq_len(config), ATTRIBUTION_SEQ))
    baseline_ids = torch.full_like(input_ids, BASELINE_TOKEN)
    # Integrated Gradients runs over the token embedding's output: the layer whose rows are the vocabulary
    # (get_input_embeddings() where the model has it), not merely the first nn.Embedding declared.

    def last_position_logits(ids: torch.Tensor) -> torch.Tensor:
        return modelio.forward_for(model, config, ids)[:, -1, :]

    with torch.no_grad():
        target = int(last_position_logits(input_ids).argmax(-1)[0])  # the predicted next token
    integrated_gradients = captum_attr.LayerIntegratedGradients(last_position_logits, embedding)
    attributions, delta = integrated_gradients.attribute(input_ids, baselines=baseline_ids, target=target,
                                                         n_steps=ATTRIBUTION_STEPS, return_convergence_delta=True)
    per_token = attributions.detach().float().sum(-1)[0].cpu()  # each input token's share of the target logit
    delta_value = float(delta.detach().abs().max())
    total = float(per_token.sum())
    magnitude = float(per_token.abs().sum())
    # Completeness: sum of attributions = F(input) - F(baseline) + delta.
    output_change = total - float(delta.detach().flatten()[0])
    metrics = {
        "tokens": int(per_token.numel()),
        "target_token": target,
        "total_attribution": total,
        "abs_attribution": magnitude,
        "last_token_share": float(per_token[-1].abs()) / magnitude if magnitude else None,
        "recent_tokens_share": float(per_token[-RECENT_TOKENS:].abs().sum()) / magnitude if magnitude else None,
        "convergence_delta": delta_value,
        "relative_delta": delta_value / abs(output_change) if output_change else None,
        "steps": ATTRIBUTION_STEPS,
        "embedding_rows": embedding.num_embeddings,
    }

    if not (torch.isfinite(per_token).all() and torch.isfinite(delta).all()):
        return TestResult("attribution", "fail",
                          "Integrated Gradients produced NaN/Inf attributions: the gradient of the predicted logit "
                          "with respect to the embedding is not finite (look for log/sqrt/division of values that "
                          "can reach 0, or overflowing activations)", metrics)
    if magnitude == 0.0:
        return TestResult("attribution", "warn",
                          "every attribution is 0: the prediction at the last position does not depend on the token "
                          "embedding (is the embedding output used? is the graph detached?)", metrics)
    if delta_value > DELTA_RELATIVE_TOLERANCE * abs(output_change) + DELTA_ABSOLUTE_FLOOR:
        return TestResult("attribution", "warn",
                          f"large convergence delta {delta_value:.3g} (F(input) - F(baseline) = {output_change:.3g}): "
                          f"{ATTRIBUTION_STEPS} integration steps do not capture how the output changes along the "
                          "path, so the attributions are approximate; the model is very non-linear in its embedding "
                          "(saturating activations, huge scales)", metrics)
    return TestResult("attribution", "pass",
                      f"attributions finite, convergence delta {delta_value:.2g}; last token carries "
                      f"{metrics['last_token_share']:.0%} and the last {RECENT_TOKENS} carry "
                      f"{metrics['recent_tokens_share']:.0%} of the attribution", metrics)


# =================================================================================================
# robustness
# =================================================================================================

def robustness(model: nn.Module, config: Any) -> TestResult:
    vocab = modelio.vocab_size(model, config)
    clean_ids = modelio.random_tokens(model, config, ROBUSTNESS_BATCH, min(modelio.max_seq_len(config), ROBUSTNESS_SEQ))
    perturbed_ids, perturbed = perturb_tokens(clean_ids, vocab, PERTURBED_FRACTION)
    seq = clean_ids.shape[1]
    position = seq // 2  # one token replaced per sequence, in the middle: positions before and after it
    single_ids = clean_ids.clone()
    single_ids[:, position] = (single_ids[:, position] + 1 + ROBUSTNESS_SHIFT % max(vocab - 1, 1)) % vocab
    with torch.no_grad():
        clean = modelio.forward_for(model, config, clean_ids).detach().float()
        noisy = modelio.forward_for(model, config, modelio.to_model(perturbed_ids, model, config)).detach().float()
        single = modelio.forward_for(model, config, modelio.to_model(single_ids, model, config)).detach().float()
    if not (torch.isfinite(clean).all() and torch.isfinite(noisy).all() and torch.isfinite(single).all()):
        return TestResult("robustness", "fail",
                          "the model returned NaN/Inf logits on random or perturbed input: nothing can be measured; "
                          "fix the non-finite output first (Tier 1 names where it starts)")

    # KL(clean || perturbed) of the next-token distributions, and the change of the centred logits
    # relative to their size (centred because a constant shift of the logits changes nothing).
    kl = F.kl_div(noisy.log_softmax(-1), clean.log_softmax(-1), log_target=True, reduction="none").sum(-1)
    relative = _relative_change(clean, noisy)
    single_change = _relative_change(clean, single)  # (batch, seq)
    metrics = {
        "perturbed_fraction": float(perturbed.float().mean()),
        "kl_perturbed": float(kl[perturbed].mean()),
        "kl_unperturbed": float(kl[~perturbed].mean()),
        "relative_change_perturbed": float(relative[perturbed].mean()),
        "relative_change_unperturbed": float(relative[~perturbed].mean()),
        "perturbed_position": position,
        "change_before_perturbation": float(single_change[:, :position].max()) if position else 0.0,
        "change_after_perturbation": float(single_change[:, position + 1:].mean()) if position + 1 < seq else None,
    }
    kind = model_kind(model, config)
    failures = []
    if metrics["kl_perturbed"] < INSENSITIVE_KL and metrics["relative_change_perturbed"] < 1e-6:
        failures.append("the output does not change when tokens are replaced: the model ignores its input "
                        "(is the embedding output used? is the input overwritten?)")
    elif metrics["change_after_perturbation"] is not None and metrics["change_after_perturbation"] < CONTEXT_CHANGE:
        failures.append(f"replacing the token at position {position} changes no prediction after it: the model "
                        "ignores its context, each position sees only its own token (no attention or other mixing "
                        "across positions reaches the output) and it cannot learn language")
    if kind.causal and metrics["change_before_perturbation"] > CAUSAL_CHANGE_TOLERANCE:
        failures.append(f"replacing the token at position {position} changes the predictions before it by "
                        f"{metrics['change_before_perturbation']:.2g} of their size: the model sees the future "
                        f"({kind.reason}; Tier 1's causality test names where)")
    if failures:
        return TestResult("robustness", "fail", "; ".join(failures), metrics)
    if metrics["relative_change_unperturbed"] > ABSURD_RELATIVE_CHANGE:
        return TestResult("robustness", "warn",
                          f"absurd sensitivity: replacing {PERTURBED_FRACTION:.0%} of the tokens changes the logits at "
                          f"the untouched positions by {metrics['relative_change_unperturbed']:.1f}x their own size; "
                          "look for exploding activations or a missing normalisation", metrics)
    causal_text = (f"; one token replaced moves nothing before it and the predictions after it by "
                   f"{metrics['change_after_perturbation']:.2g}" if kind.causal and metrics["change_after_perturbation"]
                   is not None else "")
    return TestResult("robustness", "pass",
                      f"replacing {metrics['perturbed_fraction']:.0%} of the tokens: KL {metrics['kl_perturbed']:.2g} "
                      f"at the replaced positions, {metrics['kl_unperturbed']:.2g} elsewhere{causal_text}", metrics)


def _relative_change(clean: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
    """Per (batch, position): |centred change| / |centred clean logits|."""
    centred_clean = clean - clean.mean(-1, keepdim=True)
    centred_changed = changed - changed.mean(-1, keepdim=True)
    return (centred_changed - centred_clean).norm(dim=-1) / centred_clean.norm(dim=-1).clamp_min(1e-12)


def perturb_tokens(input_ids: torch.Tensor, vocab: int, fraction: float, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``input_ids`` with ``fraction`` of positions (at least one per row) replaced by a different token.

    Returns (perturbed ids, boolean mask of replaced positions), both on the input's device.
    """
    generator = torch.Generator().manual_seed(seed)
    batch, seq = input_ids.shape
    count = max(1, round(fraction * seq))
    positions = torch.rand(batch, seq, generator=generator).argsort(dim=-1)[:, :count]
    mask = torch.zeros(batch, seq, dtype=torch.bool).scatter_(1, positions, True)
    # Adding 1..vocab-1 modulo vocab guarantees a token different from the original one.
    shift = torch.randint(1, max(vocab, 2), (batch, seq), generator=generator)
    replaced = (input_ids.cpu() + shift) % vocab
    perturbed = torch.where(mask, replaced, input_ids.cpu())
    return perturbed.to(input_ids.device), mask.to(input_ids.device)


TESTS: dict[str, Callable[[Any, Any], TestResult]] = {
    "attention_patterns": attention_patterns,
    "attribution": attribution,
    "robustness": robustness,
}


def run(model: nn.Module, config: Any) -> TierResult:
    return run_tier("tier2", TESTS, model, config)
