"""Text-centred cross-sample fusion (section 3.2): unimodal extraction, the unimodal
contrastive embeddings that rank similar samples, the replacement gates, the
core-queried cross attention, the pair heads and the fused-contrast embeddings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor, nn

from mmalign.errors import ConfigError
from mmalign.interfaces import Features, FeatureSpec, Fusion, FusionOutput, StrictModel
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

#: the name the fusion is registered under
FUSION_NAME = "tecafn-cross-sample"
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
    init: Literal["torch", "xavier"] = Field(
        "torch",
        description="torch: PyTorch's default initialisation; xavier: xavier_normal_ on "
        "every weight matrix, as the authors' solver does",
    )
    no_gate: list[str] = Field(default_factory=list, description="w/o L_tap / L_tvp")
    random_negatives: list[str] = Field(default_factory=list, description="w/o Hardneg")
    no_bicon: bool = Field(False, description="w/o L_bicon")

    @field_validator("no_gate", "random_negatives", mode="before")
    @classmethod
    def _gate_names(cls, value: Any) -> Any:
        return as_list(value)


def xavier_init(module: nn.Module) -> None:
    """``xavier_normal_`` on every parameter with two or more dimensions (the
    authors' ``solver.py`` does this to the whole non-BERT model)."""
    for p in module.parameters():
        if p.dim() >= 2:
            nn.init.xavier_normal_(p)


def _cross_stack(cfg: FusionConfig) -> nn.ModuleList:
    """Equations 11–12 stacked ``cross_layers`` times."""
    return nn.ModuleList(
        AttentionLayer(cfg.dim, cfg.heads, cfg.dropout) for _ in range(cfg.cross_layers)
    )


class CrossSampleFusion(Fusion):
    """Per-modality token features in; the pooled fused vector ``z_s`` (``pooled``)
    plus, under ``extras["tecafn"]``, what the TeCaFN losses need.

    ``inputs`` maps each modality in use (dropped ones left out) to its features;
    every one must carry ``tokens``. The core is the query of every cross attention
    and the anchor of both contrastive stages. The replacement gate runs only when
    the module is training; inside another method (no step generator) it draws from
    torch's global generator, which the runner seeds.
    """

    Config = FusionConfig
    requires = {"*": ("tokens",)}
    provides = ("pooled",)

    @classmethod
    def requirements(cls, config: StrictModel) -> Mapping[str, tuple[str, ...]]:
        """Tokens of every modality, and the core modality must be there."""
        core = getattr(config, "core", TEXT)
        return {"*": ("tokens",), core: ("tokens",)}

    def __init__(self, config: FusionConfig | None, inputs: Mapping[str, FeatureSpec]) -> None:
        cfg = config if config is not None else FusionConfig()
        super().__init__(cfg, inputs)
        self.cfg = cfg
        missing = [m for m, spec in inputs.items() if spec.tokens is None]
        if missing:
            raise ConfigError(
                f"fusion '{FUSION_NAME}' needs 'tokens' of every modality; "
                f"{', '.join(missing)} has none"
            )
        dims = {m: int(spec.tokens) for m, spec in inputs.items() if spec.tokens is not None}
        if cfg.core not in dims:
            raise ConfigError(
                f"fusion '{FUSION_NAME}': core modality '{cfg.core}' is not among {sorted(dims)}"
            )
        self.core = cfg.core
        self.others = [m for m in dims if m != cfg.core]
        self.order = [cfg.core, *self.others]
        self.gated = [m for m in self.others if m not in cfg.no_gate]
        self.bicon = len(self.others) == 2 and not cfg.no_bicon

        width = {m: dims[m] if m == TEXT else cfg.unimodal_dim for m in self.order}
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
                for m in self.order
                if m != TEXT
            }
        )
        self.temporal = nn.ModuleDict(
            {m: TemporalConv(width[m], cfg.dim, cfg.conv_kernel) for m in self.order}
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
        paper_bicon = self.bicon and cfg.bicon_variant == "paper"
        self.bicon_map = nn.ModuleDict(
            {m: Mapper(cfg.dim, cfg.contrast_dim, cfg.mapper_dropout) for m in self.others}
            if paper_bicon
            else {}
        )
        # the published InfoNCE module: query/key projections only when the width
        # differs from its 30-d space (never at the code's width 30)
        project = self.bicon and not paper_bicon and cfg.dim != cfg.contrast_dim
        self.bicon_code_map = nn.ModuleDict(
            {
                "query": Mapper(cfg.dim, cfg.contrast_dim, 0.0),
                "key": Mapper(cfg.dim, cfg.contrast_dim, 0.0),
            }
            if project
            else {}
        )
        if cfg.init == "xavier":
            xavier_init(self)

        self.out_dim = cfg.dim

    @property
    def modalities(self) -> list[str]:
        """Core first, then the others (the order of the contrastive pairs)."""
        return self.order

    def _negatives(self, modality: str, q: Tensor, k: Tensor) -> Tensor:
        if modality in self.cfg.random_negatives:
            return random_negatives(len(q), q.device)
        return hard_negatives(cosine_similarity_matrix(q, k), self.cfg.num)

    def _bicon(self, fused: dict[str, Tensor], mask: Tensor) -> list[tuple[Tensor, Tensor]]:
        """The (query, key) pairs of L_bicon, one per direction.

        ``paper``: ``z = g1(h_tv)``, ``u = g2(h_ta)`` pooled per sample over real text
        tokens, contrasted both ways (eq. 15–16). ``code``: the published
        ``InfoNCE(cross_ta, cross_tv) + InfoNCE(cross_tv, cross_ta)`` on sequence-first
        tensors — dropout on the query only, the mean taken over the *batch* (padding
        included), so the rows contrasted are text positions.
        """
        second, first = self.others[1], self.others[0]
        if self.cfg.bicon_variant == "paper":
            z = masked_mean(self.bicon_map[second](fused[second]), mask, 1)
            u = masked_mean(self.bicon_map[first](fused[first]), mask, 1)
            return [(z, u), (u, z)]
        pairs = []
        for query, key in ((first, second), (second, first)):
            q = F.dropout(fused[query], self.cfg.mapper_dropout, self.training)
            k = fused[key]
            if self.bicon_code_map:
                q, k = self.bicon_code_map["query"](q), self.bicon_code_map["key"](k)
            pairs.append((q.mean(dim=0), k.mean(dim=0)))
        return pairs

    def forward(
        self, features: dict[str, Features], generator: torch.Generator | None = None
    ) -> FusionOutput:
        cfg = self.cfg
        hats: dict[str, Tensor] = {}
        xs: dict[str, Tensor] = {}
        masks: dict[str, Tensor] = {}
        for m in self.order:
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
        fused_vector = (
            torch.stack(pooled).sum(0) if pooled else masked_mean(xs[self.core], core_mask, 1)
        )
        return FusionOutput(pooled=fused_vector, extras={"tecafn": out})
