"""The method recipe: frozen backbones, a fusion exposing per-modality embeddings (the
paper's projection heads), an alignment objective (n-modal InfoNCE), a strategy."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from torch import nn

from mmalign.compat import check_fusion, check_objective, fusions_providing, offered_keys
from mmalign.errors import ConfigError, MMAlignError
from mmalign.interfaces import (
    Batch,
    BuildContext,
    EncoderRef,
    Fusion,
    FusionRef,
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
from mmalign_infonce.sampling import RoundRobin, Strategy, Tuples, make_loader

#: frozen embedded backbones (audio-mel has no published weights: frozen random features)
EMBEDDED_ENCODERS = {
    "text": EncoderRef(name="minilm-l6"),
    "image": EncoderRef(name="efficientnet-lite0"),
    "audio": EncoderRef(name="audio-mel", config={"trainable": False}),
    "video": EncoderRef(name="video-frames"),
}

#: synth-events' video view: a frozen random ResNet-18 over 4 frames, so image and
#: video do not share one backbone (the paper stresses different ones)
EVENTS_VIDEO_ENCODER = {
    "name": "video-frames",
    "config": {
        "frame_encoder": "timm",
        "frame_encoder_config": {"model": "resnet18", "weights": "random", "image_size": 64},
        "num_frames": 4,
    },
}

#: the paper, as ``mmalign list`` shows it (its text gives no venue or arXiv id)
PAPER = (
    "n-modal InfoNCE: Fürer, Bernstein, Rossetto, 'A Comparison of Late-fusion Training "
    "Strategies for Quad-modal Joint Embeddings'"
)


class InfoNCEConfig(StrictModel):
    encoders: dict[str, EncoderRef] = Field(default_factory=lambda: dict(EMBEDDED_ENCODERS))
    #: modalities to align (None: every modality of the task that has an encoder)
    modalities: list[str] | None = None
    strategy: Strategy = "joint"
    round_robin: RoundRobin = Field(default_factory=RoundRobin)
    #: how a batch row is aligned across modalities: "category" (XMediaNet: one item of
    #: the same category per modality) or "event" (every modality's view of one event,
    #: for tasks whose samples name their instance); "auto" is resolved when the run is
    #: resolved ("event" when the task has instance ids) and recorded as resolved
    tuples: Literal["auto"] | Tuples = "auto"
    #: the paper's projection heads; any registered fusion exposing embeddings
    fusion: FusionRef = Field(default_factory=lambda: FusionRef(name="projection-heads"))
    #: equation 2; any registered objective reading only the embeddings
    objective: ObjectiveRef = Field(default_factory=lambda: ObjectiveRef(name="nmodal-infonce"))
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


def tuple_mode(config: InfoNCEConfig, task: Task) -> Tuples:
    """``tuples`` for ``task``: "auto" is "event" when the task's samples name their
    cross-modal instance, else "category"; "event" on a task without is refused."""
    if config.tuples == "auto":
        return "event" if task.instances else "category"
    if config.tuples == "event" and not task.instances:
        raise ConfigError(
            f"tuples='event' needs instance ids, and task '{task.name}' has none (its "
            "samples are aligned by category only: no Sample.meta['instance']); "
            "use tuples=category"
        )
    return config.tuples


def check_round_robin(config: InfoNCEConfig, tuples: Tuples) -> None:
    """Events can be dealt to pairs only when tuples are events."""
    if config.round_robin.events == "disjoint" and tuples != "event":
        raise ConfigError(
            "round_robin.events='disjoint' deals events to the pairs, and tuples are "
            f"'{tuples}': set tuples=event (on a task that names its events)"
        )


class InfoNCEModel(nn.Module):
    """A fusion's per-modality embeddings over frozen-backbone features."""

    def __init__(self, fusion: Fusion) -> None:
        super().__init__()
        self.fusion = fusion

    def forward(self, batch: Batch) -> Outputs:
        present = {m: batch[m] for m in self.fusion.modalities if m in batch}
        return {"embeddings": self.fusion(present).embeddings}


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


class InfoNCE(Method):
    """n-modal InfoNCE late-fusion joint embedding, trained round-robin or jointly, on
    tuples aligned by category or, where the task names them, by event."""

    Config = InfoNCEConfig
    name = "infonce"
    paper = (
        "A Comparison of Late-fusion Training Strategies for Quad-modal Joint "
        "Embeddings. Domenic Luca Fürer, Abraham Bernstein, Luca Rossetto (University of Zurich)"
    )
    #: instance-level events (one latent in four views), 100 categories
    default_task = "synth-events"
    #: a video backbone distinct from the image one
    task_overrides = {"synth-events": {"encoders.video": EVENTS_VIDEO_ENCODER}}
    label_types = ("retrieval", "classification")
    #: the paper's three scenarios; as sizes they stay apart in the results store
    sizes = {
        "default": {},
        "tri-modal": {"modalities": ["text", "image", "audio"]},
        "round-robin": {"strategy": "round-robin"},
    }

    def check(self, config: Any, task: Task) -> None:
        """The fusion gets what it needs and exposes the embeddings the objective reads;
        ``tuples`` fits the task and is resolved in ``config``, so the run records the
        mode it trains with."""
        config.tuples = tuple_mode(config, task)
        check_round_robin(config, config.tuples)
        modalities = selected_modalities(config, task)
        registry = get_registry()
        refs = {m: config.encoders[m] for m in modalities}
        offered = offered_keys(registry, refs, task.modalities)
        fusion_cls, fusion_cfg = registry.config_of("fusion", config.fusion, "fusion")
        check_fusion(registry, config.fusion.name, fusion_cls, fusion_cfg, offered)
        provided = fusion_cls.outputs(fusion_cfg)
        if "embeddings" not in provided:
            raise ConfigError(
                f"infonce aligns per-modality embeddings; fusion '{config.fusion.name}' "
                f"provides only {', '.join(provided)}. Fusions that expose them: "
                f"{', '.join(fusions_providing(registry, 'embeddings'))}"
            )
        check_objective(registry, config.objective, ("embeddings",), config.fusion.name)

    def stages(self, config: Any, task: Task) -> list[StageSpec]:
        modalities = selected_modalities(config, task)

        def build(ctx: BuildContext) -> tuple[nn.Module, Objective]:
            registry = get_registry()
            inputs = {m: ctx.inputs[m] for m in modalities}
            fusion = registry.create("fusion", config.fusion, where="fusion", inputs=inputs)
            objective = registry.create("objective", config.objective, where="objective")
            return InfoNCEModel(fusion), objective

        return [
            StageSpec(
                name="train",
                build=build,
                train=config.train,
                encoders={m: config.encoders[m] for m in modalities},
                loader=make_loader(
                    config.strategy, modalities, config.round_robin, tuple_mode(config, task)
                ),
                find_unused_parameters=config.strategy == "round-robin",
            )
        ]
