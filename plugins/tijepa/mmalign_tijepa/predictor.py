"""The predictor g_phi: I-JEPA's narrow ViT over context tokens plus mask tokens.

As in I-JEPA's ``VisionTransformerPredictor``: the context output is projected to the
predictor width and given the fixed sine-cosine position of each context patch; for
each of the M target blocks, one shared learnable mask token plus the position of
each target patch is appended, the sequence passes ``depth`` ViT blocks, and the
outputs at the mask tokens are normed and projected back to the module width. The M
blocks run as M copies of the batch (one predictor application per block).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from mmalign.interfaces import StrictModel
from mmalign_tijepa.layers import Block, SinCosPositions, init_weights


class PredictorConfig(StrictModel):
    """Paper: depth 12, 12 heads; width 384 as I-JEPA's ViT-H/14 predictor."""

    depth: int = Field(12, ge=1)
    heads: int = Field(12, ge=1)
    dim: int = Field(384, ge=8)
    mlp_ratio: float = 4.0


def gather_tokens(tokens: Tensor, index: Tensor) -> Tensor:
    """tokens [B, N, D], index [B, K] -> [B, K, D]."""
    return tokens.gather(1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


class JEPAPredictor(nn.Module):
    def __init__(self, config: PredictorConfig, embed_dim: int) -> None:
        super().__init__()
        if config.dim % 4:
            raise ValueError(f"predictor.dim must be divisible by 4, got {config.dim}")
        self.config = config
        self.embed = nn.Linear(embed_dim, config.dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.blocks = nn.ModuleList(
            Block(config.dim, config.heads, config.mlp_ratio) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.dim)
        self.proj = nn.Linear(config.dim, embed_dim)
        self.apply(init_weights)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        for layer, block in enumerate(self.blocks, start=1):
            block.rescale(layer)
        #: [H*W, dim] fixed position embeddings
        self.positions = SinCosPositions(config.dim)

    def forward(
        self, context: Tensor, context_idx: Tensor, target_idx: Tensor, grid: tuple[int, int]
    ) -> Tensor:
        """context [B, Kc, E] at patches context_idx [B, Kc]; target_idx [B, M, Kt]
        -> predictions [B, M, Kt, E]."""
        b, m, kt = target_idx.shape
        x = self.embed(context)
        pos = self.positions(grid, x)
        x = x + pos[context_idx]
        kc = x.shape[1]
        x = x.unsqueeze(1).expand(b, m, kc, x.shape[-1]).reshape(b * m, kc, -1)
        queries = (self.mask_token + pos[target_idx]).reshape(b * m, kt, -1)
        h = torch.cat([x, queries], dim=1)
        for block in self.blocks:
            h = block(h)
        out = self.proj(self.norm(h[:, kc:]))
        return out.view(b, m, kt, -1)
