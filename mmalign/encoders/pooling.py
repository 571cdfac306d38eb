"""Pooling and padding of token sequences with a mask (True = real token)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def masked_mean(tokens: Tensor, mask: Tensor) -> Tensor:
    """Mean over real tokens; an all-padding row pools to zeros instead of NaN."""
    weights = mask.to(tokens.dtype).unsqueeze(-1)
    total = (tokens * weights).sum(dim=1)
    count = weights.sum(dim=1).clamp_min(1.0)
    return total / count


def pad_sequences(items: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack [T_i, D] sequences into zero-padded [B, T_max, D] plus a [B, T_max] mask."""
    longest = max(max(len(x) for x in items), 1)
    dim = items[0].shape[-1]
    out = torch.zeros((len(items), longest, dim), dtype=items[0].dtype)
    mask = torch.zeros((len(items), longest), dtype=torch.bool)
    for i, x in enumerate(items):
        out[i, : len(x)] = x
        mask[i, : len(x)] = True
    return out, mask
