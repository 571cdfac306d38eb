"""The trainable part of the model: one projection head per modality (Section III-B).

Each frozen backbone's pooled feature goes through its own head into the shared
256-d space; the heads together are the late fusion, registered as the fusion
``projection-heads`` that any method can build by name.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmalign.errors import ConfigError
from mmalign.interfaces import Features, FeatureSpec, Fusion, FusionOutput, StrictModel


class ProjectionHead(nn.Module):
    """Dense -> GELU -> dense -> dropout, plus a skip from the first dense layer.

    The first layer's size follows the backbone; the second is ``out_dim x out_dim``
    for every modality, as the paper notes.
    """

    def __init__(
        self, in_dim: int, out_dim: int = 256, dropout: float = 0.1, layer_norm: bool = False
    ) -> None:
        super().__init__()
        self.first = nn.Linear(in_dim, out_dim)
        self.second = nn.Linear(out_dim, out_dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(out_dim) if layer_norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        projected = self.first(x)
        return self.norm(projected + self.dropout(self.second(F.gelu(projected))))


class ProjectionHeadsConfig(StrictModel):
    embed_dim: int = 256
    dropout: float = 0.1
    #: a LayerNorm after the skip (the common CLIP-tutorial head); off = the paper's text
    layer_norm: bool = False


class ProjectionHeads(Fusion):
    """One :class:`ProjectionHead` per modality; unit-length ``embeddings`` out.

    ``forward`` embeds whichever modalities the batch holds, so a batch with a
    single modality (retrieval evaluation) or a pair (round-robin) works alike.
    ``pooled`` is the mean of the embeddings present (width ``embed_dim``), so a
    classification head can sit on the same heads (late-fusion + InfoNCE).
    """

    Config = ProjectionHeadsConfig
    requires = {"*": ("pooled",)}
    provides = ("embeddings", "pooled")

    def __init__(
        self, config: ProjectionHeadsConfig | None, inputs: Mapping[str, FeatureSpec]
    ) -> None:
        super().__init__(config, inputs)
        cfg: ProjectionHeadsConfig = self.config
        missing = [m for m, spec in inputs.items() if spec.pooled is None]
        if missing or not inputs:
            raise ConfigError(
                "fusion 'projection-heads' needs 'pooled' features of every modality; "
                f"{', '.join(missing) or 'no modality'} has none"
            )
        self.heads = nn.ModuleDict(
            {
                m: ProjectionHead(int(spec.pooled), cfg.embed_dim, cfg.dropout, cfg.layer_norm)
                for m, spec in inputs.items()
                if spec.pooled is not None
            }
        )
        self.out_dim = cfg.embed_dim
        self.embed_dim = cfg.embed_dim

    @property
    def modalities(self) -> list[str]:
        return list(self.heads)

    def forward(self, features: dict[str, Features]) -> FusionOutput:
        embeddings = {
            m: F.normalize(head(features[m]["pooled"].float()), dim=-1)
            for m, head in self.heads.items()
            if m in features
        }
        pooled = torch.stack(list(embeddings.values())).mean(0) if embeddings else None
        return FusionOutput(pooled=pooled, embeddings=embeddings)
