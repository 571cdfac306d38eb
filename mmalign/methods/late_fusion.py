"""The late-fusion baseline: frozen encoders, concatenation, a linear head.

This is the "w/o fusion" baseline the papers compare against, and the reference
example of a method recipe.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from torch import nn

from mmalign.components.fusion import ConcatFusion
from mmalign.components.objectives import CrossEntropyObjective, L1RegressionObjective
from mmalign.interfaces import (
    Batch,
    BuildContext,
    EncoderRef,
    Method,
    Objective,
    Outputs,
    StageSpec,
    StrictModel,
    Task,
    TrainConfig,
)

EMBEDDED_ENCODERS = {
    "text": EncoderRef(name="minilm-l6", keep=["pooled"]),
    "image": EncoderRef(name="efficientnet-lite0", keep=["pooled"]),
}


class LateFusionConfig(StrictModel):
    encoders: dict[str, EncoderRef] = Field(default_factory=lambda: dict(EMBEDDED_ENCODERS))
    dropout: float = Field(0.1, ge=0, lt=1)
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(
            epochs=40, batch_size=64, optimizer="adam", lr=1e-3, patience=8
        )
    )


class LateFusionModel(nn.Module):
    """Concatenated pooled features -> dropout -> linear head."""

    def __init__(self, dims: dict[str, int], out_dim: int, dropout: float, regression: bool):
        super().__init__()
        self.fusion = ConcatFusion(modalities=list(dims))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(sum(dims.values()), out_dim)
        self.regression = regression

    def forward(self, batch: Batch) -> Outputs:
        fused = self.fusion({m: batch[m] for m in self.fusion.modalities})
        out = self.head(self.dropout(fused))
        return {"prediction": out.squeeze(-1)} if self.regression else {"logits": out}


class LateFusion(Method):
    """Frozen encoders, concatenation, linear classifier (the papers' baseline)."""

    Config = LateFusionConfig
    name = "late-fusion"
    default_task = "synth-sentiment"

    def stages(self, config: Any, task: Task) -> list[StageSpec]:
        def build(ctx: BuildContext) -> tuple[nn.Module, Objective]:
            regression = ctx.task.label_type == "regression"
            out_dim = 1 if regression else ctx.task.num_classes
            model = LateFusionModel(ctx.feature_dims, out_dim, config.dropout, regression)
            objective = L1RegressionObjective() if regression else CrossEntropyObjective()
            return model, objective

        return [StageSpec(name="train", build=build, train=config.train)]
