"""Model I/O that every test shares, so that any ``torch.nn.Module`` language model works.

A model takes a LongTensor of token ids ``(batch, seq)`` and returns logits ``(batch, seq, vocab)``
as a tensor, inside a tuple/list (the tensor whose last dimension is the vocabulary, so nanoGPT's
``(logits, loss)`` and Hugging Face's ``(loss, logits)`` both work), a dict (key ``logits``), or an
object with a ``.logits`` attribute (Hugging Face style).

A model whose forward returns only the last position at inference (nanoGPT:
``forward(idx, targets=None)`` returns ``logits[:, [-1], :]`` when ``targets`` is None) is called
again with ``targets=input_ids`` (or ``labels=``), which makes it return every position; the style
is remembered per model. Without such a parameter ``LastPositionOnlyError`` says why and what to change.

Token ids are checked against the token embedding's size on the CPU before they reach the model's
device: an out-of-range id on a GPU is a device-side assert that breaks the whole Colab session.

Config is a mapping (the parsed ``config.json``) or an object with attributes; every field is
optional here. Missing vocab size: the token embedding's ``num_embeddings``, else
``DEFAULT_VOCAB_SIZE``. Missing maximum length: ``DEFAULT_MAX_SEQ_LEN``.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any

import torch
from torch import nn

DEFAULT_VOCAB_SIZE = 1000
DEFAULT_MAX_SEQ_LEN = 128

VOCAB_FIELDS = ("vocab_size", "n_vocab", "num_tokens", "ntoken")
MAX_LEN_FIELDS = ("max_seq_len", "max_seq_length", "max_position_embeddings", "n_positions", "block_size",
                  "context_length", "n_ctx")
# forward() parameters that make a nanoGPT / Hugging Face style model compute every position.
TARGET_PARAMETERS = ("targets", "labels", "target")
# Names that mark an embedding as the token embedding when several have the vocabulary's size.
TOKEN_EMBEDDING_HINTS = ("tok", "wte", "word", "embed_tokens", "token")


class LastPositionOnlyError(ValueError):
    """The model returns logits for the last position only and cannot be asked for all of them."""


class TokenRangeError(ValueError):
    """Token ids would index past the token embedding (checked before they reach the model)."""


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


# ------------------------------------------------------------------------------------ structure

def token_embedding(model: nn.Module, config: Any = None) -> nn.Embedding | None:
    """The embedding that maps token ids to vectors (attribution, causality probes hook its output).

    ``get_input_embeddings()`` where the model has it (Hugging Face); else the ``nn.Embedding`` whose
    row count is the configured vocabulary (so a position embedding declared first is not taken),
    preferring a token-ish name when several match; else the first ``nn.Embedding``.
    """
    getter = getattr(model, "get_input_embeddings", None)
    if callable(getter):
        try:
            found = getter()
        except (NotImplementedError, AttributeError):
            found = None
        if isinstance(found, nn.Embedding):
            return found
    embeddings = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Embedding)]
    if not embeddings:
        return None
    vocab = config_get(config, VOCAB_FIELDS) if config is not None else None
    if vocab is not None:
        matching = [(name, m) for name, m in embeddings if m.num_embeddings == int(vocab)]
        if matching:
            embeddings = matching
    named = [m for name, m in embeddings if any(hint in name.lower() for hint in TOKEN_EMBEDDING_HINTS)]
    return named[0] if named else embeddings[0][1]


def embedding_of(model: nn.Module, config: Any = None) -> nn.Embedding | None:
    """Alias of ``token_embedding`` (the name earlier releases used)."""
    return token_embedding(model, config)


def vocab_size(model: nn.Module, config: Any) -> int:
    size = config_get(config, VOCAB_FIELDS)
    if size is not None:
        return int(size)
    embedding = token_embedding(model, config)
    return int(embedding.num_embeddings) if embedding is not None else DEFAULT_VOCAB_SIZE


def max_seq_len(config: Any) -> int:
    return int(config_get(config, MAX_LEN_FIELDS, DEFAULT_MAX_SEQ_LEN))


def device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def layer_name(model: nn.Module, module: nn.Module) -> str:
    return next((name for name, m in model.named_modules() if m is module), type(module).__name__) or "(model)"


# ------------------------------------------------------------------------------------ token ids

def check_token_ids(model: nn.Module, config: Any, ids: torch.Tensor) -> None:
    """Raise ``TokenRangeError`` when ``ids`` (on the CPU) would index past the token embedding."""
    embedding = token_embedding(model, config)
    if embedding is None or ids.numel() == 0:
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= embedding.num_embeddings:
        configured = config_get(config, VOCAB_FIELDS)
        why = (f"config.json says vocab_size {configured}, but the token embedding "
               f"{layer_name(model, embedding)} has {embedding.num_embeddings} rows"
               if configured is not None and int(configured) != embedding.num_embeddings
               else f"the token embedding {layer_name(model, embedding)} has {embedding.num_embeddings} rows")
        raise TokenRangeError(f"token id {high if high >= embedding.num_embeddings else low} is out of range: {why}. "
                              "The ids were stopped before reaching the model (on a GPU an out-of-range id is a "
                              "device-side assert that breaks the whole session): make vocab_size in config.json "
                              "equal to the embedding's size")


def to_model(ids: torch.Tensor, model: nn.Module, config: Any) -> torch.Tensor:
    """``ids`` validated on the CPU, then moved to the model's device."""
    check_token_ids(model, config, ids.cpu())
    return ids.to(device_of(model))


def random_tokens(model: nn.Module, config: Any, batch: int, seq: int, seed: int = 0) -> torch.Tensor:
    """Token ids in ``[0, vocab)`` on the model's device, reproducible for a given seed."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size(model, config), (batch, seq), generator=generator)
    return to_model(ids, model, config)


# ------------------------------------------------------------------------------------- outputs

def logits_of(output: Any, vocab: int | None = None) -> torch.Tensor:
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
        tensors = [item for item in output if isinstance(item, torch.Tensor)]
        if vocab is not None:
            for item in tensors:
                if item.ndim >= 2 and item.shape[-1] == vocab:
                    return item
        for item in tensors:  # a loss is 0-dimensional; logits are not
            if item.ndim >= 2:
                return item
        if tensors:
            return tensors[0]
    raise TypeError(
        f"cannot find logits in a model output of type {type(output).__name__}: return a tensor, a tuple "
        "holding the logits, a dict with key 'logits', or an object with a .logits attribute"
    )


# How each model asks for logits at every position: None (a plain call) or the name of the targets
# parameter to pass. Weak keys: a model that is deleted is forgotten.
_CALL_STYLE: "weakref.WeakKeyDictionary[nn.Module, str | None]" = weakref.WeakKeyDictionary()


def forward_parameters(model: nn.Module) -> set[str]:
    try:
        return set(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return set()


def call(model: nn.Module, input_ids: torch.Tensor, **kwargs: Any) -> Any:
    """``model(input_ids, **kwargs)``, passing ``targets=input_ids`` where the model needs it for every position."""
    style = _CALL_STYLE.get(model)
    if style:
        kwargs = {style: input_ids.contiguous(), **kwargs}  # nanoGPT calls targets.view(-1)
    return model(input_ids, **kwargs)


def forward(model: nn.Module, input_ids: torch.Tensor, vocab: int | None = None, **kwargs: Any) -> torch.Tensor:
    """Logits ``(batch, seq, vocab)`` for every position (see the module docstring for the styles)."""
    logits = logits_of(call(model, input_ids, **kwargs), vocab)
    if logits.ndim == 3 and logits.shape[1] == 1 and input_ids.ndim == 2 and input_ids.shape[1] > 1:
        if _CALL_STYLE.get(model):
            raise LastPositionOnlyError(f"{type(model).__name__} returns logits for the last position only even "
                                        f"when given {_CALL_STYLE[model]}=: return every position's logits")
        name = next((p for p in TARGET_PARAMETERS if p in forward_parameters(model)), None)
        if name is None:
            raise LastPositionOnlyError(
                f"{type(model).__name__} returns logits for the last position only (shape {tuple(logits.shape)} for "
                f"input {tuple(input_ids.shape)}) and its forward has no targets/labels parameter to ask for every "
                "position: return logits for every position at inference too (drop the [:, [-1], :] slicing), "
                "every test needs them")
        _CALL_STYLE[model] = name
        logits = logits_of(call(model, input_ids, **kwargs), vocab)
    return logits


def forward_for(model: nn.Module, config: Any, input_ids: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """``forward`` with the vocabulary from ``config``, so tuple outputs pick the right tensor."""
    return forward(model, input_ids, vocab_size(model, config), **kwargs)
