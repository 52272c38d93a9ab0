"""What every check does around the user's model: put it in eval mode and back, hook it, name things.

``inspecting(model)``       eval mode for the duration; every module's mode and every ``.grad`` restored after
``embedding_probe(...)``     the token embedding's output as a leaf tensor whose gradient a check can read
``recording_outputs(...)``   every module's output during one forward, in the order the modules finish
``next_token_loss``          the cross-entropy of predicting token t+1 from position t
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from . import modelio

FIRST_FEW = 5  # how many offending parameters/inputs a message names
# Modules that act on each position (and each sequence) separately: when the first module whose output
# mixes positions is one of these, the mixing happened in its parent's own forward code.
POSITION_WISE = (nn.Linear, nn.LayerNorm, nn.Embedding, nn.Dropout, nn.GELU, nn.ReLU, nn.SiLU, nn.Tanh,
                 nn.Identity, getattr(nn, "RMSNorm", nn.LayerNorm))  # RMSNorm: torch >= 2.4


@contextmanager
def inspecting(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration; afterwards every module's mode and every ``.grad`` as found.

    Modes are restored per module (not ``model.train(flag)``) because a model may mix them, e.g. a
    frozen encoder kept in eval mode inside a model in train mode. Gradients are restored by object
    so a user's accumulated gradients survive the checks untouched.
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


@contextmanager
def embedding_probe(model: nn.Module, config: Any) -> Iterator[list[torch.Tensor]]:
    """Replace the token embedding's output by a leaf tensor that requires grad (the first call only).

    The list receives that leaf; the model goes on with a clone of it (a clone, so in-place additions
    such as ``x += pos`` still work). The gradient of any output with respect to the leaf says which
    input positions (and sequences) that output depends on. Empty when the model has no nn.Embedding.
    """
    embedding = modelio.token_embedding(model, config)
    captured: list[torch.Tensor] = []
    if embedding is None:
        yield captured
        return

    def replace(module: nn.Module, args: tuple, output: Any) -> Any:
        if captured or not isinstance(output, torch.Tensor) or not output.is_floating_point():
            return None
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf.clone()

    handle = embedding.register_forward_hook(replace)
    try:
        yield captured
    finally:
        handle.remove()


@contextmanager
def recording_outputs(model: nn.Module) -> Iterator[list[tuple[str, nn.Module, torch.Tensor]]]:
    """(name, module, first tensor of its output) for every sub-module, in the order they finish."""
    recorded: list[tuple[str, nn.Module, torch.Tensor]] = []
    handles = []
    for name, module in model.named_modules():
        if module is model:
            continue

        def keep(module: nn.Module, args: tuple, output: Any, name: str = name) -> None:
            tensor = first_tensor(output)
            if tensor is not None:
                recorded.append((name, module, tensor))

        handles.append(module.register_forward_hook(keep))
    try:
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


def first_tensor(value: Any) -> torch.Tensor | None:
    """A module's main output: the tensor itself, or the first floating tensor of a tuple/list/dict."""
    if isinstance(value, torch.Tensor):
        return value if value.is_floating_point() else None
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for item in value:
            if isinstance(item, torch.Tensor) and item.is_floating_point():
                return item
    return None


def parent_name(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else "(the model's own forward)"


def describe_culprit(name: str, module: nn.Module) -> str:
    """Where a problem first seen in ``module``'s output was made, in words."""
    if isinstance(module, POSITION_WISE):
        return (f"in the forward code of {parent_name(name)} (its {type(module).__name__} {name} is the first "
                "module whose output shows it, and that layer works on each position alone)")
    return f"in {name} ({type(module).__name__})"


def next_token_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of predicting token t+1 from position t (the whole sequence when seq == 1)."""
    if logits.ndim != 3:
        raise ValueError(f"expected logits of shape (batch, seq, vocab), got {tuple(logits.shape)} "
                         "(see shape_robustness)")
    if ids.shape[1] > 1:
        logits, ids = logits[:, :-1], ids[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), ids.reshape(-1))


def first_few(names: list[str]) -> str:
    shown = ", ".join(names[:FIRST_FEW])
    return shown + (f" and {len(names) - FIRST_FEW} more" if len(names) > FIRST_FEW else "")


def summarise(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()[:300]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def mb(n_bytes: float) -> float:
    return n_bytes / 1e6  # MB as tiers.models.size_mb counts them


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| relative to max |a| (0 for identical tensors; inf when a is all zero and b is not)."""
    diff = float((a.float() - b.float()).abs().max()) if a.numel() else 0.0
    scale = float(a.float().abs().max()) if a.numel() else 0.0
    if diff == 0.0:
        return 0.0
    return diff / scale if scale > 0 else float("inf")
