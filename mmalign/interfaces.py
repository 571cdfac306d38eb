"""The component interfaces: Encoder, Fusion, Objective, Task, Method.

Components are ``torch.nn.Module`` subclasses (or plain classes for tasks and
methods) carrying a pydantic ``Config``. The runner composes them; nothing in the
runner knows any particular method.

Data flows as plain dictionaries so that methods can be mixed freely:

* a :class:`Sample` holds raw inputs per modality (a text string, an image path, an
  audio waveform or feature sequence, ...) and a label;
* an :class:`Encoder` turns raw inputs into :data:`Features` — ``{"pooled": [B, D],
  "tokens": [B, L, D], "mask": [B, L] (True = real token), optional "layers":
  [B, K, L, D]}``;
* a training batch is ``{modality: Features, "label": Tensor, "index": Tensor}``;
* a method's model returns an outputs dictionary whose keys the task understands
  (``"logits"`` for classification, ``"prediction"`` for regression,
  ``"embeddings": {modality: [B, D]}`` for retrieval).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

Features = dict[str, Tensor]
Batch = dict[str, Any]
Outputs = dict[str, Any]
LabelType = Literal["classification", "regression", "retrieval", "none"]


class StrictModel(BaseModel):
    """Base for every config: unknown keys are an error, never silently ignored."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False
    )


class EmptyConfig(StrictModel):
    """A component with no options."""


# --------------------------------------------------------------------------- data


@dataclass
class Sample:
    """One example: raw inputs per modality, a label, and where it came from."""

    id: str
    inputs: dict[str, Any]
    label: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskData:
    """A loaded task: samples per split plus what loading had to repair or skip."""

    splits: dict[str, list[Sample]]
    label_names: list[str] | None = None
    problems: list[dict[str, str]] = field(default_factory=list)
    repaired: dict[str, int] = field(default_factory=dict)
    source: str = ""

    def split(self, name: str) -> list[Sample]:
        return self.splits[name]


# ----------------------------------------------------------------------- encoders


class Encoder(nn.Module):
    """One modality in, :data:`Features` out.

    ``preprocess`` runs per sample on the CPU and may raise on a bad sample (the
    runner skips and counts it); ``collate`` stacks preprocessed samples; ``forward``
    maps a collated batch to features. ``fingerprint`` must change whenever the
    weights or the preprocessing change: it keys the feature cache.
    """

    Config: ClassVar[type[StrictModel]] = EmptyConfig
    modality: ClassVar[str] = ""

    def __init__(self, config: StrictModel | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else self.Config()

    @property
    def out_dim(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define out_dim")

    @property
    def frozen(self) -> bool:
        return not any(p.requires_grad for p in self.parameters())

    def preprocess(self, raw: Any) -> Any:
        return raw

    def collate(self, items: Sequence[Any]) -> Any:
        return torch.stack([torch.as_tensor(x) for x in items])

    def fingerprint(self) -> str:
        raise NotImplementedError(f"{type(self).__name__} must define fingerprint()")

    def freeze(self) -> Encoder:
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()


# ------------------------------------------------------------------ fusion / loss


class Fusion(nn.Module):
    """Per-modality features in, fused representation(s) out."""

    Config: ClassVar[type[StrictModel]] = EmptyConfig

    def __init__(self, config: StrictModel | None = None, **dims: Any) -> None:
        super().__init__()
        self.config = config if config is not None else self.Config()


@dataclass
class StepContext:
    """What an objective's ``training_step`` may use: the model, the batch, and an
    ``optimize(loss)`` that does backward, clipping and the optimizer step (AMP and
    DDP aware). Calling ``optimize`` twice takes two optimizer steps."""

    model: nn.Module
    batch: Batch
    optimize: Callable[[Tensor], None]
    forward: Callable[[Batch], Outputs]
    step: int
    epoch: int
    total_steps: int
    device: torch.device
    generator: torch.Generator
    metrics: dict[str, float] = field(default_factory=dict)


class Objective(nn.Module):
    """Model outputs and batch in; ``{"loss": scalar, other named sub-losses}`` out.

    Multi-step schedules (a gated second optimizer step, an EMA update after each
    step) override :meth:`training_step`; the runner only ever calls that.
    """

    Config: ClassVar[type[StrictModel]] = EmptyConfig

    def __init__(self, config: StrictModel | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else self.Config()

    @abstractmethod
    def forward(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]: ...

    def training_step(self, ctx: StepContext) -> dict[str, float]:
        outputs = ctx.forward(ctx.batch)
        losses = self(outputs, ctx.batch)
        ctx.optimize(losses["loss"])
        return {k: float(v.detach()) for k, v in losses.items()}


# ------------------------------------------------------------------------- tasks


class Task(ABC):
    """A dataset with splits, the modalities it offers, its labels and metrics.

    Subclasses set the class attributes and implement :meth:`load`. ``evaluate``
    turns the concatenated model outputs of a split into metrics.
    """

    Config: ClassVar[type[StrictModel]] = EmptyConfig
    name: ClassVar[str] = ""
    modalities: ClassVar[tuple[str, ...]] = ()
    label_type: ClassVar[LabelType] = "classification"
    label_names: ClassVar[tuple[str, ...]] = ()
    metrics: ClassVar[tuple[str, ...]] = ()
    higher_is_better: ClassVar[bool] = True
    embedded: ClassVar[bool] = False
    #: task to suggest when this one's data is absent
    stand_in: ClassVar[str | None] = None

    def __init__(self, config: StrictModel | None = None, data_dir: Path | None = None) -> None:
        self.config = config if config is not None else self.Config()
        self.data_dir = data_dir

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @abstractmethod
    def load(self) -> TaskData:
        """Read (or, for an embedded task, generate then read) every split."""

    def is_present(self) -> bool:
        return self.data_dir is not None and self.data_dir.exists()

    def missing_message(self) -> str:
        alt = f" Try the embedded stand-in: --task {self.stand_in}." if self.stand_in else ""
        return (
            f"Data for task '{self.name}' not found in {self.data_dir}. "
            f"Get it with `mmalign data fetch {self.name}` (or pass --data-dir).{alt}"
        )

    def prepare(self) -> None:  # noqa: B027 - optional hook, a no-op for real datasets
        """Make the data available: embedded tasks generate it here."""

    def evaluate(self, outputs: Outputs, labels: Tensor) -> dict[str, float]:
        from mmalign import metrics

        return metrics.evaluate_outputs(self.label_type, outputs, labels, self.metrics)


# ------------------------------------------------------------------------ methods


class TrainConfig(StrictModel):
    """Optimisation settings shared by every method stage.

    Every value has a range, checked when the config is resolved: a nonsense value
    (0 epochs, a negative batch, ``lr=inf``) must stop the run before any work, never
    train nothing and record the result as completed.
    """

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    eval_batch_size: int = Field(256, ge=1)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0, le=100)
    weight_decay: float = Field(0.0, ge=0)
    #: cosine/step: per epoch; warmup-cosine: per optimizer step, a linear warm-up from
    #: ``warmup_lr`` over ``warmup_epochs`` then a cosine to ``final_lr`` (I-JEPA's)
    scheduler: Literal["none", "cosine", "step", "warmup-cosine"] = "none"
    step_size: int = Field(10, ge=1)
    gamma: float = Field(0.5, gt=0, le=1)
    warmup_epochs: int = Field(0, ge=0)
    warmup_lr: float = Field(0.0, ge=0, le=100)
    final_lr: float = Field(0.0, ge=0, le=100)
    #: per optimizer step, a cosine from ``weight_decay`` to this (I-JEPA); None: constant
    final_weight_decay: float | None = Field(None, ge=0)
    #: biases, 1-d parameters (norms) and the names in a module's ``no_weight_decay()``
    #: get no weight decay (timm's parameter groups)
    decay_exclude_1d: bool = False
    grad_clip: float | None = Field(None, gt=0)
    patience: int | None = Field(5, ge=1)
    monitor: str | None = None  # None: the task's primary metric on validation
    drop_last: bool = False


@dataclass
class StageSpec:
    """One training stage of a method: which task it trains on and how to build it.

    ``build(ctx)`` returns ``(model, objective)``; ``ctx.previous`` holds the trained
    models of earlier stages. A ``reusable`` stage's trained model is stored under a
    key derived from ``reuse_config`` and reused by later runs with the same key.
    """

    name: str
    build: Callable[[BuildContext], tuple[nn.Module, Objective]]
    train: TrainConfig
    task: str | None = None
    reusable: bool = False
    reuse_config: dict[str, Any] = field(default_factory=dict)
    evaluate: bool = True
    encoders: dict[str, EncoderRef] | None = None
    loader: Callable[..., Iterator[Batch]] | None = None
    #: under DDP, let batches leave parts of the model unused (e.g. one modality pair
    #: per batch); those parameters then keep no gradient instead of failing DDP
    find_unused_parameters: bool = False
    #: task to train on instead when ``task``'s data is absent (an embedded stand-in);
    #: the runner prints a notice and records the task it used
    fallback_task: str | None = None
    #: config overrides of the stage's own task (and of its fallback), by task name
    task_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: frozen features derived once per split after ``build`` and before training (e.g.
    #: a frozen earlier stage's representation for a linear probe): called on batches of
    #: the split, it returns ``{name: Features}``; later batches carry ``batch[name]``
    precompute: Callable[[Batch], dict[str, Features]] | None = None


class ComponentRef(StrictModel):
    """A registered component by name plus its config overrides."""

    name: str
    config: dict[str, Any] = {}


class EncoderRef(ComponentRef):
    """An encoder choice; ``cache=False`` keeps the encoder in the training loop.

    ``inputs=True`` puts the preprocessed inputs in the batch (``"inputs"``) next to
    the cached features, for methods that re-encode part of an input (e.g. the
    visible patches of a masked image) while reusing the cached full-input features.
    """

    cache: bool = True
    inputs: bool = False
    #: feature keys the method uses (e.g. ["pooled"]); None keeps all. Dropping unused
    #: token tensors saves memory and a copy per batch.
    keep: list[str] | None = None


@dataclass
class BuildContext:
    """What a stage's ``build`` gets: the task, its encoders and their feature dims."""

    task: Task
    encoders: dict[str, Encoder]
    feature_dims: dict[str, int]
    config: Any
    previous: dict[str, nn.Module]
    device: torch.device


class Method(ABC):
    """A recipe: which encoders, fusion and objective, with sizes, for which task.

    ``Config`` is a pydantic model with at least ``encoders``, ``train`` and any
    method-specific fields; ``sizes`` maps a size name to overrides of that config.
    """

    Config: ClassVar[type[StrictModel]]
    name: ClassVar[str] = ""
    default_task: ClassVar[str] = ""
    sizes: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}
    default_size: ClassVar[str] = "default"
    #: per-task overrides applied before the user's (the paper's per-dataset tables)
    task_overrides: ClassVar[dict[str, dict[str, Any]]] = {}
    #: size -> task -> overrides of the *task's* config, applied before the user's
    #: ``task.*`` keys (e.g. ``--size paper`` reads the split the paper used)
    task_presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {}

    @abstractmethod
    def stages(self, config: Any, task: Task) -> list[StageSpec]:
        """The stages the runner trains, in order; the last one is evaluated on test."""
