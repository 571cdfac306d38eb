"""Cross-Modal Fusion (CMF): self-attention whose query and key are modulated by the
other modality's global vector (paper eq. 3), then ``M_p = [I_m, T_m, I_p, T_p]``.

Registered as fusion ``spp-cmf`` for any method: it fuses exactly two modalities (the
first plays the image, the second the text; ``modalities`` names them, by default
``image``/``text`` or the two inputs in order), projecting each pooled vector to
``dim`` when its width differs (inside SPP-SCL the inputs are already ``I_p``/``T_p``).

``mode="batch"`` is the authors' code: each sample is one token and the attention
runs across the samples of the batch (``B × B``), so a prediction depends on which
other samples share its batch, at training *and* at evaluation. ``mode="sample"``
attends within each sample, over its own tokens (image positions, word states; the
DFAF-style intra-modality attention the paper cites), so predictions do not depend
on the batch. ``mode="none"`` is Table 7's "w/o CMF": ``M_p = [I_p, T_p]`` (inside
SPP-SCL, ``--set fusion.name=concat`` is the same ablation as a component swap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from mmalign.errors import ConfigError
from mmalign.interfaces import FeatureKey, Features, FeatureSpec, Fusion, FusionOutput, StrictModel

Mode = Literal["batch", "sample", "none"]


class CMFConfig(StrictModel):
    mode: Mode = "batch"
    dim: int = Field(32, ge=1, description="D: the width attention runs at")
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    modalities: tuple[str, str] | None = Field(
        None, description="(image role, text role); None: image/text, else the two inputs"
    )


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


def roles(config: CMFConfig, modalities: list[str]) -> tuple[str, str]:
    """The (image, text) modalities the fusion pairs."""
    if config.modalities is not None:
        missing = [m for m in config.modalities if m not in modalities]
        if missing:
            raise ConfigError(
                f"fusion 'spp-cmf': modalities {list(config.modalities)} but it receives "
                f"only {modalities}"
            )
        return config.modalities
    if len(modalities) != 2:
        raise ConfigError(
            f"fusion 'spp-cmf' fuses exactly two modalities, got {modalities}; set "
            "fusion.config.modalities=[IMAGE, TEXT]"
        )
    if set(modalities) == {"image", "text"}:
        return "image", "text"
    return modalities[0], modalities[1]


class CrossModalFusion(Fusion):
    """SPP-SCL's CMF: ``pooled`` = ``M_p``, ``embeddings`` = the two D-wide vectors."""

    Config = CMFConfig
    requires = {"*": ("pooled",)}
    provides = ("pooled", "embeddings")

    @classmethod
    def requirements(cls, config: CMFConfig) -> Mapping[str, tuple[FeatureKey, ...]]:
        return {"*": ("pooled", "tokens")} if config.mode == "sample" else cls.requires

    @classmethod
    def check_modalities(cls, config: CMFConfig, modalities: Sequence[str]) -> None:
        """Exactly two modalities (or the two ``modalities`` names) are paired."""
        roles(config, list(modalities))

    def __init__(self, config: CMFConfig | None, inputs: Mapping[str, FeatureSpec]) -> None:
        super().__init__(config, inputs)
        cfg: CMFConfig = self.config
        self.mode: Mode = cfg.mode
        self.pair = roles(cfg, list(inputs))
        self.project = nn.ModuleDict({
            m: nn.Identity() if inputs[m].pooled == cfg.dim
            else nn.Linear(int(inputs[m].pooled or 0), cfg.dim)
            for m in self.pair
        })
        self.out_dim = cfg.dim * (2 if cfg.mode == "none" else 4)
        self.embed_dim = cfg.dim
        if cfg.mode == "none":
            return
        self.image_attention = ModulatedAttention(cfg.dim, cfg.dropout)
        self.text_attention = ModulatedAttention(cfg.dim, cfg.dropout)
        if cfg.mode == "sample":
            self.token_project = nn.ModuleDict(
                {m: nn.Linear(int(inputs[m].tokens or 0), cfg.dim) for m in self.pair}
            )

    def forward(self, features: dict[str, Features]) -> FusionOutput:
        """``features[m]["pooled"]`` is ``I_p``/``T_p`` (or projected to it); ``"sample"``
        also uses ``"tokens"`` and ``"mask"``."""
        i, t = self.pair
        img = self.project[i](features[i]["pooled"].float())
        txt = self.project[t](features[t]["pooled"].float())
        embeddings = {i: img, t: txt}
        if self.mode == "none":
            return FusionOutput(pooled=torch.cat([img, txt], dim=-1), embeddings=embeddings)
        if self.mode == "batch":
            i_m = self.image_attention.across_batch(img, txt)
            t_m = self.text_attention.across_batch(txt, img)
        else:
            i_m = self.image_attention.within_sample(
                self.token_project[i](features[i]["tokens"].float()),
                features[i]["mask"].bool(), txt,
            )
            t_m = self.text_attention.within_sample(
                self.token_project[t](features[t]["tokens"].float()),
                features[t]["mask"].bool(), img,
            )
        pooled = torch.cat([i_m, t_m, img, txt], dim=-1)
        return FusionOutput(pooled=pooled, embeddings=embeddings)
