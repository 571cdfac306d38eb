"""Transformer building blocks shared by the cross-attention modules and the predictor.

Pre-norm blocks as in I-JEPA's ViT (``x + attn(norm(x))``, ``x + mlp(norm(x))``),
attention through ``scaled_dot_product_attention`` so the fused GPU kernels are used.
The attention width is ``heads * head_dim`` with ``head_dim = dim // heads`` unless
given: Table 1 pairs 768 with 10 heads and 1024 with 12, neither divisible, so the
inner width is 760 and 1020 there (see the README).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """I-JEPA's initialisation: truncated normal linears, zero biases, unit norms."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _heads(x: Tensor, heads: int) -> Tensor:
    """[B, L, heads*hd] -> [B, heads, L, hd]."""
    b, n, _ = x.shape
    return x.view(b, n, heads, -1).transpose(1, 2)


def _merge(x: Tensor) -> Tensor:
    """[B, heads, L, hd] -> [B, L, heads*hd]."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def key_mask(mask: Tensor | None) -> Tensor | None:
    """A [B, Lk] True=real key mask as an SDPA mask; an all-padding row attends to all
    its keys rather than producing NaNs."""
    if mask is None:
        return None
    mask = mask.bool()
    mask = mask | ~mask.any(dim=-1, keepdim=True)
    return mask[:, None, None, :]


class SelfAttention(nn.Module):
    def __init__(
        self, dim: int, heads: int, head_dim: int | None = None, qkv_bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.heads = heads
        inner = heads * (head_dim or dim // heads)
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        self.proj = nn.Linear(inner, dim)
        self.dropout = dropout

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        q, k, v = (_heads(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask(mask), dropout_p=p)
        return self.proj(_merge(out))


class CrossAttention(nn.Module):
    """Queries from ``x``, keys and values from ``context`` of width ``kv_dim``."""

    def __init__(
        self, dim: int, heads: int, kv_dim: int, head_dim: int | None = None,
        qkv_bias: bool = True, dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.heads = heads
        inner = heads * (head_dim or dim // heads)
        self.q = nn.Linear(dim, inner, bias=qkv_bias)
        self.kv = nn.Linear(kv_dim, 2 * inner, bias=qkv_bias)
        self.proj = nn.Linear(inner, dim)
        self.dropout = dropout

    def forward(self, x: Tensor, context: Tensor, mask: Tensor | None = None) -> Tensor:
        q = _heads(self.q(x), self.heads)
        k, v = (_heads(t, self.heads) for t in self.kv(context).chunk(2, dim=-1))
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask(mask), dropout_p=p)
        return self.proj(_merge(out))


class MLP(nn.Module):
    def __init__(self, dim: int, ratio: float, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class Block(nn.Module):
    """A ViT block: self-attention and MLP, each pre-normed with a residual."""

    def __init__(
        self, dim: int, heads: int, mlp_ratio: float = 4.0, head_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, head_dim, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio, dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))

    def rescale(self, layer: int) -> None:
        """I-JEPA's ``fix_init_weight``: deeper residual branches start smaller."""
        for linear in (self.attn.proj, self.mlp.fc2):
            linear.weight.data.div_(math.sqrt(2.0 * layer))


class CrossBlock(nn.Module):
    """The t2i block of the paper: self-attention over image tokens, cross-attention to
    the text tokens, MLP — each pre-normed with a residual."""

    def __init__(
        self, dim: int, heads: int, kv_dim: int, mlp_ratio: float = 4.0,
        head_dim: int | None = None, dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, head_dim, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.cross = CrossAttention(dim, heads, kv_dim, head_dim, dropout=dropout)
        self.norm3 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio, dropout)

    def forward(self, x: Tensor, text: Tensor, text_mask: Tensor | None) -> Tensor:
        x = x + self.attn(self.norm1(x))
        x = x + self.cross(self.norm2(x), text, text_mask)
        return x + self.mlp(self.norm3(x))

    def rescale(self, layer: int) -> None:
        for linear in (self.attn.proj, self.cross.proj, self.mlp.fc2):
            linear.weight.data.div_(math.sqrt(2.0 * layer))


def sincos_2d(grid: tuple[int, int], dim: int) -> Tensor:
    """Fixed 2-D sine-cosine position embeddings [H*W, dim] in raster order (MAE/I-JEPA):
    half the channels encode the row, half the column."""
    if dim % 4:
        raise ValueError(f"sine-cosine position embeddings need a width divisible by 4, got {dim}")
    h, w = grid
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows = torch.arange(h, dtype=torch.float64).repeat_interleave(w)
    cols = torch.arange(w, dtype=torch.float64).repeat(h)

    def axis(pos: Tensor) -> Tensor:
        angles = pos[:, None] * omega[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([axis(rows), axis(cols)], dim=1).float()


class SinCosPositions:
    """:func:`sincos_2d` of one width, memoised per grid and cast like a given tensor."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._cache: dict[tuple[int, int], Tensor] = {}

    def __call__(self, grid: tuple[int, int], like: Tensor) -> Tensor:
        if grid not in self._cache:
            self._cache[grid] = sincos_2d(grid, self.dim)
        return self._cache[grid].to(device=like.device, dtype=like.dtype)
