"""The late-fusion baseline as a recipe of registered components.

Frozen encoders, a fusion, dropout and a head, trained with an objective: by
default concatenation, a linear head and the task's loss (the "w/o fusion"
baseline the papers compare against). Every part is a
:class:`~mmalign.interfaces.ComponentRef` built through
:meth:`~mmalign.registry.Registry.create`, so any registered fusion, head or
objective swaps in by name::

    mmalign run late-fusion --set fusion.name=projected-concat \\
        --set 'objective.terms=[{name="cross-entropy"},{name="nmodal-infonce",weight=0.1}]'

This module is also the reference example of a method recipe (docs/plugins.md).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from torch import nn

from mmalign.compat import check_fusion, check_objective, fusions_providing, offered_keys
from mmalign.errors import ConfigError
from mmalign.interfaces import (
    Batch,
    BuildContext,
    EncoderRef,
    Fusion,
    FusionRef,
    Head,
    HeadRef,
    Method,
    Objective,
    ObjectiveRef,
    Outputs,
    StageSpec,
    StrictModel,
    Task,
    TrainConfig,
)
from mmalign.plugins import get_registry

EMBEDDED_ENCODERS = {
    "text": EncoderRef(name="minilm-l6", keep=["pooled"]),
    "image": EncoderRef(name="efficientnet-lite0", keep=["pooled"]),
}


#: synth-mosi (text, audio, video): its precomputed audio/video sequences (the
#: generator's AUDIO_DIM 16 and VISION_DIM 20) and the text tokens, so that a token
#: fusion (tecafn-cross-sample) finds what it reads
SYNTH_MOSI = {
    "encoders.text.keep": None,
    "encoders.audio": {"name": "audio-features", "config": {"dim": 16}},
    "encoders.video": {"name": "video-features", "config": {"dim": 20}},
}


class LateFusionConfig(StrictModel):
    encoders: dict[str, EncoderRef] = Field(default_factory=lambda: dict(EMBEDDED_ENCODERS))
    fusion: FusionRef = Field(default_factory=lambda: FusionRef(name="concat"))
    head: HeadRef = Field(default_factory=lambda: HeadRef(name="linear"))
    objective: ObjectiveRef = Field(default_factory=lambda: ObjectiveRef(name="task-loss"))
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(
            epochs=40, batch_size=64, optimizer="adam", lr=1e-3, patience=8
        )
    )


class LateFusionModel(nn.Module):
    """Fusion -> dropout -> head; per-modality embeddings pass through when the fusion
    exposes them (for an alignment term of the objective)."""

    def __init__(self, fusion: Fusion, head: Head, dropout: float, regression: bool) -> None:
        super().__init__()
        self.fusion = fusion
        self.dropout = nn.Dropout(dropout)
        self.head = head
        self.regression = regression

    def forward(self, batch: Batch) -> Outputs:
        fused = self.fusion({m: batch[m] for m in self.fusion.modalities})
        out = self.head(self.dropout(fused.pooled))
        outputs: Outputs = {"prediction": out.squeeze(-1)} if self.regression else {"logits": out}
        if fused.embeddings is not None:
            outputs["embeddings"] = fused.embeddings
        return outputs


def model_outputs(fusion_outputs: tuple[str, ...], regression: bool) -> tuple[str, ...]:
    """The output keys a late-fusion model returns with a fusion providing these."""
    task_key = "prediction" if regression else "logits"
    return (task_key, "embeddings") if "embeddings" in fusion_outputs else (task_key,)


class LateFusion(Method):
    """Frozen encoders, a registered fusion and head, and a registered objective."""

    Config = LateFusionConfig
    name = "late-fusion"
    default_task = "synth-sentiment"
    label_types = ("classification", "regression")
    task_overrides = {"synth-mosi": SYNTH_MOSI}

    def check(self, config: Any, task: Task) -> None:
        """The fusion gets the features it needs, provides the ``pooled`` vector the
        head needs, and exposes every output the objective reads."""
        registry = get_registry()
        offered = offered_keys(registry, config.encoders, task.modalities)
        fusion_cls, fusion_cfg = registry.config_of("fusion", config.fusion, "fusion")
        check_fusion(registry, config.fusion.name, fusion_cls, fusion_cfg, offered)
        provided = fusion_cls.outputs(fusion_cfg)
        if "pooled" not in provided:
            raise ConfigError(
                f"late-fusion's head needs the fusion's 'pooled' vector; fusion "
                f"'{config.fusion.name}' provides only {', '.join(provided)}. Fusions that "
                f"provide it: {', '.join(fusions_providing(registry, 'pooled'))}"
            )
        outputs = model_outputs(provided, task.label_type == "regression")
        check_objective(registry, config.objective, outputs, config.fusion.name)

    def stages(self, config: Any, task: Task) -> list[StageSpec]:
        def build(ctx: BuildContext) -> tuple[nn.Module, Objective]:
            registry = get_registry()
            regression = ctx.task.label_type == "regression"
            out_dim = 1 if regression else ctx.task.num_classes
            fusion = registry.create("fusion", config.fusion, where="fusion", inputs=ctx.inputs)
            head = registry.create(
                "head", config.head, where="head", in_dim=fusion.out_dim, out_dim=out_dim
            )
            model = LateFusionModel(fusion, head, config.dropout, regression)
            objective = registry.create("objective", config.objective, where="objective")
            return model, objective

        return [StageSpec(name="train", build=build, train=config.train)]

