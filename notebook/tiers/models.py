"""The example model: a small decoder-only transformer, so the notebook runs with nothing downloaded.

Its config has the fields Transformer Builder exports. ``TinyDecoder.from_config`` checks them and
names a missing or invalid field in its error. Attention asks for no weights and passes
``is_causal=True``, so PyTorch takes its fused scaled-dot-product path (flash / memory-efficient
kernels on a GPU); Tier 2 asks ``nn.MultiheadAttention`` for the weights itself, through hooks. It is
also Tier 3's speed reference, which must be a fair, fast baseline.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

EXAMPLE_CONFIG: dict[str, Any] = {
    "model_type": "decoder-only",
    "vocab_size": 256,
    "d_model": 64,
    "n_heads": 4,
    "n_layers": 2,
    "d_ff": 128,
    "max_seq_len": 64,
    "dropout": 0.0,
}
REQUIRED_FIELDS = ("vocab_size", "d_model", "n_heads", "n_layers", "max_seq_len")


class ConfigError(ValueError):
    """A config that cannot build a model; the message names the field at fault."""


def validate_config(config: Mapping[str, Any], source: str = "config") -> None:
    for name in REQUIRED_FIELDS:
        if name not in config:
            raise ConfigError(f"{source}: missing field {name!r} (required: {', '.join(REQUIRED_FIELDS)})")
        value = config[name]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{source}: field {name!r} must be a positive integer, got {value!r}")
    if config["d_model"] % config["n_heads"]:
        raise ConfigError(f"{source}: field 'd_model' ({config['d_model']}) must be divisible by "
                          f"'n_heads' ({config['n_heads']})")


class DecoderBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.ln2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.shape[1]
        causal = torch.triu(torch.ones(seq, seq, dtype=torch.bool, device=x.device), diagonal=1)
        h = self.ln1(x)
        # is_causal=True tells PyTorch the mask is causal, so without weights it can use the fused kernels.
        attended, _ = self.attn(h, h, h, attn_mask=causal, need_weights=False, is_causal=True)
        x = x + attended
        return x + self.ff(self.ln2(x))


class TinyDecoder(nn.Module):
    def __init__(self, vocab_size: int, d_model: int, n_heads: int, n_layers: int, max_seq_len: int,
                 d_ff: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.max_seq_len = max_seq_len
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(max_seq_len, d_model)
        self.blocks = nn.ModuleList(DecoderBlock(d_model, n_heads, d_ff or 4 * d_model, dropout)
                                    for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], source: str = "config") -> "TinyDecoder":
        validate_config(config, source)
        return cls(config["vocab_size"], config["d_model"], config["n_heads"], config["n_layers"],
                   config["max_seq_len"], config.get("d_ff"), float(config.get("dropout", 0.0)))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        seq = input_ids.shape[1]
        if seq > self.max_seq_len:
            raise ValueError(f"sequence length {seq} exceeds max_seq_len {self.max_seq_len}")
        positions = torch.arange(seq, device=input_ids.device)
        x = self.token_embedding(input_ids) + self.position_embedding(positions)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def example_model(seed: int = 0) -> tuple[TinyDecoder, dict[str, Any]]:
    """The shipped example: (model in eval mode, its config), deterministic for a seed."""
    torch.manual_seed(seed)
    config = dict(EXAMPLE_CONFIG)
    return TinyDecoder.from_config(config).eval(), config


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def size_mb(model: nn.Module) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6 if model else math.nan
