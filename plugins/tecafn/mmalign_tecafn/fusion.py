"""Text-centred cross-sample fusion (section 3.2): unimodal extraction, the unimodal
contrastive embeddings that rank similar samples, the replacement gates, the
core-queried cross attention, the pair heads and the fused-contrast embeddings."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, field_validator
from torch import Tensor, nn

from mmalign.interfaces import Features, FeatureSpec, Fusion, StrictModel
from mmalign_tecafn.layers import (
    AttentionLayer,
    Mapper,
    SequenceEncoder,
    TemporalConv,
    masked_mean,
)
from mmalign_tecafn.losses import (
    cosine_similarity_matrix,
    hard_negatives,
    random_negatives,
    replacement_gate,
)

#: the modality whose frozen-encoder token states are used as they are (BERT in the
#: paper); every other modality goes through a transformer + LSTM (equations 2–4)
TEXT = "text"


def as_list(value: Any) -> Any:
    """``--set no_gate=audio`` gives a string; a one-item list is meant."""
    return [value] if isinstance(value, str) else value


class FusionConfig(StrictModel):
    """Options of the cross-sample fusion: the authors' code defaults, except one
    attention layer per stack instead of six so that the default trains on a CPU in
    minutes (size ``paper`` restores six)."""

    core: str = Field(TEXT, description="the query/anchor modality (Figure 3 switch)")
    dim: int = Field(30, description="common width after the temporal Conv1D (eq. 5)")
    unimodal_dim: int = Field(30, description="audio/video transformer + LSTM width")
    contrast_dim: int = Field(30, description="joint space of both contrastive stages")
    heads: int = 5
    unimodal_layers: int = Field(1, description="L of equations 2–3 (the code: 6)")
    cross_layers: int = Field(1, description="L of equations 11–12 (the code: 6)")
    conv_kernel: int = Field(1, description="k_m of equation 5")
    dropout: float = 0.1
    embed_dropout: float = 0.25
    mapper_dropout: float = 0.1
    p: float = Field(0.5, ge=0.0, le=1.0, description="replacement probability")
    num: int = Field(3, ge=1, description="hard negatives per sample")
    bicon_variant: Literal["paper", "code"] = Field(
        "paper",
        description="paper: contrast samples of the batch; code: the published "
        "implementation, which pools over the batch and contrasts token positions",
    )
    no_gate: list[str] = Field(default_factory=list, description="w/o L_tap / L_tvp")
    random_negatives: list[str] = Field(default_factory=list, description="w/o Hardneg")
    no_bicon: bool = Field(False, description="w/o L_bicon")

    @field_validator("no_gate", "random_negatives", mode="before")
    @classmethod
    def _gate_names(cls, value: Any) -> Any:
        return as_list(value)


def _cross_stack(cfg: FusionConfig) -> nn.ModuleList:
    """Equations 11–12 stacked ``cross_layers`` times."""
    return nn.ModuleList(
        AttentionLayer(cfg.dim, cfg.heads, cfg.dropout) for _ in range(cfg.cross_layers)
    )


class CrossSampleFusion(Fusion):
    """Per-modality token features in; the pooled fused vector ``z_s`` plus what the
    TeCaFN losses need out.

    ``dims`` maps each modality in use (dropped ones left out) to its token width;
    the core is the query of every cross attention and the anchor of both
    contrastive stages.
    The replacement gate runs only when the module is training.
    """

    Config = FusionConfig

    def __init__(
        self, config: FusionConfig | None = None, *, dims: dict[str, int] | None = None
    ) -> None:
        cfg = config if config is not None else FusionConfig()
        super().__init__(cfg, {m: FeatureSpec(tokens=d) for m, d in (dims or {}).items()})
        self.cfg = cfg
        dims = dict(dims or {})
        if cfg.core not in dims:
            raise ValueError(f"core modality '{cfg.core}' is not among {sorted(dims)}")
        self.core = cfg.core
        self.others = [m for m in dims if m != cfg.core]
        self.modalities = [cfg.core, *self.others]
        self.gated = [m for m in self.others if m not in cfg.no_gate]
        self.bicon = len(self.others) == 2 and not cfg.no_bicon

        width = {m: dims[m] if m == TEXT else cfg.unimodal_dim for m in self.modalities}
        self.unimodal = nn.ModuleDict(
            {
                m: SequenceEncoder(
                    dims[m],
                    cfg.unimodal_dim,
                    cfg.heads,
                    cfg.unimodal_layers,
                    cfg.dropout,
                    cfg.embed_dropout,
                )
                for m in self.modalities
                if m != TEXT
            }
        )
        self.temporal = nn.ModuleDict(
            {m: TemporalConv(width[m], cfg.dim, cfg.conv_kernel) for m in self.modalities}
        )
        core_w = width[self.core]
        self.query_map = nn.ModuleDict(
            {m: Mapper(core_w, cfg.contrast_dim, cfg.mapper_dropout) for m in self.others}
        )
        self.key_map = nn.ModuleDict(
            {m: Mapper(width[m], cfg.contrast_dim, 0.0) for m in self.others}
        )
        self.cross = nn.ModuleDict({m: _cross_stack(cfg) for m in self.others})
        self.pair_heads = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.ReLU(), nn.Linear(cfg.dim, 2))
                for m in self.gated
            }
        )
        self.bicon_map = nn.ModuleDict(
            {m: Mapper(cfg.dim, cfg.contrast_dim, cfg.mapper_dropout) for m in self.others}
            if self.bicon
            else {}
        )

    @property
    def out_dim(self) -> int:
        return self.cfg.dim

    def _negatives(self, modality: str, q: Tensor, k: Tensor) -> Tensor:
        if modality in self.cfg.random_negatives:
            return random_negatives(len(q), q.device)
        return hard_negatives(cosine_similarity_matrix(q, k), self.cfg.num)

    def _bicon(self, fused: dict[str, Tensor], mask: Tensor) -> dict[str, Tensor]:
        """``z`` from core×others[1], ``u`` from core×others[0] (tv and ta for text)."""
        second, first = self.others[1], self.others[0]
        z = self.bicon_map[second](fused[second])
        u = self.bicon_map[first](fused[first])
        if self.cfg.bicon_variant == "paper":
            return {"z": masked_mean(z, mask, 1), "u": masked_mean(u, mask, 1)}
        # the published code: mean over the batch axis, positions become the samples
        keep = mask.any(dim=0)
        return {"z": masked_mean(z, mask, 0)[keep], "u": masked_mean(u, mask, 0)[keep]}

    def forward(
        self, features: dict[str, Features], generator: torch.Generator | None = None
    ) -> dict[str, Any]:
        cfg = self.cfg
        hats: dict[str, Tensor] = {}
        xs: dict[str, Tensor] = {}
        masks: dict[str, Tensor] = {}
        for m in self.modalities:
            tokens = features[m]["tokens"]
            mask = features[m].get("mask")
            mask = (
                torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
                if (mask is None)
                else mask.bool()
            )
            hat = self.unimodal[m](tokens, mask) if m in self.unimodal else tokens.float()
            hats[m], xs[m], masks[m] = hat, self.temporal[m](hat, mask), mask

        core_mask = masks[self.core]
        out: dict[str, Any] = {
            "contrast": {},
            "pair_logits": {},
            "pair_labels": {},
            "gate_index": {},
        }
        fused: dict[str, Tensor] = {}
        pooled: list[Tensor] = []
        for m in self.others:
            q = masked_mean(self.query_map[m](hats[self.core]), core_mask, 1)
            k = masked_mean(self.key_map[m](hats[m]), masks[m], 1)
            out["contrast"][m] = {"query": q, "key": k}
            kv, kv_mask = xs[m], masks[m]
            if self.training and m in self.gated:
                gate = replacement_gate(kv, self._negatives(m, q, k), cfg.p, generator)
                kv, kv_mask = gate.x, kv_mask[gate.index]
                out["pair_labels"][m] = gate.paired
                out["gate_index"][m] = gate.index
            h = xs[self.core]
            for layer in self.cross[m]:
                h = layer(h, core_mask, kv, kv_mask)
            fused[m] = h
            pooled.append(masked_mean(h, core_mask, 1))
            if m in out["pair_labels"]:
                out["pair_logits"][m] = self.pair_heads[m](pooled[-1])
        if self.bicon:
            out["bicon"] = self._bicon(fused, core_mask)
        out["fused"] = (
            torch.stack(pooled).sum(0) if pooled else masked_mean(xs[self.core], core_mask, 1)
        )
        return out
