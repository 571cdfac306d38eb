"""The TI-JEPA recipe: ``pretrain`` (JEPA on image-caption pairs) then ``probe`` (a
linear head on the frozen pretrained representation, on the run's task)."""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import Field
from torch import Tensor, nn

import mmalign
from mmalign.data.coco import COCOConfig
from mmalign.errors import ConfigError
from mmalign.interfaces import (
    Batch,
    BuildContext,
    EncoderRef,
    HeadRef,
    Method,
    Objective,
    ObjectiveRef,
    StageSpec,
    StrictModel,
    Task,
    TrainConfig,
    added_field,
)
from mmalign_tijepa.fusion import T2IConfig, masked_mean
from mmalign_tijepa.masks import MultiblockConfig, MultiblockMaskCollator
from mmalign_tijepa.model import AttentivePool, Probe, Representation, TIJEPAModel
from mmalign_tijepa.objective import JEPAConfig, JEPAObjective
from mmalign_tijepa.pairs import Captions, PretrainLoader
from mmalign_tijepa.predictor import PredictorConfig

log = logging.getLogger("mmalign.tijepa")

#: runs on the CPU with the encoders that ship in PyPI packages
EMBEDDED_ENCODERS = {
    "text": EncoderRef(name="minilm-l6"),
    "image": EncoderRef(name="efficientnet-lite0"),
}
#: the paper's encoders (I-JEPA ViT-H/14 and gte-base-en-v1.5), for GPU runs
PAPER_ENCODERS = {
    "text": EncoderRef(name="gte-base"),
    "image": EncoderRef(name="ijepa-vit-h14"),
}
#: what every paper size shares: the paper's encoders, and workers that decode the
#: context path's images per batch (paper mode re-encodes the visible patches)
SIZE_PROTOCOL = {
    "encoders.text.name": PAPER_ENCODERS["text"].name,
    "encoders.image.name": PAPER_ENCODERS["image"].name,
    "train.num_workers": 8,
}
REPRESENTATION_KEY = "ti-jepa"
#: on the embedded probe tasks: the embedded pretraining set, on a budget a 2-core CPU
#: finishes in minutes (real probe tasks pretrain on COCO; its stand-in only with
#: ``--allow-stand-in``, and the run is then marked stand-in)
CPU_PRETRAIN = {
    "pretrain_task": "synth-captions",
    "train.epochs": 2,
    "train.batch_size": 32,
    "pretrain_task_configs.synth-captions.images": 64,
}
#: on the structured probe task: pretraining on captions that say what is where, with
#: enough optimizer steps for the EMA target to move (360 train images, one caption
#: each per epoch, batch 16: 23 steps per epoch, 92 in all)
SCENES_PRETRAIN = {
    "pretrain_task": "synth-scenes",
    "train.epochs": 4,
    "train.batch_size": 16,
}
#: the authors' large script (I-JEPA's init_opt and in1k_vith14_ep300.yaml), per step
CODE_SCHEDULE = {
    "train.scheduler": "warmup-cosine",
    "train.warmup_epochs": 40,
    "train.warmup_lr": 2e-4,
    "train.final_lr": 1e-6,
    "train.weight_decay": 0.04,
    "train.final_weight_decay": 0.4,
}


class ProbeConfig(StrictModel):
    """Section 5.1: a linear head, Adam lr 1e-3, 40 epochs, cross-entropy (registered
    components: ``probe.head.name=mlp`` or ``probe.objective.name=...`` swap them)."""

    module: Representation = Field(
        "target", description="which cross-attention module gives the representation"
    )
    pool: Literal["mean", "attentive"] = added_field(
        "mean",
        "mean: the head reads the mean of the fused image tokens (the authors' code); "
        "attentive: a learned query attends to the tokens first (V-JEPA's attentive probe)",
    )
    head: HeadRef = Field(default_factory=lambda: HeadRef(name="linear"))
    objective: ObjectiveRef = Field(default_factory=lambda: ObjectiveRef(name="task-loss"))
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(
            epochs=40, batch_size=64, optimizer="adam", lr=1e-3, patience=None
        )
    )


class TIJEPAConfig(StrictModel):
    encoders: dict[str, EncoderRef] = Field(default_factory=lambda: dict(EMBEDDED_ENCODERS))
    cross_attention: T2IConfig = Field(default_factory=T2IConfig)
    predictor: PredictorConfig = Field(default_factory=PredictorConfig)
    masks: MultiblockConfig = Field(default_factory=MultiblockConfig)
    objective: JEPAConfig = Field(default_factory=JEPAConfig)
    target_norm: bool = Field(True, description="layer-norm the targets (I-JEPA code)")
    context_path: Literal["paper", "code"] = Field(
        "paper",
        description="paper: re-encode the visible patches with the frozen ViT; code: mask "
        "the cached full-image tokens (the authors' code; forced for CNN encoders)",
    )
    pretrain_task: str = "coco-captions"
    fallback_task: str | None = Field(
        "synth-captions", description="pretraining set used when pretrain_task has no data"
    )
    captions: Captions = Field(
        "one-random",
        description="pretraining pairs per epoch: one-random (the paper: each image once, a "
        "caption drawn per epoch) or all (every caption a pair)",
    )
    pretrain_task_configs: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="config of the pretraining task, by task name"
    )
    pretrain_per_seed: bool = Field(
        False,
        description="each seed pretrains its own model (independent replicates, as a "
        "suite's confidence intervals need); false: seeds share one pretraining",
    )
    #: Table 2 (pretraining); the probe has its own under ``probe.train``. The final
    #: weights are kept (``monitor="last"``): the validation JEPA loss is measured against
    #: a moving EMA target, so epochs are not comparable (``monitor=val_loss`` selects).
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(
            epochs=300,
            batch_size=1024,
            optimizer="adamw",
            lr=1e-3,
            weight_decay=0.04,
            decay_exclude_1d=True,
            patience=None,
            monitor="last",
        )
    )
    probe: ProbeConfig = Field(default_factory=ProbeConfig)


#: the paper, as ``mmalign list`` shows it (its text gives no venue or arXiv id)
PAPER = (
    "TI-JEPA: Vo, Nguyen, Nguyen, Quan, 'TI-JEPA: An Innovative Energy-based Joint "
    "Embedding Strategy for Text-Image Multimodal Systems'"
)

_KEEP_SUPPORT: dict[str, bool] = {}


def supports_patch_selection(ref: EncoderRef) -> bool:
    """Whether the configured image encoder can encode a subset of patches (a ViT).

    Decided before the runner builds the encoders because paper mode needs the
    preprocessed images kept next to the cached features; memoised per encoder config.
    """
    key = ref.model_dump_json()
    if key not in _KEEP_SUPPORT:
        cls = mmalign.get_registry().get("encoder", ref.name)
        encoder = cls(cls.Config.model_validate(ref.config))
        _KEEP_SUPPORT[key] = bool(getattr(encoder, "supports_keep", False))
    return _KEEP_SUPPORT[key]


def check_caption_tasks(cfg: TIJEPAConfig) -> None:
    """``captions=one-random`` groups pairs by image: the pretraining task (and its
    stand-in) must be read by the COCO reader, which names pairs by image."""
    if cfg.captions != "one-random":
        return
    registry = mmalign.get_registry()
    for name in filter(None, (cfg.pretrain_task, cfg.fallback_task)):
        task = registry.get("task", name)
        if not (issubclass(task.Config, COCOConfig) or getattr(task, "reads_coco", False)):
            raise ConfigError(
                f"ti-jepa: captions='one-random' needs image-caption pairs from the COCO "
                f"reader; pretraining task '{name}' is not one (use --set captions=all)"
            )


class TIJEPA(Method):
    """TI-JEPA: text-to-image cross-attention pretrained by joint-embedding prediction."""

    Config = TIJEPAConfig
    name = "ti-jepa"
    paper = (
        "TI-JEPA: An Innovative Energy-based Joint Embedding Strategy for Text-Image "
        "Multimodal Systems. Khang H. N. Vo, Duc P. T. Nguyen, Thong T. Nguyen, Tho T. Quan "
        "(arXiv:2503.06380)"
    )
    default_task = "synth-clash"
    sizes = {
        # ours, for a laptop: the default runs in minutes on 2 CPU cores (Table 1's small
        # pretrains at about 7 s a step there) with the embedded encoders; the embedded
        # CNN's tokens get the grid positions a ViT's carry (README: deviations)
        "cpu": {"cross_attention.depth": 2, "cross_attention.heads": 4,
                "cross_attention.dim": 256, "predictor.depth": 4, "predictor.heads": 4,
                "predictor.dim": 192, "cross_attention.image_positions": "sincos"},
        # Table 1's modules with the encoders of Table 4's rows; images of the context
        # path are decoded per batch in DataLoader workers
        "small": {**SIZE_PROTOCOL, "cross_attention.depth": 4, "cross_attention.heads": 8,
                  "cross_attention.dim": 768},
        "medium": {**SIZE_PROTOCOL, "cross_attention.depth": 6, "cross_attention.heads": 10,
                   "cross_attention.dim": 768},
        "large": {**SIZE_PROTOCOL, "cross_attention.depth": 8, "cross_attention.heads": 12,
                  "cross_attention.dim": 1024},
        # Table 4's best row (the name earlier versions gave it; the same as large)
        "paper": {**SIZE_PROTOCOL, "cross_attention.depth": 8, "cross_attention.heads": 12,
                  "cross_attention.dim": 1024},
    }
    default_size = "cpu"
    task_overrides = {
        "synth-sentiment": CPU_PRETRAIN,
        "synth-sarcasm": CPU_PRETRAIN,
        "synth-clash": SCENES_PRETRAIN,
        "synth-where": SCENES_PRETRAIN,
    }

    def stages(self, config: Any, task: Task) -> list[StageSpec]:
        cfg: TIJEPAConfig = config
        image, text = cfg.cross_attention.image, cfg.cross_attention.text
        missing = {image, text} - set(cfg.encoders)
        if missing:
            raise ConfigError(f"ti-jepa needs encoders for {sorted(missing)}")
        if not {image, text} <= set(task.modalities):
            raise ConfigError(
                f"ti-jepa probes image-text tasks; '{task.name}' offers {list(task.modalities)}"
            )
        if task.label_type not in ("classification", "regression"):
            raise ConfigError(f"ti-jepa probes a labelled task; '{task.name}' has no labels")
        uncached = [m for m in (image, text) if not cfg.encoders[m].cache]
        if uncached:
            raise ConfigError(
                f"ti-jepa: encoders.{uncached[0]}.cache=false is not supported: the target "
                "path and the probe read the frozen encoders' cached tokens (paper mode "
                "re-encodes the visible patches itself)"
            )
        if cfg.masks.modality not in (None, image):
            raise ConfigError(
                f"ti-jepa: masks.modality='{cfg.masks.modality}' but the masks are on the "
                f"image tokens of cross_attention.image='{image}'; leave masks.modality unset"
            )
        check_caption_tasks(cfg)
        paper = cfg.context_path == "paper" and supports_patch_selection(cfg.encoders[image])
        if cfg.context_path == "paper" and not paper:
            log.warning(
                "ti-jepa: image encoder '%s' is not a ViT, so visible patches cannot be "
                "re-encoded alone; the context path masks the cached tokens (code mode)",
                cfg.encoders[image].name,
            )
        if (cfg.cross_attention.image_positions == "encoder"
                and not supports_patch_selection(cfg.encoders[image])):
            log.warning(
                "ti-jepa: image encoder '%s' is not a ViT, so its tokens carry no positions "
                "and the representation cannot tell where things are; "
                "--set cross_attention.image_positions=sincos gives them the grid's",
                cfg.encoders[image].name,
            )
        refs = dict(cfg.encoders)
        if paper:
            refs[image] = refs[image].model_copy(update={"inputs": True})
        collator = MultiblockMaskCollator(cfg.masks.model_copy(update={"modality": image}))
        loader = PretrainLoader(collator, cfg.captions)
        pretrained: dict[str, TIJEPAModel] = {}

        def build_pretrain(ctx: BuildContext) -> tuple[nn.Module, Objective]:
            model = TIJEPAModel(
                cfg.cross_attention,
                cfg.predictor,
                image_dim=ctx.feature_dims[image],
                text_dim=ctx.feature_dims[text],
                target_norm=cfg.target_norm,
                grid=cfg.masks.grid,
                image_encoder=ctx.encoders[image] if paper else None,
            )
            return model, JEPAObjective(cfg.objective, loader=loader)

        def build_probe(ctx: BuildContext) -> tuple[nn.Module, Objective]:
            backbone = ctx.previous["pretrain"]
            assert isinstance(backbone, TIJEPAModel)
            pretrained["model"] = backbone.requires_grad_(False).eval()
            regression = ctx.task.label_type == "regression"
            registry = mmalign.get_registry()
            head = registry.create(
                "head", cfg.probe.head, where="probe.head", in_dim=cfg.cross_attention.dim,
                out_dim=1 if regression else ctx.task.num_classes,
            )
            objective = registry.create("objective", cfg.probe.objective,
                                        where="probe.objective")
            pool = (AttentivePool(cfg.cross_attention.dim, cfg.cross_attention.heads)
                    if cfg.probe.pool == "attentive" else None)
            return Probe(head, REPRESENTATION_KEY, regression, pool), objective

        def represent(batch: Batch) -> dict[str, dict[str, Tensor]]:
            backbone = pretrained["model"]
            device = batch[image]["tokens"].device
            backbone.to(device)
            tokens, mask = backbone.represent_tokens(batch, cfg.probe.module)
            features = {"pooled": masked_mean(tokens, mask)}
            if cfg.probe.pool == "attentive":  # the tokens only when read: N times the memory
                features["tokens"] = tokens
                if mask is not None:
                    features["mask"] = mask
            return {REPRESENTATION_KEY: features}

        reuse = cfg.model_dump(
            mode="json",
            include={"cross_attention", "predictor", "masks", "objective", "target_norm",
                     "train", "encoders", "captions"},
        )
        reuse["masks"].pop("modality")  # always cross_attention.image, already in the key
        reuse["context_path"] = "paper" if paper else "code"
        return [
            StageSpec(
                name="pretrain",
                build=build_pretrain,
                train=cfg.train,
                task=cfg.pretrain_task,
                fallback_task=cfg.fallback_task,
                task_configs=cfg.pretrain_task_configs,
                reusable=True,
                reuse_config=reuse,
                reuse_per_seed=cfg.pretrain_per_seed,
                evaluate=False,
                encoders=refs,
                loader=loader,
            ),
            StageSpec(
                name="probe",
                build=build_probe,
                train=cfg.probe.train,
                encoders=dict(cfg.encoders),
                precompute=represent,
            ),
        ]
