"""The method recipe: frozen backbones, projection heads, n-modal InfoNCE, a strategy."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from torch import nn

from mmalign.errors import MMAlignError
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
from mmalign_infonce.heads import ProjectionHeads, ProjectionHeadsConfig
from mmalign_infonce.objective import NModalInfoNCE, NModalInfoNCEConfig
from mmalign_infonce.sampling import RoundRobin, Strategy, make_loader

#: frozen embedded backbones (audio-mel has no published weights: frozen random features)
EMBEDDED_ENCODERS = {
    "text": EncoderRef(name="minilm-l6"),
    "image": EncoderRef(name="efficientnet-lite0"),
    "audio": EncoderRef(name="audio-mel", config={"trainable": False}),
    "video": EncoderRef(name="video-frames"),
}


EVENTS_VIDEO_ENCODER = {
    "name": "video-frames",
    "config": {
        "frame_encoder": "timm",
        "frame_encoder_config": {"model": "resnet18", "weights": "random", "image_size": 64},
        "num_frames": 4,
    },
}


class InfoNCEConfig(StrictModel):
    encoders: dict[str, EncoderRef] = Field(default_factory=lambda: dict(EMBEDDED_ENCODERS))
    #: modalities to align (None: every modality of the task that has an encoder)
    modalities: list[str] | None = None
    strategy: Strategy = "joint"
    round_robin: RoundRobin = Field(default_factory=RoundRobin)
    head: ProjectionHeadsConfig = Field(default_factory=ProjectionHeadsConfig)
    loss: NModalInfoNCEConfig = Field(default_factory=NModalInfoNCEConfig)
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(
            epochs=60,
            batch_size=64,
            eval_batch_size=64,
            optimizer="adamw",
            lr=1e-3,
            weight_decay=1e-4,
            patience=3,
            monitor="val_loss",
        )
    )

    @field_validator("modalities", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        """``--set modalities=text`` arrives as a string; a list is what is meant."""
        return [value] if isinstance(value, str) else value


class InfoNCEModel(nn.Module):
    """Per-modality projection heads over frozen-backbone features."""

    def __init__(self, heads: ProjectionHeads) -> None:
        super().__init__()
        self.heads = heads

    def forward(self, batch: Batch) -> Outputs:
        return {"embeddings": self.heads(batch)}


def selected_modalities(config: InfoNCEConfig, task: Task) -> list[str]:
    """The modalities to align, checked against the task and the encoders."""
    chosen = config.modalities or [m for m in task.modalities if m in config.encoders]
    unknown = [m for m in chosen if m not in task.modalities or m not in config.encoders]
    if unknown:
        raise MMAlignError(
            f"modalities {unknown} are not offered by task '{task.name}' "
            f"({', '.join(task.modalities)}) or have no encoder in `encoders`"
        )
    if len(set(chosen)) < 2 or len(set(chosen)) != len(chosen):
        raise MMAlignError(f"infonce aligns two or more distinct modalities, got {chosen}")
    not_cached = [m for m in chosen if not config.encoders[m].cache]
    if not_cached:
        raise MMAlignError(
            f"infonce trains projection heads on frozen, cached features; "
            f"set encoders.{not_cached[0]}.cache=true"
        )
    return chosen


#: the paper, as ``mmalign list`` shows it (its text gives no venue or arXiv id)
PAPER = (
    "n-modal InfoNCE: Fürer, Bernstein, Rossetto, 'A Comparison of Late-fusion Training "
    "Strategies for Quad-modal Joint Embeddings'"
)


class InfoNCE(Method):
    """n-modal InfoNCE late-fusion joint embedding, trained round-robin or jointly."""

    Config = InfoNCEConfig
    name = "infonce"
    #: instance-level events (one latent in four views), 100 categories
    default_task = "synth-events"
    #: a video backbone distinct from the image one (frozen random ResNet-18 frames)
    task_overrides = {"synth-events": {"encoders.video": EVENTS_VIDEO_ENCODER}}
    #: the paper's three scenarios; as sizes they stay apart in the results store
    sizes = {
        "default": {},
        "tri-modal": {"modalities": ["text", "image", "audio"]},
        "round-robin": {"strategy": "round-robin"},
    }

    def stages(self, config: Any, task: Task) -> list[StageSpec]:
        modalities = selected_modalities(config, task)

        def build(ctx: BuildContext) -> tuple[nn.Module, Objective]:
            dims = {m: ctx.feature_dims[m] for m in modalities}
            heads = ProjectionHeads(config.head, dims=dims)
            return InfoNCEModel(heads), NModalInfoNCE(config.loss)

        return [
            StageSpec(
                name="train",
                build=build,
                train=config.train,
                encoders={m: config.encoders[m] for m in modalities},
                loader=make_loader(config.strategy, modalities, config.round_robin),
                find_unused_parameters=config.strategy == "round-robin",
            )
        ]
