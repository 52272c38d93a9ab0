"""Tier 1: structural checks that any language model should pass, on any device, in seconds.

Six tests, each ``test(model, config) -> TestResult`` (see ``tiers.results``):

1. ``shape_robustness``        logits are ``(batch, seq, vocab)`` for several batch sizes and lengths
2. ``gradient_flow``           one backward pass reaches every trainable parameter with a sane norm
3. ``output_stability``        logits are finite, in a plausible range, and deterministic in eval mode
4. ``parameter_initialization`` no NaN, all-zero, constant or exploding weight matrices
5. ``memory_footprint``        peak memory for a few input sizes and how it grows
6. ``inference_speed``         median forward latency and tokens/s after a warm-up

Needs only torch and numpy. scipy (normality of the logits) and psutil (process memory on CPU) are
optional: without them those sub-checks fall back as documented at each use and the message says so.

Every test runs the model in eval mode (dropout off, BatchNorm statistics frozen) so that results are
reproducible and the model's state is not changed by being tested; afterwards each module's
train/eval flag and each parameter's ``.grad`` are put back exactly as they were found.

Model I/O (where the logits are in the output, the vocabulary size, the device of the inputs) is
``tiers.modelio``'s job, so that every tier treats a model the same way.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from . import modelio
from .optional import INSTALL_COMMANDS, try_import
from .results import TestResult, TierResult, run_tier

# --------------------------------------------------------------------------------------------------
# Thresholds. Each is documented where it is used; they are module constants so a notebook user (or
# a test) can see and, if really needed, adjust them.
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

INIT_LARGE_STD = 1.5  # nn.Embedding's default init is N(0, 1): std up to ~1 is normal (warn above)
INIT_EXPLODING_STD = 10.0  # (fail above)
INIT_EXPLODING_ABS = 1e3  # any tensor, 1-D included (fail above)

MEMORY_MAX_SEQ = 256  # memory sizes are capped so the test stays cheap for long-context models
MEMORY_SUPERLINEAR_FACTOR = 2.0  # warn when activations grow > 2x faster than batch * seq**2

SPEED_BATCHES = (1, 4)
SPEED_MAX_SEQ = 128
SPEED_TIME_PER_BATCH_S = 0.3  # repetitions are chosen to fit this, between 1 and SPEED_MAX_REPS
SPEED_MAX_REPS = 5
SPEED_ABSURD_LATENCY_S = 10.0  # one forward slower than this is worth a warning on any device

_FIRST_FEW = 5  # how many offending parameters/inputs a message names


# --------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------


@contextmanager
def _inspecting(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration; afterwards every module's mode and every ``.grad`` as found.

    Modes are restored per module (not ``model.train(flag)``) because a model may mix them, e.g. a
    frozen encoder kept in eval mode inside a model in train mode. Gradients are restored by object
    so a user's accumulated gradients survive the gradient_flow test untouched.
    """
    modes = [(module, module.training) for module in model.modules()]
    grads = [(param, param.grad) for param in model.parameters()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
        for param, grad in grads:
            param.grad = grad


def _first_few(names: list[str]) -> str:
    shown = ", ".join(names[:_FIRST_FEW])
    return shown + (f" and {len(names) - _FIRST_FEW} more" if len(names) > _FIRST_FEW else "")


def _summarise(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()[:300]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _lengths(config: Any) -> tuple[int, ...]:
    """1, the middle and the configured maximum: the edges where position handling breaks."""
    longest = modelio.max_seq_len(config)
    return tuple(sorted({1, max(1, longest // 2), longest}))


def _mb(n_bytes: float) -> float:
    return n_bytes / 1e6  # MB as tiers.models.size_mb counts them


# --------------------------------------------------------------------------------------------------
# 1. shape_robustness
# --------------------------------------------------------------------------------------------------


def shape_robustness(model: nn.Module, config: Any) -> TestResult:
    """Logits must be ``(batch, seq, vocab)`` for batch 1, 2, 4 and length 1, max/2, max.

    Fail on any wrong shape or any input size that raises; the message names the input, the expected
    and the actual shape. Each input is tried separately so one bad size does not hide the others.
    """
    vocab = modelio.vocab_size(model, config)
    problems: list[str] = []
    checked = 0
    with _inspecting(model), torch.no_grad():
        for batch in SHAPE_BATCHES:
            for seq in _lengths(config):
                checked += 1
                ids = modelio.random_tokens(model, config, batch, seq, seed=checked)
                expected = (batch, seq, vocab)
                try:
                    actual = tuple(modelio.forward(model, ids).shape)
                except Exception as exc:  # noqa: BLE001 - report which input size breaks the model
                    problems.append(f"input (batch={batch}, seq={seq}) raised {_summarise(exc)}")
                    continue
                if actual != expected:
                    problems.append(f"input (batch={batch}, seq={seq}): expected logits {expected}, got {actual}")

    metrics = {"shapes_checked": checked, "shapes_failed": len(problems), "vocab_size": vocab,
               "max_seq_len": modelio.max_seq_len(config)}
    if problems:
        return TestResult("shape_robustness", "fail",
                          f"{len(problems)} of {checked} input shapes wrong: {'; '.join(problems[:3])}"
                          f"{' ...' if len(problems) > 3 else ''}. The model must return logits of shape "
                          "(batch, seq, vocab) for every position: look for [:, -1] slicing, a transpose or "
                          "reshape before the output layer, or a vocab_size in the config that differs from the "
                          "output layer's size.", metrics)
    return TestResult("shape_robustness", "pass",
                      f"{checked} input shapes give (batch, seq, {vocab}) logits "
                      f"(batch {', '.join(map(str, SHAPE_BATCHES))} x seq {', '.join(map(str, _lengths(config)))})",
                      metrics)


# --------------------------------------------------------------------------------------------------
# 2. gradient_flow
# --------------------------------------------------------------------------------------------------


def _next_token_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of predicting token t+1 from position t (the whole sequence when seq == 1)."""
    if logits.ndim != 3:
        raise ValueError(f"gradient_flow needs logits of shape (batch, seq, vocab), got {tuple(logits.shape)} "
                         "(see shape_robustness)")
    if ids.shape[1] > 1:
        logits, ids = logits[:, :-1], ids[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), ids.reshape(-1))


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
    with _inspecting(model):
        for _, param in trainable:
            param.grad = None  # measure this step's gradients alone, not what was accumulated before
        ids = modelio.random_tokens(model, config, GRAD_BATCH, seq, seed=1)
        loss = _next_token_loss(modelio.forward(model, ids), ids)
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
        failures.append(f"{len(missing)} trainable parameter(s) got no gradient: {_first_few(missing)} "
                        "(cut out of the graph: look for .detach(), torch.no_grad(), .item()/.numpy() or a layer "
                        "that is defined but never used in forward; freeze it with requires_grad_(False) if "
                        "that is intended)")
    if nonfinite:
        failures.append(f"{len(nonfinite)} parameter(s) have NaN/Inf gradients: {_first_few(nonfinite)} "
                        f"(loss {loss_value:.4g}; see output_stability and parameter_initialization)")
    if exploding:
        failures.append(f"{len(exploding)} parameter(s) have exploding gradient norms > {GRAD_EXPLODING:g}: "
                        f"{_first_few(exploding)} (largest {max(finite):.3g}; check the initialisation scale, "
                        "add normalisation or residual scaling, or clip gradients)")
    if failures:
        return TestResult("gradient_flow", "fail", "; ".join(failures), metrics)
    if vanishing:
        return TestResult("gradient_flow", "warn",
                          f"{len(vanishing)} parameter(s) have vanishing gradient norms < {GRAD_VANISHING:g}: "
                          f"{_first_few(vanishing)} (all-zero weights upstream or saturated activations; check "
                          "their initialisation and the layers feeding them)", metrics)
    return TestResult("gradient_flow", "pass",
                      f"all {len(trainable)} trainable parameters get gradients (norms "
                      f"{min(finite):.2e}..{max(finite):.2e}, median {statistics.median(finite):.2e}; "
                      f"loss {loss_value:.3f})", metrics)


# --------------------------------------------------------------------------------------------------
# 3. output_stability
# --------------------------------------------------------------------------------------------------


def _normality(values: torch.Tensor) -> tuple[dict[str, float], str, bool]:
    """(metrics, message, suspicious) of scipy's D'Agostino-Pearson test on a sample of logits.

    Informational for a trained model (its logits need not be normal), but at initialisation they are
    close to normal, and extreme skew or kurtosis means a few logits dwarf the rest: that warns.
    Without scipy the sub-check is skipped and the message says how to enable it.
    """
    scipy = try_import("scipy")
    stats = try_import("scipy.stats") if scipy is not None else None
    if stats is None:
        return ({"normality_checked": 0},
                f"normality sub-check skipped: scipy is not installed ({INSTALL_COMMANDS['scipy']})", False)
    if values.numel() < 20:
        return {"normality_checked": 0}, "normality sub-check skipped: fewer than 20 finite logits", False
    if float(values.std()) == 0.0:
        return {"normality_checked": 0}, "normality sub-check skipped: logits are constant", False
    generator = torch.Generator().manual_seed(0)
    index = torch.randperm(values.numel(), generator=generator)[:NORMALITY_SAMPLE]
    sample = values.flatten()[index.to(values.device)].double().cpu().numpy()
    skew = float(stats.skew(sample))
    kurtosis = float(stats.kurtosis(sample))  # excess kurtosis: 0 for a normal distribution
    p_value = float(stats.normaltest(sample).pvalue)
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
    """NaN/Inf (fail), an absurd logit range (warn), eval-mode determinism (warn), normality (info).

    Determinism: two forwards of the same input in eval mode must agree to float tolerance. A
    difference means randomness left in the forward (``F.dropout(x, training=True)``, sampling, a
    random mask): not a crash, hence warn, but it makes every evaluation unreproducible.
    """
    seq = min(STABILITY_SEQ, modelio.max_seq_len(config))
    with _inspecting(model), torch.no_grad():
        ids = modelio.random_tokens(model, config, STABILITY_BATCH, seq, seed=2)
        first = modelio.forward(model, ids).detach().float()
        second = modelio.forward(model, ids).detach().float()

    finite_mask = torch.isfinite(first)
    n_bad = int((~finite_mask).sum())
    n_nan = int(torch.isnan(first).sum())
    finite = first[finite_mask]
    same_shape = first.shape == second.shape
    deterministic = same_shape and torch.allclose(first, second, rtol=1e-4, atol=1e-5, equal_nan=True)
    both_finite = (first - second)[finite_mask & torch.isfinite(second)] if same_shape else first.new_empty(0)
    max_diff = float(both_finite.abs().max()) if both_finite.numel() else None
    metrics: dict[str, float | int | None] = {
        "nonfinite_count": n_bad,
        "nonfinite_fraction": n_bad / max(1, first.numel()),
        "logits_min": float(finite.min()) if finite.numel() else None,
        "logits_max": float(finite.max()) if finite.numel() else None,
        "logits_mean": float(finite.mean()) if finite.numel() else None,
        "logits_std": float(finite.std(correction=0)) if finite.numel() else None,
        "deterministic": int(deterministic),
        "determinism_max_abs_diff": max_diff,
    }
    normality_metrics, normality_message, normality_suspicious = _normality(finite)
    metrics.update(normality_metrics)

    if n_bad:
        return TestResult("output_stability", "fail",
                          f"logits contain {n_nan} NaN and {n_bad - n_nan} Inf values "
                          f"({100 * n_bad / first.numel():.1f}% of {first.numel()}): look for log/sqrt of "
                          "negative or zero values, division by zero, or overflowing weights "
                          "(see parameter_initialization); " + normality_message, metrics)
    warnings = []
    largest = max(abs(metrics["logits_min"] or 0.0), abs(metrics["logits_max"] or 0.0))
    if largest > LOGIT_ABSURD:
        warnings.append(f"logits reach |{largest:.3g}| > {LOGIT_ABSURD:g}: softmax saturates and float16 overflows "
                        "(check the initialisation scale; a final LayerNorm before the output layer bounds the logits)")
    if _identical_everywhere(first):
        warnings.append("every position of every sequence gets the same logits: the output ignores the input "
                        "(all-zero or constant weights, or a forward that never uses input_ids)")
    if not deterministic:
        difference = f"max |diff| {max_diff:.3g}" if max_diff is not None else "shapes or NaN positions differ"
        warnings.append(f"two eval-mode forwards of the same input differ ({difference}): "
                        "randomness is left in forward (F.dropout(..., training=True), sampling, random masks); "
                        "tie it to self.training")
    if normality_suspicious:
        warnings.append("a few logits dwarf the rest: " + normality_message)
    if warnings:
        return TestResult("output_stability", "warn", "; ".join(warnings), metrics)
    return TestResult("output_stability", "pass",
                      f"logits finite, range [{metrics['logits_min']:.3g}, {metrics['logits_max']:.3g}], std "
                      f"{metrics['logits_std']:.3g}, deterministic in eval mode; {normality_message}", metrics)


# --------------------------------------------------------------------------------------------------
# 4. parameter_initialization
# --------------------------------------------------------------------------------------------------


class _TensorStats(NamedTuple):
    name: str
    ndim: int
    numel: int
    mean: float
    std: float
    max_abs: float
    constant: bool
    finite: bool


def parameter_initialization(model: nn.Module, config: Any) -> TestResult:
    """Statistics of every parameter tensor, judged without running the model.

    Every tensor: NaN/Inf (fail); max |value| > ``INIT_EXPLODING_ABS`` (fail).
    Weight matrices only (ndim >= 2): constant (fail), all-zero (warn or fail, below),
    std > ``INIT_EXPLODING_STD`` (fail), std > ``INIT_LARGE_STD`` (warn). 1-D tensors are not judged for zero/constant because LayerNorm
    weights are legitimately all 1 and biases all 0 at initialisation.
    Zero/constant matrices: a constant non-zero matrix is always a bug (every unit computes the same
    thing and gets the same update, so symmetry is never broken): fail. An all-zero matrix can be
    intended (LoRA's B matrix, zero-initialised residual projections), so a few warn; fail when at
    least half of the weight matrices are zero or constant (the model cannot learn from there).
    """
    stats: list[_TensorStats] = []
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.numel() == 0:
                continue
            values = param.detach().float()
            finite = bool(torch.isfinite(values).all())
            # One device-to-host transfer per tensor for its statistics.
            mean, std, low, high = (torch.stack([values.mean(), values.std(correction=0), values.min(), values.max()])
                                    .cpu().tolist())
            stats.append(_TensorStats(name, param.ndim, param.numel(), mean, std, max(abs(low), abs(high)),
                                      low == high, finite))
    if not stats:
        return TestResult("parameter_initialization", "skip", "the model has no parameters: nothing to check", {})

    matrices = [s for s in stats if s.ndim >= 2 and s.finite]
    nonfinite = [s.name for s in stats if not s.finite]
    zero = [s.name for s in matrices if s.max_abs == 0.0]
    # min == max rather than std == 0: the std of a filled tensor is float rounding, not exactly 0.
    constant = [s.name for s in matrices if s.max_abs != 0.0 and s.constant and s.numel > 1]
    exploding = [s.name for s in stats
                 if s.finite and (s.max_abs > INIT_EXPLODING_ABS or (s.ndim >= 2 and s.std > INIT_EXPLODING_STD))]
    large = [s.name for s in matrices if INIT_LARGE_STD < s.std and s.name not in exploding]
    metrics: dict[str, float | int | None] = {
        "tensors_checked": len(stats),
        "matrices_checked": len(matrices),
        "total_parameters": sum(p.numel() for p in model.parameters()),
        "nonfinite_tensors": len(nonfinite),
        "zero_matrices": len(zero),
        "constant_matrices": len(constant),
        "exploding_tensors": len(exploding),
        "large_std_matrices": len(large),
        "max_abs_mean": max((abs(s.mean) for s in stats if s.finite), default=None),
        "max_std": max((s.std for s in matrices), default=None),
        "min_std": min((s.std for s in matrices), default=None),
        "max_abs_value": max((s.max_abs for s in stats if s.finite), default=None),
    }

    failures, warnings = [], []
    if nonfinite:
        failures.append(f"{len(nonfinite)} parameter tensor(s) contain NaN/Inf: {_first_few(nonfinite)} "
                        "(re-create the model; if loaded from a checkpoint, the checkpoint is corrupt)")
    if constant:
        failures.append(f"{len(constant)} weight matrix/matrices are constant: {_first_few(constant)} (every unit "
                        "starts identical and stays so; use a random init such as nn.init.normal_(w, std=0.02))")
    degenerate = len(zero) + len(constant)
    if zero:
        text = (f"{len(zero)} weight matrix/matrices are all zero: {_first_few(zero)} (no signal passes through "
                "them; use a random init unless intended, e.g. LoRA B or zero-initialised residual projections)")
        (failures if matrices and degenerate * 2 >= len(matrices) else warnings).append(text)
    if exploding:
        failures.append(f"{len(exploding)} tensor(s) have exploding values (std > {INIT_EXPLODING_STD:g} or "
                        f"|x| > {INIT_EXPLODING_ABS:g}): {_first_few(exploding)} (largest |x| "
                        f"{metrics['max_abs_value']:.3g}; scale the init down, e.g. std=0.02 or 1/sqrt(fan_in))")
    if large:
        warnings.append(f"{len(large)} weight matrix/matrices have std > {INIT_LARGE_STD:g}: {_first_few(large)} "
                        "(activations may grow layer by layer; consider std=0.02 or 1/sqrt(fan_in))")
    if failures:
        return TestResult("parameter_initialization", "fail", "; ".join(failures + warnings), metrics)
    if warnings:
        return TestResult("parameter_initialization", "warn", "; ".join(warnings), metrics)
    return TestResult("parameter_initialization", "pass",
                      f"{len(stats)} tensors ({metrics['total_parameters']:,} parameters) finite; {len(matrices)} "
                      f"weight matrices with std {metrics['min_std']:.3g}..{metrics['max_std']:.3g}, "
                      f"max |x| {metrics['max_abs_value']:.3g}", metrics)


# --------------------------------------------------------------------------------------------------
# 5. memory_footprint
# --------------------------------------------------------------------------------------------------


@contextmanager
def _counting_saved_activations(model: nn.Module) -> Iterator[list[int]]:
    """Count the bytes autograd saves for backward: the activation memory a training step keeps.

    Storages are counted once (views share them) and parameters are excluded (they are counted
    separately). This is exact, deterministic and works on every device, unlike CPU RSS.
    """
    param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: set[int] = set()
    total = [0]

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        try:
            storage = tensor.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # sparse/nested tensors have no plain storage
            key, size = id(tensor), tensor.numel() * tensor.element_size()
        if key not in param_storages and key not in seen:
            seen.add(key)
            total[0] += size
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield total


def _process_memory_mb() -> tuple[str, float | None]:
    """(source, MB) of this process's memory: psutil RSS, else the peak RSS from ``resource``.

    ``resource.getrusage`` reports the lifetime peak (kB on Linux, bytes on macOS) and is absent on
    Windows, where the process figure is simply omitted.
    """
    psutil = try_import("psutil")
    if psutil is not None:
        return "psutil_rss", _mb(psutil.Process().memory_info().rss)
    resource = try_import("resource")
    if resource is not None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return "resource_max_rss", _mb(peak if sys.platform == "darwin" else peak * 1024)
    return "none", None


def memory_footprint(model: nn.Module, config: Any) -> TestResult:
    """Peak memory of a grad-enabled forward at three sizes (small, medium, large) and its growth.

    Peak: on CUDA ``torch.cuda.max_memory_allocated`` (real). On CPU the allocator keeps no peak
    statistic and RSS after a forward no longer includes the freed activations, so the peak is
    estimated as parameters + buffers + activations saved for backward; process memory (psutil RSS,
    else ``resource`` peak RSS) is reported beside it.
    Rule (any device, on saved activations): transformer activations grow with batch * seq (linear
    layers) plus batch * seq**2 (attention scores); warn when they grow more than
    ``MEMORY_SUPERLINEAR_FACTOR`` times faster than batch * seq**2 between the smallest and largest
    size, e.g. a tensor quadratic in the batch or cubic in the sequence.
    """
    device = modelio.device_of(model)
    longest = min(modelio.max_seq_len(config), MEMORY_MAX_SEQ)
    sizes = {"small": (1, max(1, longest // 4)), "medium": (2, max(1, longest // 2)), "large": (4, longest)}
    static_bytes = (sum(p.numel() * p.element_size() for p in model.parameters())
                    + sum(b.numel() * b.element_size() for b in model.buffers()))
    on_cuda = device.type == "cuda"

    activations: dict[str, int] = {}
    peaks: dict[str, float] = {}
    with _inspecting(model), torch.enable_grad():
        for label, (batch, seq) in sizes.items():
            ids = modelio.random_tokens(model, config, batch, seq, seed=3)
            if on_cuda:
                _sync(device)
                torch.cuda.reset_peak_memory_stats(device)
            with _counting_saved_activations(model) as saved:
                logits = modelio.forward(model, ids)
            if on_cuda:
                _sync(device)
                peaks[label] = _mb(torch.cuda.max_memory_allocated(device))
            else:
                peaks[label] = _mb(static_bytes + saved[0])
            activations[label] = saved[0]
            del logits  # frees the graph: no backward is run, so no gradient is created

    source, process_mb = _process_memory_mb()
    token_ratio = (sizes["large"][0] * sizes["large"][1]) / (sizes["small"][0] * sizes["small"][1])
    quadratic_ratio = (sizes["large"][0] * sizes["large"][1] ** 2) / (sizes["small"][0] * sizes["small"][1] ** 2)
    activation_ratio = activations["large"] / activations["small"] if activations["small"] else None
    metrics: dict[str, float | int | None] = {
        **{f"peak_mb_{label}": peaks[label] for label in sizes},
        **{f"activation_mb_{label}": _mb(activations[label]) for label in sizes},
        "parameter_mb": _mb(static_bytes),
        "peak_growth": peaks["large"] / peaks["small"] if peaks["small"] else None,
        "activation_growth": activation_ratio,
        "token_growth": token_ratio,
        "on_cuda": int(on_cuda),
        "measured": int(on_cuda),  # 1: allocator peak; 0: parameters + saved-activation estimate
    }
    if process_mb is not None:
        metrics[f"process_{source}_mb"] = process_mb
    how = "CUDA max_memory_allocated" if on_cuda else "estimate: parameters + activations saved for backward"
    process_text = {"psutil_rss": f"process RSS {process_mb:.0f} MB (psutil)",
                    "resource_max_rss": f"process peak RSS {process_mb:.0f} MB (resource.getrusage; psutil not "
                                        "installed, so the current RSS is not available)",
                    "none": "process memory unavailable (no psutil, no resource module)"}[source]
    summary = (f"peak {peaks['small']:.2f} MB at {sizes['small']} -> {peaks['large']:.2f} MB at {sizes['large']} "
               f"(batch, seq) on {device} ({how}); {process_text}")
    if activation_ratio is None:
        return TestResult("memory_footprint", "pass", summary + "; nothing saved for backward at the smallest "
                          "size, growth not judged", metrics)
    if activation_ratio > MEMORY_SUPERLINEAR_FACTOR * quadratic_ratio:
        return TestResult("memory_footprint", "warn",
                          f"activation memory grows x{activation_ratio:.1f} from {sizes['small']} to {sizes['large']} "
                          f"(batch, seq), more than {MEMORY_SUPERLINEAR_FACTOR:g}x the x{quadratic_ratio:.0f} that "
                          "attention's batch*seq^2 explains: look for a tensor quadratic in the batch or cubic in "
                          "the sequence (e.g. a full (batch*seq) x (batch*seq) matrix); " + summary, metrics)
    return TestResult("memory_footprint", "pass",
                      summary + f"; activations x{activation_ratio:.1f} for x{token_ratio:.0f} tokens", metrics)


# --------------------------------------------------------------------------------------------------
# 6. inference_speed
# --------------------------------------------------------------------------------------------------


def inference_speed(model: nn.Module, config: Any) -> TestResult:
    """Median eval-mode latency and tokens/s for batch 1 and 4 after one warm-up forward.

    Repetitions adapt to the model (the warm-up time decides, 1 to ``SPEED_MAX_REPS``) so a large model
    on CPU does not blow the tier's time budget. Timings are reported, never asserted: the status is
    pass unless one forward takes longer than ``SPEED_ABSURD_LATENCY_S`` (warn).
    """
    device = modelio.device_of(model)
    seq = min(modelio.max_seq_len(config), SPEED_MAX_SEQ)
    metrics: dict[str, float | int | None] = {"seq_len": seq, "on_cuda": int(device.type == "cuda"),
                                              "cpu_threads": torch.get_num_threads()}
    parts, slow = [], []
    # no_grad, not inference_mode: a model that caches tensors in forward (rotary tables, masks) would
    # keep inference tensors that later break its training ("Inference tensors cannot be saved").
    with _inspecting(model), torch.no_grad():
        for batch in SPEED_BATCHES:
            ids = modelio.random_tokens(model, config, batch, seq, seed=4)
            start = time.perf_counter()
            modelio.forward(model, ids)  # warm-up: lazy initialisation, kernel selection, caches
            _sync(device)
            warmup = time.perf_counter() - start
            reps = max(1, min(SPEED_MAX_REPS, int(SPEED_TIME_PER_BATCH_S / max(warmup, 1e-6))))
            times = []
            for _ in range(reps):
                start = time.perf_counter()
                modelio.forward(model, ids)
                _sync(device)
                times.append(time.perf_counter() - start)
            latency = statistics.median(times)
            metrics[f"latency_ms_batch{batch}"] = 1e3 * latency
            metrics[f"tokens_per_s_batch{batch}"] = batch * seq / latency if latency > 0 else None
            parts.append(f"batch {batch}: {1e3 * latency:.2f} ms, {batch * seq / max(latency, 1e-9):,.0f} tokens/s")
            if latency > SPEED_ABSURD_LATENCY_S:
                slow.append(f"batch {batch} x seq {seq} takes {latency:.1f} s per forward")

    where = f"{device}" + (f" ({torch.get_num_threads()} threads)" if device.type == "cpu" else "")
    text = f"on {where}, seq {seq}: " + "; ".join(parts) + " (median after warm-up)"
    if slow:
        return TestResult("inference_speed", "warn",
                          "; ".join(slow) + f" (over {SPEED_ABSURD_LATENCY_S:g} s): move the model to a GPU "
                          "(Runtime > Change runtime type) or shrink it; " + text, metrics)
    return TestResult("inference_speed", "pass", text, metrics)


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
}


def run(model: nn.Module, config: Any) -> TierResult:
    """All Tier 1 tests on (model, config); a test that raises fails alone, the others still run."""
    return run_tier("tier1", TESTS, model, config)


__all__ = ["TESTS", "run", *TESTS]
