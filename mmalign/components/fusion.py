"""Simple fusions."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mmalign.interfaces import Features, Fusion


class ConcatFusion(Fusion):
    """Concatenate the pooled features of every modality (the "w/o fusion" baseline)."""

    def __init__(self, config: Any = None, *, modalities: list[str] | None = None) -> None:
        super().__init__(config)
        self.modalities = sorted(modalities or [])

    def forward(self, features: dict[str, Features]) -> Tensor:
        names = self.modalities or sorted(features)
        return torch.cat([features[m]["pooled"].float() for m in names], dim=-1)
