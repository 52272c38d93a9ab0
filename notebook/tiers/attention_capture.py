"""Attention probabilities ``(batch, heads, query, key)`` per attention layer, from one forward pass.

Sources, in this order (a layer found by an earlier source is not taken again from a later one):

1. every ``nn.MultiheadAttention``: hooks ask for ``need_weights=True, average_attn_weights=False``
   for this pass only;
2. modules that keep ``attn_weights`` after forward (unless they wrap an ``nn.MultiheadAttention``);
3. Hugging Face style: ``output_attentions=True`` is passed when forward takes it, and
   ``output.attentions`` is read (Hugging Face computes them on its eager attention path);
4. every ``F.scaled_dot_product_attention`` call, seen through a ``TorchFunctionMode``: the weights
   are recomputed from q, k, the mask, ``is_causal``, ``scale`` and ``enable_gqa`` as PyTorch's
   reference implementation does, for the capture only (the model's output still comes from the real,
   fused call). Each call is named after the innermost module running when it is made.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from . import modelio

SDPA_PARAMETERS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")


def capture_attention(model: nn.Module, config: Any, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Attention probabilities per layer name (CPU, float32) from one forward of ``input_ids``."""
    captured: dict[str, torch.Tensor] = {}
    running: list[str] = []
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            handles.append(module.register_forward_pre_hook(_request_weights, with_kwargs=True))
            handles.append(module.register_forward_hook(partial(_keep_weights, captured, name)))
        handles.append(module.register_forward_pre_hook(partial(_enter, running, name)))
        handles.append(module.register_forward_hook(partial(_leave, running)))
    kwargs = {"output_attentions": True} if "output_attentions" in modelio.forward_parameters(model) else {}
    sdpa = _SDPACapture(running)
    try:
        # With gradients disabled, nn.TransformerEncoderLayer may take a fused fast path that never
        # calls its MultiheadAttention (recent PyTorch avoids it when hooks are attached, older releases
        # do not), so no hook would fire; with gradients enabled every release runs the plain modules.
        with torch.enable_grad(), sdpa:
            output = modelio.call(model, input_ids, **kwargs)
    finally:
        for handle in handles:
            handle.remove()

    for name, module in model.named_modules():
        kept = getattr(module, "attn_weights", None)
        if isinstance(kept, torch.Tensor) and not any(isinstance(m, nn.MultiheadAttention) for m in module.modules()):
            _store(captured, name, kept)
    attentions = getattr(output, "attentions", None)
    if isinstance(attentions, (tuple, list)) and any(isinstance(a, torch.Tensor) for a in attentions):
        for index, kept in enumerate(attentions):
            if isinstance(kept, torch.Tensor):
                _store(captured, f"attentions[{index}]", kept)
        return captured
    covered = list(captured)
    for name, weights in sdpa.calls:
        if not any(name == layer or name.startswith(f"{layer}.") for layer in covered):
            _store(captured, name, weights)
    return captured


def sdpa_weights(query: torch.Tensor, key: torch.Tensor, attn_mask: torch.Tensor | None = None,
                 is_causal: bool = False, scale: float | None = None, enable_gqa: bool = False) -> torch.Tensor:
    """The softmax(q k^T * scale + mask) that ``F.scaled_dot_product_attention`` applies to v."""
    query, key = query.detach().float(), key.detach().float()
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        key = key.repeat_interleave(query.shape[-3] // key.shape[-3], dim=-3)
    queries, keys = query.shape[-2], key.shape[-2]
    factor = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = query @ key.transpose(-2, -1) * factor
    if is_causal:
        allowed = torch.ones(queries, keys, dtype=torch.bool, device=scores.device).tril(diagonal=0)
        scores = scores.masked_fill(~allowed, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask.float()
    return scores.softmax(dim=-1)


class _SDPACapture(TorchFunctionMode):
    """Sees every ``F.scaled_dot_product_attention`` call and keeps its recomputed weights."""

    def __init__(self, running: list[str]) -> None:
        super().__init__()
        self.running = running
        self.calls: list[tuple[str, torch.Tensor]] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            bound = {**dict(zip(SDPA_PARAMETERS, args)), **kwargs}
            with torch.no_grad():
                weights = sdpa_weights(bound["query"], bound["key"], bound.get("attn_mask"),
                                       bool(bound.get("is_causal", False)), bound.get("scale"),
                                       bool(bound.get("enable_gqa", False)))
            self.calls.append((self.running[-1] if self.running else "(model)", weights))
        return func(*args, **kwargs)


def _enter(running: list[str], name: str, module: nn.Module, args: tuple) -> None:
    running.append(name or "(model)")


def _leave(running: list[str], module: nn.Module, args: tuple, output: Any) -> None:
    if running:
        running.pop()


def _request_weights(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    # MultiheadAttention.forward(query, key, value, key_padding_mask, need_weights, attn_mask,
    # average_attn_weights, is_causal): move anything after value into kwargs, then override.
    names = ("key_padding_mask", "need_weights", "attn_mask", "average_attn_weights", "is_causal")
    kwargs = {**kwargs, **dict(zip(names, args[3:])), "need_weights": True, "average_attn_weights": False}
    return args[:3], kwargs


def _keep_weights(captured: dict[str, torch.Tensor], name: str, module: nn.Module, args: tuple, output: Any) -> None:
    if isinstance(output, tuple) and len(output) > 1 and isinstance(output[1], torch.Tensor):
        _store(captured, name, output[1])


def _store(captured: dict[str, torch.Tensor], name: str, weights: torch.Tensor) -> None:
    """Keep (batch, heads, query, key); a 3-D tensor is taken as (batch, query, key), one head."""
    if weights.dim() == 3:
        weights = weights.unsqueeze(1)
    if weights.dim() != 4:
        return
    key, call = name, 1
    while key in captured:  # a module called more than once per forward (shared weights)
        call += 1
        key = f"{name} (call {call})"
    captured[key] = weights.detach().float().cpu()
