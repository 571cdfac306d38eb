"""Image branch: frozen CNN feature map → 1×1 conv → BN → ReLU → dropout → pool → ``I_p``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmalign.interfaces import Features
from mmalign_sppscl.heads import projection_head


class ImageBranch(nn.Module):
    """Paper eq. 1, ``I_p = M(P(c(CNN(I))))``.

    The encoder's ``tokens [B, H·W, C]`` are the feature map's positions, so the
    1×1 convolution is a linear map over channels at every position and the 2-D
    batch norm is a 1-D batch norm over (batch, position). An encoder that gives
    only ``pooled`` features is treated as a 1×1 feature map.
    """

    def __init__(self, in_dim: int, *, channels: int = 128, dim: int = 32, dropout: float = 0.2):
        super().__init__()
        self.conv = nn.Linear(in_dim, channels)
        self.norm = nn.BatchNorm1d(channels)
        self.act = nn.Sequential(nn.ReLU(), nn.Dropout(dropout))
        self.out_tokens = channels
        self.project = projection_head(channels, dim, dropout)

    def forward(self, feats: Features) -> dict[str, Tensor]:
        """``pooled`` = ``I_p [B, dim]``, ``tokens``/``mask`` = the reduced feature map."""
        if "tokens" in feats:
            tokens, mask = feats["tokens"].float(), feats["mask"].bool()
        else:
            tokens = feats["pooled"].float()[:, None]
            mask = tokens.new_ones(tokens.shape[:2], dtype=torch.bool)
        x = self.conv(tokens)
        x = self.act(self.norm(x.transpose(1, 2)).transpose(1, 2))
        m = mask[:, :, None].to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1)
        return {"pooled": self.project(pooled), "tokens": x, "mask": mask}
