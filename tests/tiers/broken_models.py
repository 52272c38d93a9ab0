"""Purpose-built broken (and oddly shaped but healthy) language models for the tier tests.

Each mirrors the example model's interface: ``model(input_ids (batch, seq)) -> logits (batch, seq,
vocab)``, with a config dict giving ``vocab_size`` and ``max_seq_len``. They are tiny so a whole tier
runs on each in milliseconds. ``TinyLM`` is healthy; every other class breaks exactly one thing (or,
for the output-style models, returns its logits in another container that the tiers must accept).
The models of the issue's zoo, shaped like what people export, are in ``zoo.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

VOCAB, D_MODEL, MAX_SEQ = 32, 16, 16


def config(**overrides: Any) -> dict[str, Any]:
    return {"vocab_size": VOCAB, "max_seq_len": MAX_SEQ, "d_model": D_MODEL, **overrides}


class TinyLM(nn.Module):
    """Healthy: embeddings, one causal attention layer and one MLP block (pre-LayerNorm residuals),
    final LayerNorm, output projection. Small enough that every tier runs on it in a second or two."""

    def __init__(self, vocab: int = VOCAB, d_model: int = D_MODEL, max_seq: int = MAX_SEQ, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.token_embedding = nn.Embedding(vocab, d_model)
        self.position_embedding = nn.Embedding(max_seq, d_model)
        self.ln_attn = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, 2, batch_first=True)
        self.ln_ff = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab, bias=False)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        self.eval()

    def hidden(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.token_embedding(input_ids) + self.position_embedding(positions)
        x = x + self.attend(self.ln_attn(x))
        return x + self.feed_forward(self.ln_ff(x))

    def attend(self, h: torch.Tensor) -> torch.Tensor:
        seq = h.shape[1]
        causal = torch.ones(seq, seq, dtype=torch.bool, device=h.device).triu(diagonal=1)
        return self.attn(h, h, h, attn_mask=causal, need_weights=False)[0]

    def feed_forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.ff(h)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.ln_f(self.hidden(input_ids)))


# ---- broken -------------------------------------------------------------------------------------


class WrongShapeModel(TinyLM):
    """Returns only the last position's logits (batch, vocab): a classic generation-code leak."""

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return super().forward(input_ids)[:, -1, :]


class NaNOutputModel(TinyLM):
    """Takes the square root of the logits: NaN wherever a logit is negative (about half of them)."""

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(super().forward(input_ids))


class DetachedLayerModel(TinyLM):
    """The MLP block's output is detached, so ``ff`` never gets a gradient."""

    def feed_forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.ff(h).detach()


class UnusedLayerModel(TinyLM):
    """Defines a projection it never calls in forward: its parameters get no gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.unused_proj = nn.Linear(D_MODEL, D_MODEL)
        nn.init.normal_(self.unused_proj.weight, std=0.02)


class ZeroInitModel(TinyLM):
    """Every parameter zero (LayerNorm included): nothing passes, every gradient vanishes."""

    def __init__(self) -> None:
        super().__init__()
        with torch.no_grad():
            for param in self.parameters():
                param.zero_()


class ConstantInitModel(TinyLM):
    """Every weight matrix filled with 0.01: all units identical, symmetry never breaks."""

    def __init__(self) -> None:
        super().__init__()
        with torch.no_grad():
            for param in self.parameters():
                if param.ndim >= 2:
                    param.fill_(0.01)


class ExplodingInitModel(TinyLM):
    """A healthy init scaled by 1e3 and no final LayerNorm: huge weights, logits and gradients."""

    def __init__(self) -> None:
        super().__init__()
        self.ln_f = nn.Identity()  # a LayerNorm would hide the explosion from the logits
        with torch.no_grad():
            for param in self.parameters():
                if param.ndim >= 2:
                    param.mul_(1e3)


class RaisingModel(TinyLM):
    """Its forward raises the shape error a mis-wired layer gives."""

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (8x16 and 32x16)")


class NondeterministicModel(TinyLM):
    """Applies dropout even in eval mode (``training=True`` hard-coded)."""

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(F.dropout(self.ln_f(self.hidden(input_ids)), p=0.5, training=True))


class SuperlinearMemoryModel(nn.Module):
    """Compares every token of the batch with every other through a (batch*seq)^2 x d tensor.

    The activations saved for backward grow with (batch * seq)^2: 16x the batch growth that attention
    (batch * seq^2) would explain between the memory test's smallest and largest inputs.
    """

    def __init__(self, vocab: int = VOCAB, d_model: int = D_MODEL) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.token_embedding = nn.Embedding(vocab, d_model)
        self.lm_head = nn.Linear(d_model, vocab, bias=False)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.lm_head.weight, std=0.02)
        self.eval()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(input_ids)
        flat = x.reshape(-1, x.shape[-1])
        pairwise = torch.tanh(torch.exp(flat[:, None, :] * flat[None, :, :]))  # both save (N^2, d)
        mixing = torch.softmax(pairwise.mean(-1), dim=-1)
        return self.lm_head(x + (mixing @ flat).reshape(x.shape))


# ---- healthy, other output containers --------------------------------------------------------------


class TupleOutputModel(TinyLM):
    """Returns ``(logits, hidden_states)``."""

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        hidden = self.hidden(input_ids)
        return self.lm_head(self.ln_f(hidden)), hidden


class DictOutputModel(TinyLM):
    """Returns ``{"hidden_states": ..., "logits": ...}`` (logits deliberately not first)."""

    def forward(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        hidden = self.hidden(input_ids)
        return {"hidden_states": hidden, "logits": self.lm_head(self.ln_f(hidden))}


@dataclass
class CausalLMOutput:
    """Hugging Face style output object."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None


class LogitsObjectModel(TinyLM):
    """Returns an object with a ``.logits`` attribute."""

    def forward(self, input_ids: torch.Tensor) -> CausalLMOutput:  # type: ignore[override]
        return CausalLMOutput(logits=super().forward(input_ids))


class DeviceRecordingModel(TinyLM):
    """Records the device of every input it is given (inputs must be on the model's device)."""

    def __init__(self) -> None:
        super().__init__()
        self.input_devices: list[torch.device] = []

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        self.input_devices.append(input_ids.device)
        return super().forward(input_ids)
