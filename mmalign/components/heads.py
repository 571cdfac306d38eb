"""Heads: a fused vector to logits or a regression score."""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from mmalign.interfaces import Head, StrictModel


class LinearHead(Head):
    """One linear layer (the papers' baseline classifier)."""

    def __init__(self, config: StrictModel | None, *, in_dim: int, out_dim: int) -> None:
        super().__init__(config, in_dim=in_dim, out_dim=out_dim)
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


class MLPHeadConfig(StrictModel):
    hidden: int = Field(256, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)


class MLPHead(Head):
    """Linear -> GELU -> dropout -> linear."""

    Config = MLPHeadConfig

    def __init__(self, config: MLPHeadConfig | None, *, in_dim: int, out_dim: int) -> None:
        super().__init__(config, in_dim=in_dim, out_dim=out_dim)
        cfg: MLPHeadConfig = self.config
        self.net = nn.Sequential(
            nn.Linear(in_dim, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
