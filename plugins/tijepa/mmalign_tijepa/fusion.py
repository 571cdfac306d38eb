"""The text-to-image (t2i) cross-attention module X of TI-JEPA, as a reusable fusion.

Image tokens are projected to the module width, then pass ``depth`` blocks of
self-attention, cross-attention to the text tokens and an MLP (pre-norm, residuals),
and a final norm. Text tokens enter the cross-attention as keys and values at
``text_width`` (768, gte-base's width, by default): a text encoder of another width
gets a linear adapter. Reading Table 1's parameter counts this way — image tokens
projected from ViT-H's 1280, keys/values read at 768 — reproduces 39M / 58M / 131M
within 1% (see the README for the arithmetic).

The module adds no positions of its own: a ViT's tokens carry them (its position
embeddings are added at its input). A CNN's feature map does not, so image tokens
from one can only be bound to "at the top left" through ``image_positions=sincos``,
which adds fixed 2-D sine-cosine positions of the token grid after the projection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from mmalign.errors import ConfigError
from mmalign.interfaces import (
    FeatureKey,
    Features,
    FeatureSpec,
    Fusion,
    FusionOutput,
    StrictModel,
    added_field,
)
from mmalign_tijepa.layers import CrossBlock, SinCosPositions, init_weights
from mmalign_tijepa.masks import token_grid


class T2IConfig(StrictModel):
    """Table 1: small 4/8/768, medium 6/10/768, large 8/12/1024."""

    depth: int = Field(4, ge=1)
    heads: int = Field(8, ge=1)
    dim: int = Field(768, ge=8)
    head_dim: int | None = Field(None, description="None: dim // heads")
    mlp_ratio: float = 4.0
    text_width: int | None = Field(
        768, description="width the cross-attention reads text at; None: the encoder's"
    )
    dropout: float = 0.0
    image: str = "image"
    text: str = "text"
    image_positions: Literal["encoder", "sincos"] = added_field(
        "encoder",
        "encoder: the image tokens' positions are the encoder's own (a ViT's); sincos: add "
        "fixed 2-D sine-cosine positions of the token grid (a CNN's tokens carry none)",
    )


def masked_mean(tokens: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return tokens.mean(1)
    weights = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def t2i_inputs(cfg: T2IConfig, image_dim: int, text_dim: int) -> dict[str, FeatureSpec]:
    """The inputs of a t2i module: image and text tokens of these widths."""
    return {cfg.image: FeatureSpec(tokens=image_dim), cfg.text: FeatureSpec(tokens=text_dim)}


class T2ICrossAttention(Fusion):
    """Image tokens attending to text tokens: ``tokens`` = the fused image tokens (with
    the image mask), ``pooled`` = their masked mean. Any method can use it on two
    token-bearing modalities (``image``/``text`` name them)."""

    Config = T2IConfig
    provides = ("tokens", "pooled")

    @classmethod
    def requirements(cls, config: T2IConfig) -> Mapping[str, tuple[FeatureKey, ...]]:
        return {config.image: ("tokens",), config.text: ("tokens",)}

    def __init__(self, config: T2IConfig | None, inputs: Mapping[str, FeatureSpec]) -> None:
        super().__init__(config, inputs)
        cfg: T2IConfig = self.config
        widths = {m: inputs[m].tokens if m in inputs else None for m in (cfg.image, cfg.text)}
        missing = [m for m, w in widths.items() if w is None]
        if missing:
            raise ConfigError(
                f"fusion 't2i-cross-attention' needs 'tokens' of {missing[0]} (its image="
                f"'{cfg.image}', text='{cfg.text}'); it receives {sorted(inputs)}"
            )
        image_dim, text_dim = int(widths[cfg.image]), int(widths[cfg.text])  # type: ignore[arg-type]
        self.out_dim = cfg.dim
        kv_dim = cfg.text_width or text_dim
        self.image_in: nn.Module = (
            nn.Linear(image_dim, cfg.dim) if image_dim != cfg.dim else nn.Identity()
        )
        self.text_in: nn.Module = (
            nn.Linear(text_dim, kv_dim) if text_dim != kv_dim else nn.Identity()
        )
        self.blocks = nn.ModuleList(
            CrossBlock(cfg.dim, cfg.heads, kv_dim, cfg.mlp_ratio, cfg.head_dim, cfg.dropout)
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim)
        if cfg.image_positions == "sincos" and cfg.dim % 4:
            raise ConfigError(
                f"fusion 't2i-cross-attention': image_positions='sincos' needs a width "
                f"divisible by 4, dim is {cfg.dim}"
            )
        self.positions = SinCosPositions(cfg.dim)
        self.apply(init_weights)
        for layer, block in enumerate(self.blocks, start=1):
            block.rescale(layer)

    @property
    def dim(self) -> int:
        return self.config.dim

    def encode(
        self,
        image: Tensor,
        text: Tensor,
        text_mask: Tensor | None,
        index: Tensor | None = None,
        grid: tuple[int, int] | None = None,
    ) -> Tensor:
        """Image tokens [B, N, Di] and text tokens [B, L, Dt] -> fused tokens [B, N, dim].

        ``index`` [B, N]: the grid cells of the image tokens when they are a subset
        (the visible context patches); None: all cells in raster order. ``grid``: the
        token grid (rows, cols); None: square. Both matter only with sincos positions.
        """
        x = self.image_in(image)
        if self.config.image_positions == "sincos":
            if index is None:
                x = x + self.positions(token_grid(x.shape[1], grid), x)
            elif grid is None:
                raise ValueError("a subset of image tokens (index) needs the full grid")
            else:
                x = x + self.positions(grid, x)[index]
        kv = self.text_in(text)
        for block in self.blocks:
            x = block(x, kv, text_mask)
        return self.norm(x)

    def forward(self, features: dict[str, Features]) -> FusionOutput:
        cfg: T2IConfig = self.config
        image, text = features[cfg.image], features[cfg.text]
        tokens = self.encode(image["tokens"], text["tokens"], text.get("mask"))
        mask = image.get("mask")
        if mask is None:
            mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return FusionOutput(tokens=tokens, mask=mask, pooled=masked_mean(tokens, mask))
