"""Tier 1: does the model run under mixed precision where it will be trained?

``mixed_precision``  one forward under ``torch.autocast`` per reduced-precision type the device offers
                     (CUDA: float16, and bfloat16 on Ampere or newer; CPU: bfloat16), compared with the
                     float32 forward. A raise (a hard-coded dtype, a float32 buffer multiplied by a half
                     tensor) or NaN/Inf (activations beyond float16's 65504) fails; a large difference
                     from float32 warns. A GPU without bfloat16 (Colab's T4) is said so in the message.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import devices, modelio
from .probing import inspecting, summarise
from .results import TestResult

PRECISION_BATCH, PRECISION_SEQ = 2, 32
# Relative RMS difference of the centred logits from float32. bfloat16 keeps 8 significant bits
# (0.4% per rounding), float16 11; a few layers of rounding stay well under 10%.
PRECISION_WARN_DIFFERENCE = 0.1

_NAMES = {torch.float16: "float16", torch.bfloat16: "bfloat16"}


def mixed_precision(model: nn.Module, config: Any) -> TestResult:
    device = modelio.device_of(model)
    dtypes, notes = devices.autocast_dtypes(device)
    ids = modelio.random_tokens(model, config, PRECISION_BATCH, min(PRECISION_SEQ, modelio.max_seq_len(config)),
                                seed=13)
    failures: list[str] = []
    differences: dict[str, float] = {}
    with inspecting(model), torch.no_grad():
        reference = _centred(modelio.forward_for(model, config, ids))
        if not bool(torch.isfinite(reference).all()):
            return TestResult("mixed_precision", "skip", "not judged: the float32 logits already contain NaN/Inf "
                              "(output_stability says where they come from)")
        for dtype in dtypes:
            name = _NAMES[dtype]
            try:
                with torch.autocast(device.type, dtype=dtype):
                    reduced = modelio.forward_for(model, config, ids)
            except Exception as exc:  # noqa: BLE001 - the message names what broke under autocast
                failures.append(f"the {name} autocast forward raised {summarise(exc)} (a tensor created or cast "
                                "with a fixed dtype meets one autocast produced: let autocast choose, or cast to "
                                "the other operand's .dtype)")
                continue
            if not bool(torch.isfinite(reduced).all()):
                why = ("float16 overflows past 65504: keep activations bounded with normalisation, and compute "
                       "softmax/attention scores in float32" if dtype == torch.float16 else
                       "bfloat16 keeps 8 significant bits: look for exp/log of large values or a softmax without "
                       "its maximum subtracted")
                failures.append(f"the {name} autocast forward gives NaN/Inf logits where float32 does not ({why})")
                continue
            centred = _centred(reduced)
            scale = float(reference.norm())
            differences[name] = float((centred - reference).norm()) / scale if scale > 0 else 0.0

    metrics: dict[str, float | int | None] = {f"{name}_difference": value for name, value in differences.items()}
    metrics.update(dtypes_checked=len(dtypes), on_cuda=int(device.type == "cuda"),
                   bfloat16_supported=int(torch.bfloat16 in dtypes))
    note = f" ({'; '.join(notes)})" if notes else ""
    if failures:
        return TestResult("mixed_precision", "fail", "; ".join(failures) + note, metrics)
    measured = ", ".join(f"{name} {value:.2%}" for name, value in differences.items())
    far = [name for name, value in differences.items() if value > PRECISION_WARN_DIFFERENCE]
    if far:
        return TestResult("mixed_precision", "warn",
                          f"under autocast the logits move far from float32 ({measured} relative RMS difference, over "
                          f"{PRECISION_WARN_DIFFERENCE:.0%}): look for large activations or sums of many small terms "
                          f"in reduced precision{note}", metrics)
    return TestResult("mixed_precision", "pass",
                      f"autocast forwards on {device.type} finite and close to float32 ({measured} relative RMS "
                      f"difference){note}", metrics)


def _centred(logits: torch.Tensor) -> torch.Tensor:
    """Logits minus their mean over the vocabulary: softmax ignores a constant shift, so should we."""
    values = logits.float()
    return values - values.mean(-1, keepdim=True)
