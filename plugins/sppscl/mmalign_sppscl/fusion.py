"""Cross-Modal Fusion (CMF): self-attention whose query and key are modulated by the
other modality's global vector (paper eq. 3), then ``M_p = [I_m, T_m, I_p, T_p]``.

``mode="batch"`` is the authors' code: each sample is one token and the attention
runs across the samples of the batch (``B × B``), so a prediction depends on which
other samples share its batch, at training *and* at evaluation. ``mode="sample"``
attends within each sample, over its own image positions and word states (the
DFAF-style intra-modality attention the paper cites), so predictions do not depend
on the batch. ``mode="none"`` is Table 7's "w/o CMF": ``M_p = [I_p, T_p]``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from mmalign.interfaces import Features, FeatureSpec, Fusion, StrictModel

Mode = Literal["batch", "sample", "none"]


class CMFConfig(StrictModel):
    mode: Mode = "batch"
    dim: int = 32
    dropout: float = 0.2


class ModulatedAttention(nn.Module):
    """``Softmax((Q ⊙ g)(K ⊙ g)ᵀ / √D) V`` for one modality, ``g`` from the other one."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.q, self.k, self.v = (
            nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout)) for _ in range(3)
        )
        self.scale = dim**-0.5

    def across_batch(self, x: Tensor, guide: Tensor) -> Tensor:
        """``x, guide: [B, D]``; attention over the B samples."""
        scores = (self.q(x) * guide) @ (self.k(x) * guide).T * self.scale
        return scores.softmax(-1) @ self.v(x)

    def within_sample(self, x: Tensor, mask: Tensor, guide: Tensor) -> Tensor:
        """``x: [B, L, D]``, ``mask: [B, L]``, ``guide: [B, D]``; attention over each
        sample's own L tokens, then the masked mean over them."""
        g = guide[:, None]
        keys = mask | ~mask.any(1, keepdim=True)  # a sample without tokens attends to all
        scores = (self.q(x) * g) @ (self.k(x) * g).transpose(1, 2) * self.scale
        scores = scores.masked_fill(~keys[:, None, :], float("-inf"))
        out = scores.softmax(-1) @ self.v(x)
        m = mask[:, :, None].to(out.dtype)
        return (out * m).sum(1) / m.sum(1).clamp(min=1)


class CrossModalFusion(Fusion):
    """SPP-SCL's CMF over ``{"image": ..., "text": ...}`` branch outputs."""

    Config = CMFConfig

    def __init__(
        self, config: CMFConfig | None = None, *, image_tokens: int = 0, text_tokens: int = 0
    ) -> None:
        super().__init__(config, {"image": FeatureSpec(tokens=image_tokens or None),
                                  "text": FeatureSpec(tokens=text_tokens or None)})
        cfg = self.config
        self.mode: Mode = cfg.mode
        self.out_dim = cfg.dim * (2 if cfg.mode == "none" else 4)
        if cfg.mode == "none":
            return
        self.image_attention = ModulatedAttention(cfg.dim, cfg.dropout)
        self.text_attention = ModulatedAttention(cfg.dim, cfg.dropout)
        if cfg.mode == "sample":
            self.image_tokens = nn.Linear(image_tokens, cfg.dim)
            self.text_tokens = nn.Linear(text_tokens, cfg.dim)

    def forward(self, features: dict[str, Features]) -> Tensor:
        """``features[m]["pooled"]`` is ``I_p``/``T_p``; ``"sample"`` also needs
        ``"tokens"`` and ``"mask"``. Returns ``M_p [B, out_dim]``."""
        img, txt = features["image"]["pooled"], features["text"]["pooled"]
        if self.mode == "none":
            return torch.cat([img, txt], dim=-1)
        if self.mode == "batch":
            i_m = self.image_attention.across_batch(img, txt)
            t_m = self.text_attention.across_batch(txt, img)
        else:
            image, text = features["image"], features["text"]
            i_m = self.image_attention.within_sample(
                self.image_tokens(image["tokens"]), image["mask"].bool(), txt
            )
            t_m = self.text_attention.within_sample(
                self.text_tokens(text["tokens"]), text["mask"].bool(), img
            )
        return torch.cat([i_m, t_m, img, txt], dim=-1)
