"""The TeCaFN recipe: config (sizes, Table 4–7 hyper-parameters, Table 5 ablation
flags, the core-modality switch) and the single training stage."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from torch import nn

from mmalign.errors import ConfigError
from mmalign.interfaces import (
    BuildContext,
    EncoderRef,
    Method,
    Objective,
    StageSpec,
    Task,
    TrainConfig,
)
from mmalign.runner.optim import LR_ATTRIBUTE
from mmalign_tecafn.fusion import CrossSampleFusion, FusionConfig, as_list, xavier_init
from mmalign_tecafn.model import PredictionHead, TeCaFNModel
from mmalign_tecafn.objective import LossConfig, TeCaFNObjective

#: the feature sizes of each task's precomputed audio/video sequences: synth-mosi's
#: generator, the MMSA unaligned_50 pickles of MOSI and MOSEI (COVAREP audio,
#: Facet/OpenFace video); for UR-FUNNY, which has no standard pickle, our assumption
#: for its v2 COVAREP/OpenFace features (override with encoders.*.config.dim)
FEATURE_DIMS = {
    "synth-mosi": (16, 20),
    "synth-speakers": (16, 20),
    "cmu-mosi": (5, 20),
    "cmu-mosei": (74, 35),
    "ur-funny": (81, 75),
}
#: the paper's text encoder: bert-base-uncased, fine-tuned (weights from a local path
#: or the HF cache: --set encoders.text.config.path=DIR)
PAPER_TEXT_ENCODER = {
    "name": "bert-base-uncased",
    "cache": False,
    "config": {"trainable": True, "pooling": "cls"},
}
#: the CPU default: frozen MiniLM token states (not the paper's protocol)
DEFAULT_ENCODERS = {
    "text": EncoderRef(name="minilm-l6"),
    "audio": EncoderRef(name="audio-features", config={"dim": FEATURE_DIMS["synth-mosi"][0]}),
    "video": EncoderRef(name="video-features", config={"dim": FEATURE_DIMS["synth-mosi"][1]}),
}


def feature_dims(task: str) -> dict[str, int]:
    """``--set`` style overrides giving the audio/video encoders a task's sizes."""
    audio, video = FEATURE_DIMS[task]
    return {"encoders.audio.config.dim": audio, "encoders.video.config.dim": video}


class TeCaFNConfig(FusionConfig, LossConfig):
    """Every TeCaFN option, flat so that ``--set p=0.7`` works.

    Table 5 rows: ``no_contrast`` (w/o L_ta, L_tv), ``no_bicon``, ``no_gate`` (w/o
    L_tap, L_tvp: no replacement and no pair loss for that modality),
    ``random_negatives`` (w/o Hardneg), ``drop`` (w/o A, V); Figure 3: ``core``.
    """

    encoders: dict[str, EncoderRef] = Field(default_factory=lambda: dict(DEFAULT_ENCODERS))
    drop: list[str] = Field(default_factory=list, description="modalities left out (w/o A, V)")
    hidden: int = Field(128, description="width of the prediction MLP (d_prjh)")
    text_lr: float = Field(
        5e-5, gt=0.0, description="learning rate of a fine-tuned (cache=false) encoder: lr_bert"
    )
    head_dropout: float = 0.1
    output_scale: float = Field(3.0, gt=0.0, description="ŷ = scale·tanh(·): the label range")
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(
            epochs=20,
            batch_size=32,
            optimizer="adam",
            lr=1e-3,
            weight_decay=1e-4,
            grad_clip=1.0,
            patience=10,
        )
    )

    @field_validator("drop", mode="before")
    @classmethod
    def _drop_names(cls, value: Any) -> Any:
        return as_list(value)


def check_modalities(config: TeCaFNConfig, task: Task) -> list[str]:
    """The modalities the model uses; every modality named in the config must make
    sense for this task (a typo must not silently turn an ablation off)."""
    offered = [m for m in task.modalities if m in config.encoders]
    unknown = [m for m in config.drop if m not in offered]
    if unknown:
        raise ConfigError(f"drop names {unknown}, but task '{task.name}' offers {offered}")
    used = [m for m in offered if m not in config.drop]
    if config.core not in used:
        raise ConfigError(f"core modality '{config.core}' is not among the modalities used: {used}")
    for m in used:
        ref = config.encoders[m]
        if ref.config.get("trainable") and ref.cache:
            raise ConfigError(
                f"encoders.{m}.config.trainable=true needs encoders.{m}.cache=false: "
                "cached features cannot be fine-tuned"
            )
    others = [m for m in used if m != config.core]
    for key in ("no_contrast", "no_gate", "random_negatives"):
        bad = [m for m in getattr(config, key) if m not in others]
        if bad:
            raise ConfigError(f"{key} names {bad}; it takes non-core modalities in use: {others}")
    return used


def build_parts(config: TeCaFNConfig, ctx: BuildContext) -> tuple[nn.Module, Objective]:
    """The model and objective for a task (used by the method's single stage)."""
    used = check_modalities(config, ctx.task)
    fusion_cfg = FusionConfig(**config.model_dump(include=set(FusionConfig.model_fields)))
    fusion = CrossSampleFusion(fusion_cfg, dims={m: ctx.feature_dims[m] for m in used})
    regression = ctx.task.label_type == "regression"
    head = PredictionHead(
        config.dim,
        config.hidden,
        1 if regression else ctx.task.num_classes,
        config.head_dropout,
        config.output_scale if regression else None,
    )
    if config.init == "xavier":
        xavier_init(head)
    loss_cfg = LossConfig(**config.model_dump(include=set(LossConfig.model_fields)))
    objective = TeCaFNObjective(
        loss_cfg, regression=regression, batch_size=config.train.batch_size, num=config.num
    )
    live = {m: ctx.encoders[m] for m in used if not config.encoders[m].cache}
    for encoder in live.values():
        for param in encoder.parameters():
            setattr(param, LR_ATTRIBUTE, config.text_lr)
    return TeCaFNModel(fusion, head, live), objective


#: the paper, as ``mmalign list`` shows it
PAPER = (
    "TeCaFN: Huang, Chen, Huang, Huang, Wang, 'Text-centered cross-sample fusion network "
    "for multimodal sentiment analysis', Springer-Verlag, published online 30 July 2024"
)


class TeCaFN(Method):
    """Text-centred cross-sample fusion network (Huang et al., 2024)."""

    Config = TeCaFNConfig
    name = "tecafn"
    #: the gates' premise: recurring speakers (near-duplicate hard negatives), lost A/V
    default_task = "synth-speakers"
    sizes = {
        "default": {},
        # the paper's protocol: BERT fine-tuned at lr_bert (section 3.1, Algorithm 2)
        # and the code's six self- and six cross-attention layers, 40 epochs
        "paper": {
            "encoders.text": {**PAPER_TEXT_ENCODER},
            "unimodal_layers": 6,
            "cross_layers": 6,
            "train.epochs": 40,
        },
        "tiny": {
            "dim": 8,
            "unimodal_dim": 8,
            "contrast_dim": 8,
            "heads": 2,
            "unimodal_layers": 1,
            "cross_layers": 1,
            "hidden": 16,
        },
    }
    #: section 4.8: the best replacement probability per dataset (Table 6), num = 3;
    #: UR-FUNNY's p is not reported, so it keeps the code default 0.5
    task_overrides = {
        "cmu-mosi": {"p": 0.7, **feature_dims("cmu-mosi")},
        "cmu-mosei": {"p": 0.4, **feature_dims("cmu-mosei")},
        "ur-funny": feature_dims("ur-funny"),
    }

    def stages(self, config: Any, task: Task) -> list[StageSpec]:
        check_modalities(config, task)
        refs = {m: r for m, r in config.encoders.items() if m not in config.drop}

        def build(ctx: BuildContext) -> tuple[nn.Module, Objective]:
            return build_parts(config, ctx)

        return [StageSpec(name="train", build=build, train=config.train, encoders=refs)]
