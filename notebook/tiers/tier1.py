"""Tier 1: structural checks that any language model should pass, on its own device, in seconds.

Twelve tests, each ``test(model, config) -> TestResult`` (see ``tiers.results``):

1. ``shape_robustness``         logits are ``(batch, seq, vocab)`` and finite for several batch sizes and lengths
2. ``gradient_flow``            one backward pass reaches every trainable parameter with a sane norm
3. ``output_stability``         logits are finite, depend on the input, and are deterministic in eval mode
4. ``parameter_initialization`` no NaN, all-zero, constant or exploding weights; std * sqrt(fan_in) sane
                               (checks_init.py)
5. ``memory_footprint``         peak memory for a few input sizes and how it grows (checks_memory.py)
6. ``inference_speed``          median forward latency and tokens/s after a warm-up (checks_speed.py)
7. ``causality``                no position sees a later one (checks_causal.py)
8. ``batch_independence``       no sequence sees another one in its batch (checks_causal.py)
9. ``initial_loss``             an untrained model starts near ln(vocab) (checks_scale.py)
10. ``activation_scale``        activations do not multiply block after block (checks_scale.py)
11. ``memory_leak``             repeated forward/backward steps do not keep growing memory (checks_memory.py)
12. ``mixed_precision``         autocast forwards run and stay close to float32 (checks_precision.py)

Needs only torch and numpy; nothing heavier is imported on its path (the normality of the logits is
computed by ``tiers.normality``, not scipy). psutil (process memory on CPU) is optional: without it
that figure falls back as documented where it is used and the message says so.

Every test runs the model in eval mode (dropout off, BatchNorm statistics frozen) so that results are
reproducible and the model's state is not changed by being tested; afterwards each module's
train/eval flag and each parameter's ``.grad`` are put back exactly as they were found
(``probing.inspecting``). Every input is created on the model's device: move the model first
(``tiers.devices.place_model``).

Model I/O (where the logits are in the output, the vocabulary size, the device of the inputs) is
``tiers.modelio``'s job, so that every tier treats a model the same way.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Callable

import torch
from torch import nn

from . import modelio, normality
from .checks_causal import batch_independence, causality
from .checks_init import parameter_initialization
from .checks_memory import affordable_length, memory_footprint, memory_leak
from .checks_precision import mixed_precision
from .checks_scale import activation_scale, initial_loss
from .checks_speed import inference_speed
from .probing import first_few, inspecting, next_token_loss, summarise
from .results import TestResult, TierResult
from .running import run_tier

# --------------------------------------------------------------------------------------------------
# Thresholds. Each is documented where it is used; they are module constants so a notebook user (or
# a test) can see and, if really needed, adjust them. The checks_*.py modules keep their own.
# --------------------------------------------------------------------------------------------------

SHAPE_BATCHES = (1, 2, 4)

GRAD_BATCH, GRAD_SEQ = 2, 16
GRAD_VANISHING = 1e-7  # below: the parameter barely learns (warn)
GRAD_EXPLODING = 1e3  # above: one step would wreck the parameter (fail)

STABILITY_BATCH, STABILITY_SEQ = 2, 32
LOGIT_ABSURD = 1e4  # |logit| beyond this saturates softmax in float32 and overflows float16 (warn)
NORMALITY_SAMPLE = 5000  # logits sampled for the normality test (normaltest rejects anything on huge n)
NORMALITY_MAX_ABS_SKEW = 10.0  # beyond these a few logits dwarf the rest (warn)
NORMALITY_MAX_EXCESS_KURTOSIS = 100.0


def _lengths(config: Any) -> tuple[int, ...]:
    """1, the middle and the configured maximum: the edges where position handling breaks."""
    longest = modelio.max_seq_len(config)
    return tuple(sorted({1, max(1, longest // 2), longest}))


# --------------------------------------------------------------------------------------------------
# 1. shape_robustness
# --------------------------------------------------------------------------------------------------


def shape_robustness(model: nn.Module, config: Any) -> TestResult:
    """Logits must be ``(batch, seq, vocab)`` and finite for batch 1, 2, 4 and length 1, max/2, max.

    Fail on any wrong shape, NaN/Inf, or input size that raises; the message names the input, the
    expected and the actual shape. Each input is tried separately so one bad size does not hide the
    others. Lengths are capped where the activations of batch 4 at that length would not fit in a share
    of the free memory (``checks_memory.affordable_length``); the message says so.
    """
    vocab = modelio.vocab_size(model, config)
    configured = modelio.max_seq_len(config)
    longest, estimate_mb = affordable_length(model, config, max(SHAPE_BATCHES), configured)
    lengths = tuple(sorted({min(length, longest) for length in _lengths(config)}))
    problems: list[str] = []
    checked = nonfinite = 0
    with inspecting(model), torch.no_grad():
        for batch in SHAPE_BATCHES:
            for seq in lengths:
                checked += 1
                ids = modelio.random_tokens(model, config, batch, seq, seed=checked)
                expected = (batch, seq, vocab)
                try:
                    logits = modelio.forward_for(model, config, ids)
                except Exception as exc:  # noqa: BLE001 - report which input size breaks the model
                    problems.append(f"input (batch={batch}, seq={seq}) raised {summarise(exc)}")
                    continue
                actual = tuple(logits.shape)
                if actual != expected:
                    problems.append(f"input (batch={batch}, seq={seq}): expected logits {expected}, got {actual}")
                elif not bool(torch.isfinite(logits).all()):
                    nonfinite += 1
                    problems.append(f"input (batch={batch}, seq={seq}) gives NaN/Inf logits")

    metrics = {"shapes_checked": checked, "shapes_failed": len(problems), "shapes_nonfinite": nonfinite,
               "vocab_size": vocab, "max_seq_len": configured, "max_seq_checked": max(lengths),
               "seq_capped": int(longest < configured), "estimated_mb_at_max_len": estimate_mb}
    capped = (f"; lengths capped at {longest} because batch {max(SHAPE_BATCHES)} at {configured} would need about "
              f"{estimate_mb:,.0f} MB of activations" if longest < configured and estimate_mb else "")
    if problems:
        return TestResult("shape_robustness", "fail",
                          f"{len(problems)} of {checked} input shapes wrong: {'; '.join(problems[:3])}"
                          f"{' ...' if len(problems) > 3 else ''}. The model must return finite logits of shape "
                          "(batch, seq, vocab) for every position: look for [:, -1] slicing, a transpose or "
                          "reshape before the output layer, a vocab_size in the config that differs from the "
                          f"output layer's size, or a position table shorter than max_seq_len{capped}.", metrics)
    return TestResult("shape_robustness", "pass",
                      f"{checked} input shapes give finite (batch, seq, {vocab}) logits "
                      f"(batch {', '.join(map(str, SHAPE_BATCHES))} x seq {', '.join(map(str, lengths))}){capped}",
                      metrics)


# --------------------------------------------------------------------------------------------------
# 2. gradient_flow
# --------------------------------------------------------------------------------------------------


def gradient_flow(model: nn.Module, config: Any) -> TestResult:
    """One forward + backward of a next-token loss; a gradient norm per trainable parameter.

    fail: a trainable parameter gets no gradient at all (``grad is None``: it is cut out of the graph,
          by ``.detach()``, ``torch.no_grad``, an unused layer or an int cast), a non-finite gradient,
          or a norm above ``GRAD_EXPLODING`` (one optimiser step would destroy the weights).
    warn: a norm below ``GRAD_VANISHING``: connected but hardly learning (all-zero weights upstream,
          saturated activations); sometimes legitimate, hence not a failure.
    Frozen parameters (``requires_grad=False``) are counted, not judged.
    """
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    frozen = sum(1 for p in model.parameters() if not p.requires_grad)
    if not trainable:
        return TestResult("gradient_flow", "skip",
                          f"no trainable parameters ({frozen} frozen): nothing to check",
                          {"params_frozen": frozen})

    seq = min(GRAD_SEQ, modelio.max_seq_len(config))
    with inspecting(model):
        for _, param in trainable:
            param.grad = None  # measure this step's gradients alone, not what was accumulated before
        ids = modelio.random_tokens(model, config, GRAD_BATCH, seq, seed=1)
        loss = next_token_loss(modelio.forward_for(model, config, ids), ids)
        loss.backward()
        missing = [name for name, p in trainable if p.grad is None]
        connected = [(name, p.grad) for name, p in trainable if p.grad is not None]
        # One device-to-host transfer for all norms rather than one per parameter.
        norms = (torch.stack([g.detach().float().norm() for _, g in connected]).cpu().tolist()
                 if connected else [])
        loss_value = float(loss.detach())

    named = [(name, norm) for (name, _), norm in zip(connected, norms)]
    nonfinite = [name for name, n in named if not math.isfinite(n)]
    exploding = [name for name, n in named if math.isfinite(n) and n > GRAD_EXPLODING]
    vanishing = [name for name, n in named if n < GRAD_VANISHING]
    finite = [n for _, n in named if math.isfinite(n)]
    metrics: dict[str, float | int | None] = {
        "loss": loss_value,
        "grad_norm_min": min(finite) if finite else None,
        "grad_norm_max": max(finite) if finite else None,
        "grad_norm_median": statistics.median(finite) if finite else None,
        "params_checked": len(trainable),
        "params_no_grad": len(missing),
        "params_nonfinite": len(nonfinite),
        "params_exploding": len(exploding),
        "params_vanishing": len(vanishing),
        "params_frozen": frozen,
    }

    failures = []
    if missing:
        failures.append(f"{len(missing)} trainable parameter(s) got no gradient: {first_few(missing)} "
                        "(cut out of the graph: look for .detach(), torch.no_grad(), .item()/.numpy() or a layer "
                        "that is defined but never used in forward; freeze it with requires_grad_(False) if "
                        "that is intended)")
    if nonfinite:
        failures.append(f"{len(nonfinite)} parameter(s) have NaN/Inf gradients: {first_few(nonfinite)} "
                        f"(loss {loss_value:.4g}; see output_stability and parameter_initialization)")
    if exploding:
        failures.append(f"{len(exploding)} parameter(s) have exploding gradient norms > {GRAD_EXPLODING:g}: "
                        f"{first_few(exploding)} (largest {max(finite):.3g}; check the initialisation scale, "
                        "add normalisation or residual scaling, or clip gradients)")
    if failures:
        return TestResult("gradient_flow", "fail", "; ".join(failures), metrics)
    if vanishing:
        return TestResult("gradient_flow", "warn",
                          f"{len(vanishing)} parameter(s) have vanishing gradient norms < {GRAD_VANISHING:g}: "
                          f"{first_few(vanishing)} (all-zero weights upstream or saturated activations; check "
                          "their initialisation and the layers feeding them)", metrics)
    return TestResult("gradient_flow", "pass",
                      f"all {len(trainable)} trainable parameters get gradients (norms "
                      f"{min(finite):.2e}..{max(finite):.2e}, median {statistics.median(finite):.2e}; "
                      f"loss {loss_value:.3f})", metrics)


# --------------------------------------------------------------------------------------------------
# 3. output_stability
# --------------------------------------------------------------------------------------------------


def _normality(values: torch.Tensor) -> tuple[dict[str, float], str, bool]:
    """(metrics, message, suspicious) of D'Agostino-Pearson's test on a sample of logits.

    Informational for a trained model (its logits need not be normal), but at initialisation they are
    close to normal, and extreme skew or kurtosis means a few logits dwarf the rest: that warns.
    ``tiers.normality`` computes scipy's figures without scipy (whose import alone costs about a second).
    """
    if values.numel() < normality.MIN_SAMPLES:
        return ({"normality_checked": 0},
                f"normality sub-check skipped: fewer than {normality.MIN_SAMPLES} finite logits", False)
    if float(values.std()) == 0.0:
        return {"normality_checked": 0}, "normality sub-check skipped: logits are constant", False
    generator = torch.Generator().manual_seed(0)
    index = torch.randperm(values.numel(), generator=generator)[:NORMALITY_SAMPLE]
    skew, kurtosis, p_value = normality.normality(values.flatten()[index.to(values.device)])
    metrics = {"normality_checked": 1, "normality_p": p_value, "logits_skew": skew, "logits_excess_kurtosis": kurtosis}
    suspicious = abs(skew) > NORMALITY_MAX_ABS_SKEW or kurtosis > NORMALITY_MAX_EXCESS_KURTOSIS
    message = (f"logit distribution skew {skew:.2f}, excess kurtosis {kurtosis:.2f} "
               f"(normaltest p={p_value:.2g}{'; far from normal' if p_value < 1e-3 else ''})")
    return metrics, message, suspicious


def _identical_everywhere(logits: torch.Tensor) -> bool:
    """True when every (batch, position) row of finite logits equals the first one (to float tolerance)."""
    if logits.ndim < 2 or logits.shape[:-1].numel() < 2:
        return False
    rows = logits.reshape(-1, logits.shape[-1])
    return bool(torch.allclose(rows, rows[:1].expand_as(rows), rtol=1e-5, atol=1e-6))


def output_stability(model: nn.Module, config: Any) -> TestResult:
    """NaN/Inf (fail), logits that ignore the input (fail), eval-mode non-determinism (fail), an absurd
    logit range (warn), normality (info).

    Determinism: two forwards of the same input in eval mode must agree to float tolerance. A
    difference means randomness left in the forward (``F.dropout(x, training=True)``, sampling, a
    random mask): every evaluation, and every test here, becomes unreproducible.
    Input dependence: the same logits at every position of every sequence, or for two different
    inputs, mean the output never sees input_ids (all-zero or constant weights, a detached input).
    """
    seq = min(STABILITY_SEQ, modelio.max_seq_len(config))
    with inspecting(model), torch.no_grad():
        ids = modelio.random_tokens(model, config, STABILITY_BATCH, seq, seed=2)
        first = modelio.forward_for(model, config, ids).detach().float()
        second = modelio.forward_for(model, config, ids).detach().float()
        other_ids = modelio.random_tokens(model, config, STABILITY_BATCH, seq, seed=22)
        other = modelio.forward_for(model, config, other_ids).detach().float()

    finite_mask = torch.isfinite(first)
    n_bad = int((~finite_mask).sum())
    n_nan = int(torch.isnan(first).sum())
    finite = first[finite_mask]
    same_shape = first.shape == second.shape
    deterministic = same_shape and torch.allclose(first, second, rtol=1e-4, atol=1e-5, equal_nan=True)
    both_finite = (first - second)[finite_mask & torch.isfinite(second)] if same_shape else first.new_empty(0)
    max_diff = float(both_finite.abs().max()) if both_finite.numel() else None
    ignores_input = _identical_everywhere(first) or (
        first.shape == other.shape and not torch.equal(ids, other_ids)
        and torch.allclose(first, other, rtol=1e-5, atol=1e-6))
    metrics: dict[str, float | int | None] = {
        "nonfinite_count": n_bad,
        "nonfinite_fraction": n_bad / max(1, first.numel()),
        "logits_min": float(finite.min()) if finite.numel() else None,
        "logits_max": float(finite.max()) if finite.numel() else None,
        "logits_mean": float(finite.mean()) if finite.numel() else None,
        "logits_std": float(finite.std(correction=0)) if finite.numel() else None,
        "deterministic": int(deterministic),
        "determinism_max_abs_diff": max_diff,
        "input_dependent": int(not ignores_input),
    }
    normality_metrics, normality_message, normality_suspicious = _normality(finite)
    metrics.update(normality_metrics)

    if n_bad:
        return TestResult("output_stability", "fail",
                          f"logits contain {n_nan} NaN and {n_bad - n_nan} Inf values "
                          f"({100 * n_bad / first.numel():.1f}% of {first.numel()}): look for log/sqrt of "
                          "negative or zero values, division by zero, or overflowing weights "
                          "(see parameter_initialization); " + normality_message, metrics)
    failures, warnings = [], []
    if ignores_input:
        failures.append("the logits are the same for every input (every position of every sequence, and two different "
                        "batches, get the same logits): the output ignores input_ids (all-zero or constant weights, "
                        "a detached or overwritten embedding, or a forward that never uses input_ids)")
    if not deterministic:
        difference = f"max |diff| {max_diff:.3g}" if max_diff is not None else "shapes or NaN positions differ"
        failures.append(f"two eval-mode forwards of the same input differ ({difference}): "
                        "randomness is left in forward (F.dropout(..., training=True), sampling, random masks); "
                        "tie it to self.training")
    largest = max(abs(metrics["logits_min"] or 0.0), abs(metrics["logits_max"] or 0.0))
    if largest > LOGIT_ABSURD:
        warnings.append(f"logits reach |{largest:.3g}| > {LOGIT_ABSURD:g}: softmax saturates and float16 overflows "
                        "(check the initialisation scale; a final LayerNorm before the output layer bounds the logits)")
    if normality_suspicious:
        warnings.append("a few logits dwarf the rest: " + normality_message)
    if failures:
        return TestResult("output_stability", "fail", "; ".join(failures + warnings), metrics)
    if warnings:
        return TestResult("output_stability", "warn", "; ".join(warnings), metrics)
    return TestResult("output_stability", "pass",
                      f"logits finite, input-dependent, range [{metrics['logits_min']:.3g}, "
                      f"{metrics['logits_max']:.3g}], std {metrics['logits_std']:.3g}, deterministic in eval mode; "
                      f"{normality_message}", metrics)


# --------------------------------------------------------------------------------------------------
# The tier
# --------------------------------------------------------------------------------------------------

TESTS: dict[str, Callable[[nn.Module, Any], TestResult]] = {
    "shape_robustness": shape_robustness,
    "gradient_flow": gradient_flow,
    "output_stability": output_stability,
    "parameter_initialization": parameter_initialization,
    "memory_footprint": memory_footprint,
    "inference_speed": inference_speed,
    "causality": causality,
    "batch_independence": batch_independence,
    "initial_loss": initial_loss,
    "activation_scale": activation_scale,
    "memory_leak": memory_leak,
    "mixed_precision": mixed_precision,
}


def run(model: nn.Module, config: Any) -> TierResult:
    """All Tier 1 tests on (model, config); a test that raises fails alone, the others still run."""
    return run_tier("tier1", TESTS, model, config)


__all__ = ["TESTS", "run", *TESTS]
