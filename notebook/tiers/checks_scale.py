"""Tier 1: is the model's scale sane where it starts? Initial loss, weight scale by fan-in, activations by depth.

``initial_loss``      the next-token loss of an untrained model on random tokens is about ln(vocab); far above
                      it means confidently wrong predictions from the start (a broken init or output scale).
``activation_scale``  forward hooks measure the RMS of the hidden state entering and leaving each repeated
                      block (and the gain of each projection); activations that multiply block after block
                      overflow float16 and saturate softmax and LayerNorm.
``projection_scales`` each projection weight's std * sqrt(fan_in) (1 keeps the signal's scale; PyTorch's
                      default init gives 0.58, GPT-2's 0.02 at width 768 gives 0.55), used by
                      ``parameter_initialization`` in checks_init.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from . import modelio
from .probing import first_tensor, inspecting, next_token_loss
from .results import TestResult

INITIAL_BATCH, INITIAL_SEQ = 4, 64
# Random logits of std s add about s**2 / 2 nats to ln(vocab): 1 nat is s ~ 1.4 (warn), 3 nats is s ~ 2.5
# and 20x the perplexity of a uniform guess (fail).
INITIAL_LOSS_WARN_EXCESS = 1.0
INITIAL_LOSS_FAIL_EXCESS = 3.0

# std * sqrt(fan_in) of a projection: above 3 a layer triples the signal (warn), above 6 (fail) a few layers
# multiply it by hundreds. Below 0.01 the signal all but vanishes (warn; all-zero matrices are judged apart).
FAN_IN_GAIN_WARN = 3.0
FAN_IN_GAIN_FAIL = 6.0
FAN_IN_GAIN_LOW = 0.01

ACTIVATION_BATCH, ACTIVATION_SEQ = 2, 32
# RMS out / RMS in of one repeated block: a residual block adds a bounded update (~1.0-1.5). Projection
# gains (RMS out / RMS in of each weight layer) share FAN_IN_GAIN_WARN / FAN_IN_GAIN_FAIL.
BLOCK_GROWTH_WARN = 2.0
BLOCK_GROWTH_FAIL = 4.0
# Hidden states of LayerNorm-sized models stay of order 1; beyond this float16 and softmax are at risk.
ACTIVATION_RMS_FAIL = 1e3


# ================================================================================= initial_loss

def initial_loss(model: nn.Module, config: Any) -> TestResult:
    vocab = modelio.vocab_size(model, config)
    ids = modelio.random_tokens(model, config, INITIAL_BATCH, min(INITIAL_SEQ, modelio.max_seq_len(config)), seed=8)
    with inspecting(model), torch.no_grad():
        logits = modelio.forward_for(model, config, ids).float()
        loss = float(next_token_loss(logits, ids))
    expected = math.log(vocab)
    finite = logits[torch.isfinite(logits)]
    metrics: dict[str, float | int | None] = {
        "initial_loss": loss, "expected_loss": expected, "loss_excess": loss - expected,
        "logits_std": float(finite.std(correction=0)) if finite.numel() else None, "vocab_size": vocab,
    }
    if not math.isfinite(loss):
        return TestResult("initial_loss", "fail", f"the loss on random tokens is {loss} (see output_stability)", metrics)
    summary = f"next-token loss on random tokens {loss:.3f}, ln(vocab {vocab}) = {expected:.3f}"
    excess = loss - expected
    advice = (f"the model starts confidently wrong (logit std {metrics['logits_std']:.3g}): initialise the output layer "
              "small (std 0.02), put a LayerNorm before it, or scale tied embeddings by 1/sqrt(d_model). A model loaded "
              "with trained weights can be far from ln(vocab) on random tokens: then ignore this test")
    if excess > INITIAL_LOSS_FAIL_EXCESS:
        return TestResult("initial_loss", "fail", f"{summary}: {excess:.2f} nats above it; {advice}", metrics)
    if excess > INITIAL_LOSS_WARN_EXCESS:
        return TestResult("initial_loss", "warn", f"{summary}: {excess:.2f} nats above it; {advice}", metrics)
    return TestResult("initial_loss", "pass", f"{summary} (an untrained model should start there)", metrics)


# ============================================================================ projection_scales

@dataclass(frozen=True)
class ProjectionScale:
    name: str  # parameter name, e.g. "blocks.0.ff.0.weight"
    fan_in: int
    std: float

    @property
    def gain(self) -> float:
        return self.std * math.sqrt(self.fan_in)

    def describe(self) -> str:
        return f"{self.name} (std {self.std:.3g} x sqrt(fan_in {self.fan_in}) = {self.gain:.3g})"


def projection_scales(model: nn.Module) -> list[ProjectionScale]:
    """std * sqrt(fan_in) of every projection weight (not embeddings; each tensor once)."""
    embedding_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    found: dict[int, ProjectionScale] = {}
    with torch.no_grad():
        for module_name, module in model.named_modules():
            if isinstance(module, nn.Embedding):
                continue
            for param_name, param in module.named_parameters(recurse=False):
                if param.ndim < 2 or param.numel() == 0 or id(param) in found:
                    continue
                if id(param) in embedding_weights and not isinstance(module, nn.Linear):
                    continue  # an embedding shared by a raw matmul: judged as an embedding
                fan_in = _fan_in(module, param_name, param)
                std = float(param.detach().float().std(correction=0))
                name = f"{module_name}.{param_name}" if module_name else param_name
                found[id(param)] = ProjectionScale(name, fan_in, std)
    return list(found.values())


def _fan_in(module: nn.Module, param_name: str, param: torch.Tensor) -> int:
    # Hugging Face's GPT-2 Conv1D stores its weight as (in, out); everything else as (out, in, ...).
    if type(module).__name__ == "Conv1D" and param_name == "weight" and param.ndim == 2:
        return int(param.shape[0])
    return int(param[0].numel())


# ============================================================================= activation_scale

def activation_scale(model: nn.Module, config: Any) -> TestResult:
    blocks = repeated_blocks(model)
    projections = [(name, m) for name, m in model.named_modules()
                   if not isinstance(m, nn.Embedding) and isinstance(getattr(m, "weight", None), torch.Tensor)
                   and m.weight.ndim == 2 and not list(m.children())]
    ids = modelio.random_tokens(model, config, ACTIVATION_BATCH, min(ACTIVATION_SEQ, modelio.max_seq_len(config)),
                                seed=9)
    rms, nonfinite = _rms_in_and_out(model, config, ids, [*blocks, *projections])
    block_growth = [(name, _ratio(*rms[name])) for name, _ in blocks if name in rms]
    gains = sorted(((name, _ratio(*rms[name])) for name, _ in projections if name in rms), key=lambda item: -item[1])
    metrics: dict[str, float | int | None] = {
        "blocks": len(block_growth), "projections": len(gains),
        "max_block_growth": max((g for _, g in block_growth), default=None),
        "total_growth": math.prod(g for _, g in block_growth) if block_growth else None,
        "max_projection_gain": gains[0][1] if gains else None,
        "final_rms": rms[blocks[-1][0]][1] if blocks and blocks[-1][0] in rms else None,
    }
    if nonfinite:
        return TestResult("activation_scale", "fail", f"activations become NaN/Inf in the output of {nonfinite} "
                          "on random tokens: check the layers there (log/sqrt/division, overflowing weights)", metrics)
    profile = ""
    if block_growth:
        depths = [rms[block_growth[0][0]][0]] + [rms[name][1] for name, _ in block_growth]
        profile = "hidden-state RMS by block: " + " -> ".join(f"{value:.3g}" for value in depths[:9])
        profile += " ..." if len(depths) > 9 else ""
    # A block's growth is judged once the hidden state is of order 1: a GPT-2 style residual stream starts
    # at the embedding's 0.02 and may double a few times on its way to LayerNorm-sized values.
    judged = [(name, growth) for name, growth in block_growth if rms[name][1] > 1.0]
    worst_block = max(judged, key=lambda item: item[1]) if judged else None
    largest_rms = max((after for _, after in rms.values()), default=0.0)
    top_gain = f"; the largest projection gain is {gains[0][0]} (x{gains[0][1]:.3g})" if gains else ""
    advice = ("scale the weights by 1/sqrt(fan_in) (nn.init.normal_(w, std=0.02) or PyTorch's default init) and "
              "normalise each block's input (pre-LayerNorm)")
    problems, warnings = [], []
    if gains and gains[0][1] > FAN_IN_GAIN_FAIL:
        problems.append(f"{gains[0][0]} multiplies the RMS of its input by {gains[0][1]:.3g}")
    elif gains and gains[0][1] > FAN_IN_GAIN_WARN:
        warnings.append(f"{gains[0][0]} multiplies the RMS of its input by {gains[0][1]:.3g}")
    if worst_block and worst_block[1] > BLOCK_GROWTH_FAIL:
        problems.append(f"activations grow x{worst_block[1]:.3g} through {worst_block[0]}")
    elif worst_block and worst_block[1] > BLOCK_GROWTH_WARN:
        warnings.append(f"activations grow x{worst_block[1]:.3g} through {worst_block[0]}")
    if largest_rms > ACTIVATION_RMS_FAIL:
        problems.append(f"activations reach an RMS of {largest_rms:.3g}")
    where = f" ({profile})" if profile else ""
    if problems:
        return TestResult("activation_scale", "fail", f"{'; '.join(problems + warnings)}{where}: {advice}", metrics)
    if warnings:
        return TestResult("activation_scale", "warn", f"{'; '.join(warnings)}{where}: {advice}", metrics)
    what = profile or (f"no repeated blocks; {len(gains)} projections" if gains
                       else "no repeated blocks or projections to measure")
    return TestResult("activation_scale", "pass", f"{what}{top_gain}", metrics)


def repeated_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The transformer's layers: the children of the ModuleList/Sequential of >= 2 same-class modules
    holding the most parameters (e.g. ``blocks``, ``transformer.h``, ``model.layers``)."""
    best: list[tuple[str, nn.Module]] = []
    best_size = -1
    for name, module in model.named_modules():
        if not isinstance(module, (nn.ModuleList, nn.Sequential)):
            continue
        children = list(module.named_children())
        if len(children) < 2 or len({type(child) for _, child in children}) != 1:
            continue
        if isinstance(children[0][1], (nn.Linear, nn.Embedding)) or not list(children[0][1].parameters()):
            continue
        size = sum(p.numel() for p in module.parameters())
        if size > best_size:
            prefix = f"{name}." if name else ""
            best, best_size = [(f"{prefix}{child_name}", child) for child_name, child in children], size
    return best


def _rms_in_and_out(model: nn.Module, config: Any, ids: torch.Tensor,
                    modules: list[tuple[str, nn.Module]]) -> tuple[dict[str, tuple[float, float]], str | None]:
    """({name: (RMS of the module's input, RMS of its output)}, the first module whose output is NaN/Inf)."""
    measured: dict[str, list[torch.Tensor]] = {}
    nonfinite: list[str] = []
    handles = []
    for name, module in modules:
        def before(module: nn.Module, args: tuple, name: str = name) -> None:
            tensor = first_tensor(args)
            if tensor is not None:
                measured[name] = [_rms(tensor)]

        def after(module: nn.Module, args: tuple, output: Any, name: str = name) -> None:
            tensor = first_tensor(output)
            if tensor is not None and len(measured.get(name, ())) == 1:
                measured[name].append(_rms(tensor))
                if not nonfinite and not bool(torch.isfinite(tensor).all()):
                    nonfinite.append(name)

        handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    try:
        with inspecting(model), torch.no_grad():
            modelio.forward_for(model, config, ids)
    finally:
        for handle in handles:
            handle.remove()
    pairs = {name: values for name, values in measured.items() if len(values) == 2}
    # One device-to-host transfer for every figure rather than two per module.
    numbers = torch.stack([v for values in pairs.values() for v in values]).cpu().tolist() if pairs else []
    return {name: (numbers[2 * i], numbers[2 * i + 1]) for i, name in enumerate(pairs)}, (nonfinite or [None])[0]


def _rms(tensor: torch.Tensor) -> torch.Tensor:
    values = tensor.detach().float()
    values = torch.where(torch.isfinite(values), values, torch.zeros_like(values))
    return values.pow(2).mean().sqrt()


def _ratio(before: float, after: float) -> float:
    return after / before if before > 0 else (math.inf if after > 0 else 1.0)
