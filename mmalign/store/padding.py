"""Joining per-batch feature dicts whose token axes differ in length."""

from __future__ import annotations

import torch
from torch import Tensor

from mmalign.store.shards import TOKEN_KEYS


def pad_cat(chunks: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Concatenate per-batch feature dicts, padding the token axis to the longest."""
    out: dict[str, Tensor] = {}
    for key in chunks[0]:
        parts = [c[key] for c in chunks]
        axis = TOKEN_KEYS.get(key)
        if axis is not None:
            longest = max(p.shape[axis] for p in parts)
            padded = []
            for p in parts:
                pad = longest - p.shape[axis]
                if pad:
                    shape = list(p.shape)
                    shape[axis] = pad
                    p = torch.cat([p, torch.zeros(shape, dtype=p.dtype)], dim=axis)
                padded.append(p)
            parts = padded
        out[key] = torch.cat(parts)
    return out
