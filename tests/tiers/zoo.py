"""The zoo of issue 10: language models shaped like the ones people export, broken and healthy.

Broken ones break exactly one thing, the way an exported model really breaks:

* ``FutureLeakLM``      attention without a causal mask (the most common builder bug)
* ``BatchMixingLM``     a "norm" that takes its statistics over the batch, so sequences see each other
* ``WideStdOneLM``      ``nn.init.normal_(linear.weight)`` (std 1) on 512-wide layers
* ``ContextBlindLM``    embedding -> MLP -> logits with a 1,000-token vocabulary: never looks back

Healthy ones must pass every tier with no warning, however they are written:

* ``PositionFirstLM``   declares its position embedding before its token embedding
* ``SDPALM``            attention through ``F.scaled_dot_product_attention(is_causal=True)``
* ``LossLogitsLM``      returns the tuple ``(loss, logits)``
* ``HFStyleLM``         Hugging Face's interface: ``.config``, ``get_input_embeddings()``, an output object
                        with ``.logits``, ``output_attentions`` served by an eager path, SDPA otherwise

The nanoGPT-style export (a ``GPTConfig`` dataclass, ``forward(idx, targets=None)`` returning only the
last position at inference) is real files in ``exports/nanogpt``, loaded as the notebook loads them.

Each ``make_*`` function returns ``(model in eval mode, config dict)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

EXPORTS = Path(__file__).with_name("exports")
VOCAB, D_MODEL, HEADS, LAYERS, MAX_SEQ = 64, 32, 2, 2, 32


def zoo_config(**overrides: Any) -> dict[str, Any]:
    return {"model_type": "decoder-only", "vocab_size": VOCAB, "d_model": D_MODEL, "n_heads": HEADS,
            "n_layers": LAYERS, "max_seq_len": MAX_SEQ, **overrides}


def _gpt_init(model: nn.Module) -> None:
    """GPT-2's init for Linear/Embedding (std 0.02, zero biases); attention projections keep PyTorch's default."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding) or (isinstance(module, nn.Linear) and "qkv" not in name):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


class MLP(nn.Module):
    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.up = nn.Linear(d_model, d_ff)
        self.down = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class ManualCausalAttention(nn.Module):
    """Attention written out by hand, as builders export it; ``causal=False`` is the bug."""

    def __init__(self, d_model: int, heads: int, causal: bool = True) -> None:
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.attn_weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, width = x.shape
        q, k, v = (t.reshape(batch, seq, self.heads, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if self.causal:
            future = torch.ones(seq, seq, dtype=torch.bool, device=x.device).triu(diagonal=1)
            scores = scores.masked_fill(future, float("-inf"))
        weights = scores.softmax(dim=-1)
        self.attn_weights = weights.detach()
        return self.proj((weights @ v).transpose(1, 2).reshape(batch, seq, width))


class SDPAAttention(nn.Module):
    """Modern exported attention: one fused call, no weights kept."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, width = x.shape
        q, k, v = (t.reshape(batch, seq, self.heads, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(out.transpose(1, 2).reshape(batch, seq, width))


class Block(nn.Module):
    def __init__(self, attention: nn.Module, d_model: int, norm: nn.Module | None = None) -> None:
        super().__init__()
        self.norm1 = norm if norm is not None else nn.LayerNorm(d_model)
        self.attn = attention
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, 4 * d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DecoderLM(nn.Module):
    """A small pre-LayerNorm decoder; ``attention`` builds each block's attention module."""

    def __init__(self, attention: Any, *, vocab: int = VOCAB, d_model: int = D_MODEL, layers: int = LAYERS,
                 max_seq: int = MAX_SEQ, norm: Any = None, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.token_embedding = nn.Embedding(vocab, d_model)
        self.position_embedding = nn.Embedding(max_seq, d_model)
        self.blocks = nn.ModuleList(Block(attention(), d_model, norm() if norm else None) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab, bias=False)
        _gpt_init(self)
        self.eval()

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        return self.token_embedding(input_ids) + self.position_embedding(positions)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(input_ids)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


# ==================================================================================== broken

def make_future_leak() -> tuple[nn.Module, dict[str, Any]]:
    """Every attention sees the whole sequence: no causal mask anywhere."""
    return DecoderLM(lambda: ManualCausalAttention(D_MODEL, HEADS, causal=False)), zoo_config()


class BatchStatNorm(nn.Module):
    """A hand-written "normalisation" that centres each feature with its mean over the batch, then
    scales each position by its RMS: causal, but every sequence now depends on the others."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=0, keepdim=True)  # the bug: dim=0 is the batch, not the features
        return self.weight * centred / (centred.pow(2).mean(dim=-1, keepdim=True) + 1e-5).sqrt()


def make_batch_mixing() -> tuple[nn.Module, dict[str, Any]]:
    model = DecoderLM(lambda: ManualCausalAttention(D_MODEL, HEADS), norm=lambda: BatchStatNorm(D_MODEL))
    return model, zoo_config()


class WideStdOneLM(nn.Module):
    """512-wide blocks whose every Linear is ``nn.init.normal_(weight)``: std 1, 22x the input per layer."""

    WIDTH = 512

    def __init__(self, vocab: int = 256, layers: int = 2, max_seq: int = MAX_SEQ) -> None:
        super().__init__()
        torch.manual_seed(0)
        width = self.WIDTH
        self.token_embedding = nn.Embedding(vocab, width)
        self.position_embedding = nn.Embedding(max_seq, width)
        self.blocks = nn.ModuleList(Block(ManualCausalAttention(width, 8), width) for _ in range(layers))
        self.lm_head = nn.Linear(width, vocab, bias=False)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight)  # the bug: std 1 whatever the width
        self.eval()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.token_embedding(input_ids) + self.position_embedding(positions)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(x)


def make_wide_std_one() -> tuple[nn.Module, dict[str, Any]]:
    return WideStdOneLM(), zoo_config(vocab_size=256, d_model=WideStdOneLM.WIDTH, n_heads=8)


class ContextBlindLM(nn.Module):
    """embedding -> MLP -> logits: each position's prediction comes from its own token only."""

    def __init__(self, vocab: int = 1000, d_model: int = 64) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(vocab, d_model)
        self.mlp = MLP(d_model, 4 * d_model)
        self.norm = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab)
        _gpt_init(self)
        self.eval()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(input_ids)
        return self.lm_head(self.norm(x + self.mlp(x)))


def make_context_blind() -> tuple[nn.Module, dict[str, Any]]:
    return ContextBlindLM(), zoo_config(vocab_size=1000, d_model=64)


# =================================================================================== healthy

class PositionFirstLM(DecoderLM):
    """The same decoder with its position embedding declared before its token embedding."""

    def __init__(self) -> None:
        nn.Module.__init__(self)
        torch.manual_seed(0)
        self.position_embedding = nn.Embedding(MAX_SEQ, D_MODEL)  # declared first on purpose
        self.token_embedding = nn.Embedding(VOCAB, D_MODEL)
        self.blocks = nn.ModuleList(Block(ManualCausalAttention(D_MODEL, HEADS), D_MODEL) for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(D_MODEL)
        self.lm_head = nn.Linear(D_MODEL, VOCAB, bias=False)
        _gpt_init(self)
        self.eval()


def make_position_first() -> tuple[nn.Module, dict[str, Any]]:
    return PositionFirstLM(), zoo_config()


def make_sdpa() -> tuple[nn.Module, dict[str, Any]]:
    return DecoderLM(lambda: SDPAAttention(D_MODEL, HEADS)), zoo_config()


class LossLogitsLM(DecoderLM):
    """Returns ``(loss, logits)``: the next-token loss on its own input first, then the logits."""

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        logits = super().forward(input_ids)
        if input_ids.shape[1] > 1:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1))
        else:
            loss = logits.new_zeros(())
        return loss, logits


def make_loss_logits() -> tuple[nn.Module, dict[str, Any]]:
    return LossLogitsLM(lambda: ManualCausalAttention(D_MODEL, HEADS)), zoo_config()


@dataclass
class TinyHFConfig:
    """The fields a Hugging Face PretrainedConfig carries that the tiers read."""

    vocab_size: int = VOCAB
    n_positions: int = VOCAB  # the same size as the vocabulary: only get_input_embeddings() can tell them apart
    n_embd: int = D_MODEL
    n_head: int = HEADS
    n_layer: int = LAYERS
    model_type: str = "tiny-hf"
    is_decoder: bool = True
    architectures: tuple[str, ...] = ("TinyHFForCausalLM",)


@dataclass
class CausalLMOutputWithAttentions:
    """Hugging Face's ``CausalLMOutputWithPast``, reduced to what a forward returns here."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class HFAttention(nn.Module):
    """SDPA by default; the eager path (explicit softmax) only when attention weights are asked for."""

    def __init__(self, config: TinyHFConfig) -> None:
        super().__init__()
        self.heads = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, x: torch.Tensor, output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, seq, width = x.shape
        q, k, v = (t.reshape(batch, seq, self.heads, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        if not output_attentions:
            return self.proj(F.scaled_dot_product_attention(q, k, v, is_causal=True)
                             .transpose(1, 2).reshape(batch, seq, width)), None
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        future = torch.ones(seq, seq, dtype=torch.bool, device=x.device).triu(diagonal=1)
        weights = scores.masked_fill(future, torch.finfo(scores.dtype).min).softmax(dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(batch, seq, width)), weights


class HFBlock(nn.Module):
    def __init__(self, config: TinyHFConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = HFAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config.n_embd, 4 * config.n_embd)

    def forward(self, x: torch.Tensor, output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.attn(self.ln_1(x), output_attentions)
        x = x + attended
        return x + self.mlp(self.ln_2(x)), weights


class HFStyleLM(nn.Module):
    def __init__(self, config: TinyHFConfig | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.config = config or TinyHFConfig()
        self.wpe = nn.Embedding(self.config.n_positions, self.config.n_embd)  # declared first, same row count
        self.shared = nn.Embedding(self.config.vocab_size, self.config.n_embd)
        self.h = nn.ModuleList(HFBlock(self.config) for _ in range(self.config.n_layer))
        self.ln_f = nn.LayerNorm(self.config.n_embd)
        self.lm_head = nn.Linear(self.config.n_embd, self.config.vocab_size, bias=False)
        _gpt_init(self)
        self.eval()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_attentions: bool = False,
                return_dict: bool = True) -> CausalLMOutputWithAttentions:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.shared(input_ids) + self.wpe(positions)
        attentions = []
        for block in self.h:
            x, weights = block(x, output_attentions)
            attentions.append(weights)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if labels is not None:  # Hugging Face shifts the labels inside the model
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
        return CausalLMOutputWithAttentions(loss, logits, tuple(attentions) if output_attentions else None)


def make_hf_style() -> tuple[nn.Module, dict[str, Any]]:
    # config.json as an export carries it: no model_type, so the model's own config declares it.
    return HFStyleLM(), {"vocab_size": VOCAB, "n_positions": VOCAB}


def make_nanogpt() -> tuple[nn.Module, dict[str, Any]]:
    """The nanoGPT-style export, loaded from its folder exactly as the notebook's model cell does."""
    from tiers.loading import load_model

    loaded = load_model(str(EXPORTS / "nanogpt"), trust_code=True)
    return loaded.model, loaded.config


BROKEN = {"future_leak": make_future_leak, "batch_mixing": make_batch_mixing,
          "wide_std_one": make_wide_std_one, "context_blind": make_context_blind}
HEALTHY = {"position_first": make_position_first, "sdpa": make_sdpa, "loss_logits": make_loss_logits,
           "hf_style": make_hf_style, "nanogpt": make_nanogpt}
