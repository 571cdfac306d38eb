"""Simple fusions: the concatenation baseline and a projected concatenation that also
exposes per-modality embeddings for alignment objectives."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mmalign.errors import ConfigError
from mmalign.interfaces import Features, FeatureSpec, Fusion, FusionOutput, StrictModel


def _pooled_widths(name: str, inputs: Mapping[str, FeatureSpec]) -> dict[str, int]:
    if not inputs:
        raise ConfigError(f"fusion '{name}' needs at least one modality, got none")
    missing = [m for m, spec in inputs.items() if spec.pooled is None]
    if missing:
        raise ConfigError(
            f"fusion '{name}' needs 'pooled' features of every modality; "
            f"{', '.join(missing)} has none"
        )
    return {m: int(spec.pooled) for m, spec in sorted(inputs.items())}  # type: ignore[arg-type]


class ConcatFusion(Fusion):
    """Concatenate the pooled features of every modality (the "w/o fusion" baseline).

    ``out_dim`` is the sum of the pooled widths; modalities are concatenated in
    sorted order, so the result does not depend on the order of the config.
    """

    requires = {"*": ("pooled",)}
    provides = ("pooled",)

    def __init__(self, config: StrictModel | None, inputs: Mapping[str, FeatureSpec]) -> None:
        super().__init__(config, inputs)
        self.out_dim = sum(_pooled_widths("concat", inputs).values())

    def forward(self, features: dict[str, Features]) -> FusionOutput:
        pooled = torch.cat([features[m]["pooled"].float() for m in self.modalities], dim=-1)
        return FusionOutput(pooled=pooled)


class ProjectedConcatConfig(StrictModel):
    #: width of each modality's projection (the embeddings' width)
    dim: int = Field(128, ge=1)
    #: unit-length embeddings, as contrastive objectives (InfoNCE) expect
    normalize: bool = True


class ProjectedConcatFusion(Fusion):
    """A linear projection per modality into one shared width, then concatenation.

    Exposes the projections as ``embeddings`` (unit length by default), so a
    classification head on ``pooled`` can be trained together with an alignment
    objective on the embeddings (cross-entropy + InfoNCE, "Representation Learning
    with Contrastive Predictive Coding"'s loss on per-modality views).
    ``embed_dim`` is ``dim``; ``pooled`` is ``out_dim = dim x modalities`` wide.
    """

    Config = ProjectedConcatConfig
    requires = {"*": ("pooled",)}
    provides = ("pooled", "embeddings")

    def __init__(
        self, config: ProjectedConcatConfig | None, inputs: Mapping[str, FeatureSpec]
    ) -> None:
        super().__init__(config, inputs)
        cfg: ProjectedConcatConfig = self.config
        widths = _pooled_widths("projected-concat", inputs)
        self.projections = nn.ModuleDict({m: nn.Linear(d, cfg.dim) for m, d in widths.items()})
        self.out_dim = cfg.dim * len(widths)
        self.embed_dim = cfg.dim

    def forward(self, features: dict[str, Features]) -> FusionOutput:
        projected = {
            m: self.projections[m](features[m]["pooled"].float()) for m in self.modalities
        }
        embeddings = (
            {m: F.normalize(p, dim=-1) for m, p in projected.items()}
            if self.config.normalize
            else projected
        )
        return FusionOutput(pooled=torch.cat(list(projected.values()), dim=-1),
                            embeddings=embeddings)
