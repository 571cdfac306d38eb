"""Building blocks of TeCaFN: positional encoding, the paper's attention layer
(equations 2–3 and 11–12), the audio/video encoder (equations 1–4), the temporal
convolution (equation 5) and the Conv1D mappers of the two contrastive stages."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def masked_mean(x: Tensor, mask: Tensor, dim: int) -> Tensor:
    """Mean of ``x`` over ``dim`` counting only positions where ``mask`` is True.

    ``mask`` has ``x``'s shape without the feature axis. A slice with no real
    position gives zeros rather than NaN.
    """
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(dim) / w.sum(dim).clamp(min=1.0)


def padding_mask(mask: Tensor) -> Tensor:
    """``key_padding_mask`` for attention (True = ignore) from a True = real mask.

    A sequence with no real position keeps its first one, so that attention over
    it is defined (an all-ignored row would give NaN).
    """
    ignore = ~mask.bool()
    empty = ignore.all(dim=1)
    if empty.any():
        ignore = ignore.clone()
        ignore[empty, 0] = False
    return ignore


def sinusoidal_positions(length: int, dim: int, device: torch.device) -> Tensor:
    """The fixed sine/cosine positional embeddings of Vaswani et al. ``[length, dim]``."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim)
    )
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return table


class AttentionLayer(nn.Module):
    """One layer exactly as equations 2–3 (self) and 11–12 (cross) write it:

    ``ĥ = Attn(LN(h)) + LN(h)``, ``h' = FFN(LN(ĥ)) + LN(ĥ)``.

    The residual adds the *normalised* input, as the equations say. With ``kv``
    given, the (normalised) query attends to ``kv`` (text-centred cross attention,
    equation 10: ``MHA(X_t, X_m, X_m)``).
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(
        self, h: Tensor, mask: Tensor, kv: Tensor | None = None, kv_mask: Tensor | None = None
    ) -> Tensor:
        q = self.norm_attn(h)
        keys, keys_mask = (q, mask) if kv is None else (kv, kv_mask)
        assert keys_mask is not None
        attended, _ = self.attn(
            q, keys, keys, key_padding_mask=padding_mask(keys_mask), need_weights=False
        )
        h = self.drop(attended) + q
        normed = self.norm_ffn(h)
        return self.drop(self.ffn(normed)) + normed


class SequenceEncoder(nn.Module):
    """Audio/video extraction (equations 1–4): project to ``dim``, add positional
    embeddings, ``layers`` self-attention layers, then a one-layer unidirectional
    LSTM for temporal order. Padding is assumed at the end of each sequence, so
    the LSTM's outputs at real positions never see it."""

    def __init__(
        self, in_dim: int, dim: int, heads: int, layers: int, dropout: float, embed_dropout: float
    ) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, dim, bias=False)
        self.embed_drop = nn.Dropout(embed_dropout)
        self.layers = nn.ModuleList(AttentionLayer(dim, heads, dropout) for _ in range(layers))
        self.lstm = nn.LSTM(dim, dim, num_layers=1, batch_first=True)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.proj(x.float())
        h = h + sinusoidal_positions(h.shape[1], h.shape[2], h.device)
        h = self.embed_drop(h)
        for layer in self.layers:
            h = layer(h, mask)
        out, _ = self.lstm(h)
        return out


class TemporalConv(nn.Module):
    """Equation 5: a Conv1D over time remapping a modality to the common width.

    Padded positions are zeroed first so a kernel wider than one never mixes
    padding into real positions.
    """

    def __init__(self, in_dim: int, dim: int, kernel: int) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd to keep the length, got {kernel}")
        self.conv = nn.Conv1d(in_dim, dim, kernel_size=kernel, padding=kernel // 2, bias=False)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x.float() * mask.unsqueeze(-1).to(torch.float32)
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


class Mapper(nn.Module):
    """A Conv1D mapper (kernel 1, no bias, as the authors' code; the paper calls it
    depth-wise) into a joint space, per token. Pooling is left to the caller because
    the two fused-contrast variants pool over different axes."""

    def __init__(self, in_dim: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.conv = nn.Conv1d(in_dim, dim, kernel_size=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.drop(x.float()).transpose(1, 2)).transpose(1, 2)
