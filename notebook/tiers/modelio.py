"""Model I/O that every test shares, so that any ``torch.nn.Module`` language model works.

A model takes a LongTensor of token ids ``(batch, seq)`` and returns logits ``(batch, seq, vocab)``
as a tensor, the first element of a tuple/list, a dict (key ``logits``, else its first tensor), or
an object with a ``.logits`` attribute (Hugging Face style).

Config is a mapping (the parsed ``config.json``) or an object with attributes; every field is
optional here. Missing vocab size: the first ``nn.Embedding``'s ``num_embeddings``, else
``DEFAULT_VOCAB_SIZE``. Missing maximum length: ``DEFAULT_MAX_SEQ_LEN``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

DEFAULT_VOCAB_SIZE = 1000
DEFAULT_MAX_SEQ_LEN = 128

VOCAB_FIELDS = ("vocab_size", "n_vocab", "num_tokens", "ntoken")
MAX_LEN_FIELDS = ("max_seq_len", "max_seq_length", "max_position_embeddings", "n_positions", "block_size",
                  "context_length", "n_ctx")


def config_get(config: Any, names: tuple[str, ...] | str, default: Any = None) -> Any:
    """The first of ``names`` present in ``config`` (mapping or attributes), else ``default``."""
    if isinstance(names, str):
        names = (names,)
    for name in names:
        if isinstance(config, dict):
            if config.get(name) is not None:
                return config[name]
        elif getattr(config, name, None) is not None:
            return getattr(config, name)
    return default


def vocab_size(model: nn.Module, config: Any) -> int:
    size = config_get(config, VOCAB_FIELDS)
    if size is not None:
        return int(size)
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            return int(module.num_embeddings)
    return DEFAULT_VOCAB_SIZE


def max_seq_len(config: Any) -> int:
    return int(config_get(config, MAX_LEN_FIELDS, DEFAULT_MAX_SEQ_LEN))


def device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def embedding_of(model: nn.Module) -> nn.Embedding | None:
    """The token embedding: the first ``nn.Embedding`` (attribution and perturbation hook it)."""
    return next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)


def logits_of(output: Any) -> torch.Tensor:
    """Logits from whatever the model returned (see module docstring)."""
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "logits") and isinstance(output.logits, torch.Tensor):
        return output.logits
    if isinstance(output, dict):
        if isinstance(output.get("logits"), torch.Tensor):
            return output["logits"]
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    raise TypeError(
        f"cannot find logits in a model output of type {type(output).__name__}: return a tensor, a tuple "
        "whose first element is the logits, a dict with key 'logits', or an object with a .logits attribute"
    )


def forward(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    return logits_of(model(input_ids))


def random_tokens(model: nn.Module, config: Any, batch: int, seq: int, seed: int = 0) -> torch.Tensor:
    """Token ids in ``[0, vocab)`` on the model's device, reproducible for a given seed."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size(model, config), (batch, seq), generator=generator)
    return ids.to(device_of(model))
