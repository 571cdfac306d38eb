"""The TeCaFN recipe: config (sizes, Table 4–7 hyper-parameters, Table 5 ablation
flags, the core-modality switch), its swappable components and the single stage.

``fusion``, ``head`` and ``objective`` are component references built through the
registry; the paper's components are the defaults, and the flat keys (``p``,
``cross_layers``, ``gamma1``, ``hidden``, ...) configure them (a ref's own
``config`` wins). Any registered fusion that provides ``pooled`` works with the
head; the TeCaFN objective needs the cross-sample fusion's contrastive embeddings
and pair logits, so another fusion needs another objective (``task-loss``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from torch import nn

from mmalign.compat import check_fusion, check_objective, fusions_providing, offered_keys
from mmalign.errors import ConfigError
from mmalign.interfaces import (
    BuildContext,
    ComponentRef,
    EncoderRef,
    FusionRef,
    HeadRef,
    Method,
    Objective,
    ObjectiveRef,
    StageSpec,
    Task,
    TrainConfig,
)
from mmalign.plugins import get_registry
from mmalign.runner.optim import LR_ATTRIBUTE
from mmalign_tecafn.fusion import CrossSampleFusion, FusionConfig, as_list, xavier_init
from mmalign_tecafn.model import AUX_KEY, TeCaFNModel
from mmalign_tecafn.objective import LossConfig, TeCaFNObjective

#: the registered names of the paper's components
FUSION, HEAD, OBJECTIVE = "tecafn-cross-sample", "tecafn-mlp", "tecafn"

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
    fusion: FusionRef = Field(default_factory=lambda: FusionRef(name=FUSION))
    head: HeadRef = Field(default_factory=lambda: HeadRef(name=HEAD))
    objective: ObjectiveRef = Field(default_factory=lambda: ObjectiveRef(name=OBJECTIVE))
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


def with_flat(ref: ComponentRef, paper: str, flat: dict[str, Any]) -> ComponentRef:
    """``ref`` with the flat options under its config when it names the paper's
    component (its own ``config`` entries win); any other component as given."""
    if ref.name != paper:
        return ref
    return ref.model_copy(update={"config": {**flat, **ref.config}})


def component_refs(config: TeCaFNConfig) -> tuple[ComponentRef, ComponentRef, ComponentRef]:
    """The fusion, head and objective refs with the flat options applied."""
    dumped = config.model_dump()
    fusion = with_flat(config.fusion, FUSION, {k: dumped[k] for k in FusionConfig.model_fields})
    head_flat = {
        "hidden": config.hidden,
        "dropout": config.head_dropout,
        "output_scale": config.output_scale,
    }
    head = with_flat(config.head, HEAD, head_flat)
    objective = with_flat(
        config.objective, OBJECTIVE, {k: dumped[k] for k in LossConfig.model_fields}
    )
    return fusion, head, objective


def check_components(config: TeCaFNConfig, task: Task) -> None:
    """The fusion gets the features it needs and gives the head its pooled vector;
    the objective reads only what the model returns with that fusion."""
    used = check_modalities(config, task)
    registry = get_registry()
    fusion_ref, _, objective_ref = component_refs(config)
    refs = {m: config.encoders[m] for m in used}
    offered = offered_keys(registry, refs, task.modalities)
    fusion_cls, fusion_cfg = registry.config_of("fusion", fusion_ref, "fusion")
    check_fusion(registry, fusion_ref.name, fusion_cls, fusion_cfg, offered)
    provided = fusion_cls.outputs(fusion_cfg)
    if "pooled" not in provided:
        raise ConfigError(
            f"tecafn's head needs the fusion's 'pooled' vector; fusion '{fusion_ref.name}' "
            f"provides only {', '.join(provided)}. Fusions that provide it: "
            f"{', '.join(fusions_providing(registry, 'pooled'))}"
        )
    outputs = ["prediction" if task.label_type == "regression" else "logits"]
    if issubclass(fusion_cls, CrossSampleFusion):
        outputs.append(AUX_KEY)
    if "embeddings" in provided:
        outputs.append("embeddings")
    if AUX_KEY not in outputs and objective_ref.name == OBJECTIVE:
        raise ConfigError(
            f"objective 'tecafn' needs the '{FUSION}' fusion's contrastive embeddings and "
            f"pair logits, which fusion '{fusion_ref.name}' does not return; with another "
            "fusion use --set objective.name=task-loss"
        )
    check_objective(registry, objective_ref, tuple(outputs), fusion_ref.name)


def build_parts(config: TeCaFNConfig, ctx: BuildContext) -> tuple[nn.Module, Objective]:
    """The model and objective for a task (used by the method's single stage)."""
    used = check_modalities(config, ctx.task)
    registry = get_registry()
    fusion_ref, head_ref, objective_ref = component_refs(config)
    inputs = {m: ctx.inputs[m] for m in used}
    fusion = registry.create("fusion", fusion_ref, where="fusion", inputs=inputs)
    regression = ctx.task.label_type == "regression"
    out_dim = 1 if regression else ctx.task.num_classes
    head = registry.create("head", head_ref, where="head", in_dim=fusion.out_dim, out_dim=out_dim)
    if config.init == "xavier":
        xavier_init(head)
    objective = registry.create("objective", objective_ref, where="objective")
    if isinstance(objective, TeCaFNObjective):
        objective.batch_size = config.train.batch_size  # the diagnostics' batches
    live = {m: ctx.encoders[m] for m in used if not config.encoders[m].cache}
    for encoder in live.values():
        for param in encoder.parameters():
            setattr(param, LR_ATTRIBUTE, config.text_lr)
    return TeCaFNModel(fusion, head, live, regression), objective


#: the paper, as ``mmalign list`` shows it
PAPER = (
    "TeCaFN: Huang, Chen, Huang, Huang, Wang, 'Text-centered cross-sample fusion network "
    "for multimodal sentiment analysis', Springer-Verlag, published online 30 July 2024"
)


class TeCaFN(Method):
    """Text-centred cross-sample fusion network (Huang et al., 2024)."""

    Config = TeCaFNConfig
    name = "tecafn"
    paper = (
        "Text-centered cross-sample fusion network for multimodal sentiment analysis. "
        "Qionghao Huang, Jili Chen, Changqin Huang, Xiaodi Huang, Yi Wang (Springer-Verlag, "
        "published online 30 July 2024)"
    )
    label_types = ("regression", "classification")
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

    def check(self, config: Any, task: Task) -> None:
        check_components(config, task)

    def stages(self, config: Any, task: Task) -> list[StageSpec]:
        check_modalities(config, task)
        refs = {m: r for m, r in config.encoders.items() if m not in config.drop}

        def build(ctx: BuildContext) -> tuple[nn.Module, Objective]:
            return build_parts(config, ctx)

        return [StageSpec(name="train", build=build, train=config.train, encoders=refs)]
