"""Tier 1's ``parameter_initialization``: every parameter tensor judged without running the model.

NaN/Inf, constant or all-zero weight matrices, exploding values, and each projection's std * sqrt(fan_in)
(``checks_scale.projection_scales``), so that a layer initialised too large for its width is named.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn

from .checks_scale import FAN_IN_GAIN_FAIL, FAN_IN_GAIN_LOW, FAN_IN_GAIN_WARN, projection_scales
from .probing import first_few
from .results import TestResult

INIT_LARGE_STD = 1.5  # embeddings and raw matrices: nn.Embedding's default init is N(0, 1) (warn above)
INIT_EXPLODING_STD = 10.0  # (fail above)
INIT_EXPLODING_ABS = 1e3  # any tensor, 1-D included (fail above)


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
    std > ``INIT_EXPLODING_STD`` (fail). 1-D tensors are not judged for zero/constant because LayerNorm
    weights are legitimately all 1 and biases all 0 at initialisation.
    Projections (every weight matrix but embeddings): std * sqrt(fan_in) above ``FAN_IN_GAIN_FAIL``
    (fail) or ``FAN_IN_GAIN_WARN`` (warn), below ``FAN_IN_GAIN_LOW`` (warn), naming the layer: an
    absolute limit cannot tell std 1 on a 4-wide layer (fine) from std 1 on a 512-wide one (x22 per
    layer). Embeddings and other matrices: std > ``INIT_LARGE_STD`` (warn).
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
    # Projections are judged relative to their fan-in; the absolute std rule is left for embeddings.
    scales = [p for p in projection_scales(model) if math.isfinite(p.std) and p.std > 0 and p.name not in exploding]
    projection_names = {p.name for p in scales}
    too_large = sorted((p for p in scales if p.gain > FAN_IN_GAIN_WARN), key=lambda p: -p.gain)
    too_small = [p for p in scales if p.gain < FAN_IN_GAIN_LOW]
    large = [s.name for s in matrices if INIT_LARGE_STD < s.std and s.name not in exploding
             and s.name not in projection_names]
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
        "projections_checked": len(scales),
        "max_std_sqrt_fan_in": max((p.gain for p in scales), default=None),
        "min_std_sqrt_fan_in": min((p.gain for p in scales), default=None),
        "fan_in_outliers": len(too_large) + len(too_small),
    }

    failures, warnings = [], []
    if nonfinite:
        failures.append(f"{len(nonfinite)} parameter tensor(s) contain NaN/Inf: {first_few(nonfinite)} "
                        "(re-create the model; if loaded from a checkpoint, the checkpoint is corrupt)")
    if constant:
        failures.append(f"{len(constant)} weight matrix/matrices are constant: {first_few(constant)} (every unit "
                        "starts identical and stays so; use a random init such as nn.init.normal_(w, std=0.02))")
    degenerate = len(zero) + len(constant)
    if zero:
        text = (f"{len(zero)} weight matrix/matrices are all zero: {first_few(zero)} (no signal passes through "
                "them; use a random init unless intended, e.g. LoRA B or zero-initialised residual projections)")
        (failures if matrices and degenerate * 2 >= len(matrices) else warnings).append(text)
    if exploding:
        failures.append(f"{len(exploding)} tensor(s) have exploding values (std > {INIT_EXPLODING_STD:g} or "
                        f"|x| > {INIT_EXPLODING_ABS:g}): {first_few(exploding)} (largest |x| "
                        f"{metrics['max_abs_value']:.3g}; scale the init down, e.g. std=0.02 or 1/sqrt(fan_in))")
    if too_large:
        text = (f"{len(too_large)} projection(s) are initialised too large for their fan-in: "
                f"{first_few([p.describe() for p in too_large])}; each multiplies its input's scale by about that "
                "factor, so activations grow layer by layer: use nn.init.normal_(w, std=0.02) or std=1/sqrt(fan_in) "
                "(PyTorch's default init)")
        (failures if too_large[0].gain > FAN_IN_GAIN_FAIL else warnings).append(text)
    if too_small:
        warnings.append(f"{len(too_small)} projection(s) are initialised so small that the signal all but vanishes: "
                        f"{first_few([p.describe() for p in too_small])} (std * sqrt(fan_in) below {FAN_IN_GAIN_LOW:g})")
    if large:
        warnings.append(f"{len(large)} weight matrix/matrices have std > {INIT_LARGE_STD:g}: {first_few(large)} "
                        "(activations may grow layer by layer; consider std=0.02 or 1/sqrt(fan_in))")
    if failures:
        return TestResult("parameter_initialization", "fail", "; ".join(failures + warnings), metrics)
    if warnings:
        return TestResult("parameter_initialization", "warn", "; ".join(warnings), metrics)
    return TestResult("parameter_initialization", "pass",
                      f"{len(stats)} tensors ({metrics['total_parameters']:,} parameters) finite; {len(matrices)} "
                      f"weight matrices with std {metrics['min_std']:.3g}..{metrics['max_std']:.3g}, "
                      f"max |x| {metrics['max_abs_value']:.3g}" + (
                          f"; std * sqrt(fan_in) {metrics['min_std_sqrt_fan_in']:.2g}..{metrics['max_std_sqrt_fan_in']:.2g}"
                          f" over {len(scales)} projections" if scales else ""), metrics)
