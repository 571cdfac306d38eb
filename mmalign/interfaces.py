"""The component contracts: Encoder, Fusion, Head, Objective, Metric, Task, Method.

Components are ``torch.nn.Module`` subclasses (or plain classes for tasks and
methods) carrying a pydantic ``Config``. The runner composes them; nothing in the
runner knows any particular method. These docstrings are the plugin author's
reference: each class says what it receives, what it must return and what it must
declare so that the core can check a composition *before* any data is loaded.

Data flows as plain dictionaries so that methods can be mixed freely:

* a :class:`Sample` holds raw inputs per modality (a text string, an image path, an
  audio waveform or feature sequence, ...) and a label;
* an :class:`Encoder` turns raw inputs into :data:`Features` — ``{"pooled": [B, D],
  "tokens": [B, L, D], "mask": [B, L] (True = real token), optional "layers":
  [B, K, L, D]}`` (how many layers, :meth:`Encoder.layer_count` says from the config);
* a training batch is ``{modality: Features, "label": Tensor, "index": Tensor}``;
* a :class:`Fusion` maps ``{modality: Features}`` to one :class:`FusionOutput`;
* a method's model returns an outputs dictionary whose keys the task and the
  objective understand (``"logits"`` for classification, ``"prediction"`` for
  regression, ``"embeddings": {modality: [B, D]}`` for retrieval and alignment).
"""

from __future__ import annotations

import fnmatch
import importlib
from abc import ABC, ABCMeta, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from torch import Tensor, nn

Features = dict[str, Tensor]
Batch = dict[str, Any]
Outputs = dict[str, Any]
LabelType = Literal["classification", "regression", "retrieval", "none"]
LABEL_TYPES: tuple[LabelType, ...] = ("classification", "regression", "retrieval", "none")
#: what a fusion can hand on: a fused vector, per-modality embeddings, fused tokens
FusionKey = Literal["pooled", "embeddings", "tokens"]
FUSION_KEYS: tuple[FusionKey, ...] = ("pooled", "embeddings", "tokens")
#: the feature keys an encoder can offer a fusion
FeatureKey = Literal["pooled", "tokens"]
Direction = Literal["max", "min"]


#: ``json_schema_extra`` flag of a config field added after runs were recorded
ADDED_FIELD = "added"
#: serialisation context key that keeps added fields at their default (``mmalign config``)
ALL_FIELDS_KEY = "all_fields"
ALL_FIELDS = {ALL_FIELDS_KEY: True}


def added_field(default: Any, description: str) -> Any:
    """A config field added to a schema that recorded runs already use: at its default
    it is left out of the config's dump, so a run's resolved configuration, and with it
    the run's identity in the store and the reuse key of a stored stage, stay what they
    were before the field existed (the default must be the behaviour before it)."""
    return Field(default, description=description, json_schema_extra={ADDED_FIELD: True})


class StrictModel(BaseModel):
    """Base for every config: unknown keys are an error, never silently ignored."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False
    )

    @model_serializer(mode="wrap")
    def _omit_added_defaults(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        data = handler(self)
        if not isinstance(data, dict) or (info.context or {}).get(ALL_FIELDS_KEY):
            return data
        for name, spec in type(self).model_fields.items():
            extra = spec.json_schema_extra
            if (isinstance(extra, dict) and extra.get(ADDED_FIELD) and name in data
                    and getattr(self, name) == spec.default):
                del data[name]
        return data


class EmptyConfig(StrictModel):
    """A component with no options."""


# --------------------------------------------------------------------------- data


#: the ``Sample.meta`` key of a sample's cross-modal instance id
INSTANCE = "instance"


@dataclass
class Sample:
    """One example: raw inputs per modality, a label, and where it came from.

    ``meta[INSTANCE]`` (when a task has :attr:`Task.instances`) names the instance the
    sample shows: samples of different modalities with the same id are views of one
    instance (synth-events' events), not merely of one category.
    """

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
    #: the feature keys ``forward`` returns; fusions are checked against it (with the
    #: run's ``keep``) before any feature is extracted
    provides: ClassVar[tuple[FeatureKey, ...]] = ("pooled",)

    def __init__(self, config: StrictModel | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else self.Config()

    @classmethod
    def layer_count(cls, config: StrictModel) -> int:
        """How many hidden states ``forward`` returns as ``"layers"`` (``[B, K, L, D]``)
        under ``config``; 0 when it returns none. A method that weighs layers (SPP-SCL's
        hierarchical attention) checks it when the run is resolved, before extraction."""
        return 0

    @property
    def out_dim(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define out_dim")

    @property
    def token_dim(self) -> int:
        """Width of ``tokens`` (the pooled width unless an encoder says otherwise)."""
        return self.out_dim

    def feature_spec(self, keep: Sequence[str] | None = None) -> FeatureSpec:
        """What a fusion receives from this encoder once ``keep`` has dropped keys."""
        kept = set(self.provides if keep is None else keep) & set(self.provides)
        return FeatureSpec(
            pooled=self.out_dim if "pooled" in kept else None,
            tokens=self.token_dim if "tokens" in kept else None,
        )

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


class _ModuleABCMeta(ABCMeta, type(nn.Module)):  # type: ignore[misc]
    """``nn.Module``'s metaclass with ABC bookkeeping, so abstract methods are enforced."""


@dataclass(frozen=True)
class FeatureSpec:
    """What one modality hands a fusion: the width of each feature key it carries.

    ``None`` means the key is absent (the encoder does not produce it, or the run's
    ``keep`` dropped it). ``tokens`` come with their ``mask``.
    """

    pooled: int | None = None
    tokens: int | None = None

    def has(self, key: str) -> bool:
        return getattr(self, key, None) is not None

    def keys(self) -> tuple[str, ...]:
        return tuple(k for k in ("pooled", "tokens") if self.has(k))


@dataclass
class FusionOutput:
    """The one return type of every :class:`Fusion`.

    * ``pooled`` — ``[B, out_dim]``, the fused vector a head classifies;
    * ``embeddings`` — ``{modality: [B, embed_dim]}``, per-modality vectors in a
      shared space (what alignment objectives and retrieval need);
    * ``tokens`` / ``mask`` — ``[B, L, out_dim]`` / ``[B, L]``, fused token states;
    * ``extras`` — anything method-specific (e.g. auxiliary views for a loss).

    A fusion fills exactly the keys its :meth:`Fusion.outputs` declares.
    """

    pooled: Tensor | None = None
    embeddings: dict[str, Tensor] | None = None
    tokens: Tensor | None = None
    mask: Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class Fusion(nn.Module, metaclass=_ModuleABCMeta):
    """Per-modality features in, one :class:`FusionOutput` out.

    Built as ``cls(config, inputs)`` (by :meth:`mmalign.registry.Registry.create`),
    where ``inputs`` maps each modality to the :class:`FeatureSpec` it receives. A
    fusion declares, at class level (or per config, by overriding the classmethods):

    * :attr:`requires` — feature keys it needs per modality; ``"*"`` means every
      modality it receives, a modality name means that modality must be present
      (e.g. ``{"image": ("tokens",), "text": ("pooled",)}``);
    * :attr:`provides` — which :class:`FusionOutput` fields it fills;
    * :attr:`out_dim` — the width of ``pooled`` (and ``tokens``), set in ``__init__``;
      :attr:`embed_dim` is the width of ``embeddings`` (``out_dim`` unless set).

    :func:`mmalign.compat.check_fusion` compares ``requires`` with what the encoders
    offer, and asks :meth:`check_modalities` whether their number and names fit,
    naming the component and key that do not fit, before extraction.
    """

    Config: ClassVar[type[StrictModel]] = EmptyConfig
    requires: ClassVar[Mapping[str, tuple[FeatureKey, ...]]] = {"*": ("pooled",)}
    provides: ClassVar[tuple[FusionKey, ...]] = ("pooled",)
    out_dim: int

    def __init__(self, config: StrictModel | None, inputs: Mapping[str, FeatureSpec]) -> None:
        super().__init__()
        self.config = config if config is not None else self.Config()
        self.inputs: dict[str, FeatureSpec] = dict(inputs)

    @classmethod
    def requirements(cls, config: StrictModel) -> Mapping[str, tuple[FeatureKey, ...]]:
        """Feature keys needed per modality under ``config`` (default :attr:`requires`)."""
        return cls.requires

    @classmethod
    def check_modalities(cls, config: StrictModel, modalities: Sequence[str]) -> None:
        """Raise :class:`~mmalign.errors.ConfigError` when the fusion cannot fuse these
        modalities under ``config`` (e.g. a pairwise fusion given four); called when
        the run is resolved, next to :meth:`requirements`. The default accepts any."""

    @classmethod
    def outputs(cls, config: StrictModel) -> tuple[FusionKey, ...]:
        """The :class:`FusionOutput` fields filled under ``config`` (default :attr:`provides`)."""
        return cls.provides

    @property
    def embed_dim(self) -> int:
        """Width of each ``embeddings`` vector (a subclass sets it when it differs)."""
        return self.__dict__.get("_embed_dim", self.out_dim)

    @embed_dim.setter
    def embed_dim(self, value: int) -> None:
        self.__dict__["_embed_dim"] = value

    @property
    def modalities(self) -> list[str]:
        """The modalities this fusion was built for, in a stable order."""
        return sorted(self.inputs)

    @abstractmethod
    def forward(self, features: dict[str, Features]) -> FusionOutput:
        """Fuse ``{modality: Features}`` into the fields :meth:`outputs` declares."""


class Head(nn.Module, metaclass=_ModuleABCMeta):
    """A fused vector ``[B, in_dim]`` to ``[B, out_dim]`` (logits or a score).

    Built as ``cls(config, in_dim=..., out_dim=...)``; methods attach it to a
    fusion's ``pooled`` output of width ``Fusion.out_dim``.
    """

    Config: ClassVar[type[StrictModel]] = EmptyConfig

    def __init__(self, config: StrictModel | None, *, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.config = config if config is not None else self.Config()
        self.in_dim, self.out_dim = in_dim, out_dim

    @abstractmethod
    def forward(self, x: Tensor) -> Tensor: ...


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


class Objective(nn.Module, metaclass=_ModuleABCMeta):
    """Model outputs and batch in; ``{"loss": scalar, other named sub-losses}`` out.

    ``forward`` is abstract: a subclass without it cannot be instantiated. An
    objective declares the model outputs it reads in :attr:`requires` (e.g.
    ``("logits",)`` or ``("embeddings",)``), so a method can say, before training,
    that its fusion does not expose them. Extra constructor arguments a method
    passes (``cls(config, **build_args)``) are the objective's own business.

    Two optional hooks, both called by the runner:

    * :meth:`training_step` — multi-step schedules (a gated second optimizer step,
      an EMA update after each step) override it; the runner only ever calls this;
    * :meth:`report` — after a stage is trained, extra results to record (tables,
      diagnostics); ``None`` records nothing.
    """

    Config: ClassVar[type[StrictModel]] = EmptyConfig
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: StrictModel | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else self.Config()

    @classmethod
    def needs(cls, config: StrictModel) -> tuple[str, ...]:
        """Output keys read under ``config`` (default :attr:`requires`)."""
        return cls.requires

    @abstractmethod
    def forward(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        """``{"loss": scalar tensor, ...named sub-losses}`` for one batch."""

    def training_step(self, ctx: StepContext) -> dict[str, float]:
        """One training step: forward, loss, ``ctx.optimize(loss)``; returns the logged
        losses as floats."""
        outputs = ctx.forward(ctx.batch)
        losses = self(outputs, ctx.batch)
        ctx.optimize(losses["loss"])
        return {k: float(v.detach()) for k, v in losses.items()}

    def report(
        self,
        model: nn.Module,
        features: dict[str, Any],
        task: Task,
        run_dir: Path,
        device: torch.device,
    ) -> dict[str, Any] | None:
        """Extra results after training (``features`` holds each split's FeatureSet)."""
        return None


# ----------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Metric:
    """A registered metric function and the direction of every value it returns.

    ``compute`` is the function, or ``"package.module:function"`` imported on first
    use (so that listing the registry imports no scikit-learn). ``directions`` maps
    each value name it returns (``fnmatch`` patterns allowed, e.g. ``"*r@*"``) to
    ``"max"`` (higher is better) or ``"min"``. Model selection and the leaderboard's
    bolding take a value's direction from here, never from a task-wide flag.
    """

    compute: Callable[..., Any] | str
    directions: Mapping[str, Direction]

    @property
    def function(self) -> Callable[..., Any]:
        if callable(self.compute):
            return self.compute
        module, _, attr = self.compute.partition(":")
        return getattr(importlib.import_module(module), attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def direction(self, value: str) -> Direction | None:
        """The direction of ``value``, or ``None`` when this metric does not return it."""
        if value in self.directions:
            return self.directions[value]
        for pattern, direction in self.directions.items():
            if fnmatch.fnmatchcase(value, pattern):
                return direction
        return None


# ------------------------------------------------------------------------- tasks


class Task(ABC):
    """A dataset with splits, the modalities it offers, its labels and metrics.

    Subclasses set the class attributes and implement :meth:`load`. The task owns
    its evaluation: ``evaluate`` turns the concatenated model outputs of a split
    into metrics, and :meth:`direction` says whether each of them is better high or
    low (from the registered :class:`Metric` that returns it, unless the task's own
    :attr:`metric_directions` says otherwise). ``metrics[0]`` is the primary metric.
    """

    Config: ClassVar[type[StrictModel]] = EmptyConfig
    name: ClassVar[str] = ""
    modalities: ClassVar[tuple[str, ...]] = ()
    label_type: ClassVar[LabelType] = "classification"
    label_names: ClassVar[tuple[str, ...]] = ()
    metrics: ClassVar[tuple[str, ...]] = ()
    #: directions of values no registered metric declares (or that this task reads
    #: the other way round), e.g. ``{"loss": "min"}``
    metric_directions: ClassVar[Mapping[str, Direction]] = {}
    embedded: ClassVar[bool] = False
    #: task to suggest when this one's data is absent
    stand_in: ClassVar[str | None] = None
    #: what a cross-modal instance is (e.g. "event") when every sample of every modality
    #: carries its id in ``meta[INSTANCE]``; None when samples are aligned by label only
    instances: ClassVar[str | None] = None

    def __init__(self, config: StrictModel | None = None, data_dir: Path | None = None) -> None:
        self.config = config if config is not None else self.Config()
        self.data_dir = data_dir

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def direction(self, metric: str) -> Direction:
        """``"max"`` or ``"min"`` for one of this task's metric values."""
        if metric in self.metric_directions:
            return self.metric_directions[metric]
        from mmalign.plugins import get_registry

        return get_registry().metric_direction(metric, where=f"task '{self.name}'")

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
    #: the validation value that selects the epoch kept: None for the task's primary
    #: metric, a metric name (its direction comes from the registered Metric),
    #: "val_loss", or "last" to keep the final epoch
    monitor: str | None = None
    drop_last: bool = False
    #: DataLoader worker processes that gather batches (store reads, per-batch
    #: preprocessing of raw inputs) while the main one trains; how the data is read,
    #: not what is trained (the batches are the same), so it is no part of a run's
    #: identity (excluded from the recorded config and its hash)
    num_workers: int = Field(0, ge=0, le=64, exclude=True)


@dataclass
class StageSpec:
    """One training stage of a method: which task it trains on and how to build it.

    ``build(ctx)`` returns ``(model, objective)``; ``ctx.previous`` holds the trained
    models of earlier stages. A ``reusable`` stage's trained model is stored under a
    key derived from ``reuse_config`` and reused by later runs with the same key (and
    the same seed when ``reuse_per_seed``: seeds are then independent replicates).
    """

    name: str
    build: Callable[[BuildContext], tuple[nn.Module, Objective]]
    train: TrainConfig
    task: str | None = None
    reusable: bool = False
    reuse_config: dict[str, Any] = field(default_factory=dict)
    reuse_per_seed: bool = False
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
    """A registered component by name plus its config overrides.

    Subclasses set :attr:`kind`; every name in a resolved run config whose ref has a
    kind is looked up (with "did you mean") and its ``config`` validated against the
    component's ``Config`` when the config is resolved, before any data is loaded.
    """

    kind: ClassVar[str | None] = None
    name: str
    config: dict[str, Any] = {}


class EncoderRef(ComponentRef):
    """An encoder choice; ``cache=False`` keeps the encoder in the training loop.

    ``inputs=True`` puts the preprocessed inputs in the batch (``"inputs"``) next to
    the cached features, for methods that re-encode part of an input (e.g. the
    visible patches of a masked image) while reusing the cached full-input features.
    """

    kind: ClassVar[str | None] = "encoder"
    cache: bool = True
    inputs: bool = False
    #: feature keys the method uses (e.g. ["pooled"]); None keeps all. Dropping unused
    #: token tensors saves memory and a copy per batch.
    keep: list[str] | None = None


class FusionRef(ComponentRef):
    """A registered :class:`Fusion` by name (``--set fusion.name=spp-cmf``)."""

    kind: ClassVar[str | None] = "fusion"


class HeadRef(ComponentRef):
    """A registered :class:`Head` by name (``--set head.name=mlp``)."""

    kind: ClassVar[str | None] = "head"


class TermRef(ComponentRef):
    """One weighted term of a composite objective."""

    kind: ClassVar[str | None] = "objective"
    weight: float = 1.0


class ObjectiveRef(ComponentRef):
    """A registered :class:`Objective` by name, or a weighted sum of several.

    ``terms`` is the shorthand for the registered ``weighted-sum`` objective:
    ``--set 'objective.terms=[{name="cross-entropy"},{name="nmodal-infonce",weight=0.1}]'``
    resolves to ``name="weighted-sum"`` with those terms in its config (the previous
    objective's own options are dropped with it).
    """

    kind: ClassVar[str | None] = "objective"
    terms: list[TermRef] = []

    @model_validator(mode="before")
    @classmethod
    def _terms_mean_weighted_sum(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("terms"):
            return data
        out = {k: v for k, v in data.items() if k != "terms"}
        config = dict(out.get("config") or {}) if out.get("name") == WEIGHTED_SUM else {}
        out["name"], out["config"] = WEIGHTED_SUM, {**config, "terms": data["terms"]}
        return out


#: the registered name of the composite objective :class:`ObjectiveRef` expands to
WEIGHTED_SUM = "weighted-sum"


@dataclass
class BuildContext:
    """What a stage's ``build`` gets: the task, its encoders, their pooled widths
    (``feature_dims``) and, per modality, the :class:`FeatureSpec` a fusion receives
    once the encoder ref's ``keep`` is applied (``inputs``)."""

    task: Task
    encoders: dict[str, Encoder]
    feature_dims: dict[str, int]
    config: Any
    previous: dict[str, nn.Module]
    device: torch.device
    inputs: dict[str, FeatureSpec] = field(default_factory=dict)


class Method(ABC):
    """A recipe: which encoders, fusion and objective, with sizes, for which task.

    ``Config`` is a pydantic model with at least ``encoders``, ``train`` and any
    method-specific fields; swappable parts are :class:`ComponentRef` fields
    (``fusion: FusionRef``, ``objective: ObjectiveRef``, ``head: HeadRef``) built with
    :meth:`mmalign.registry.Registry.create`. ``sizes`` maps a size name to overrides
    of that config.

    A method declares the :attr:`label_types` it can train on and the
    :attr:`modalities` it cannot do without; a task outside them is refused when
    the run is resolved. :meth:`check` is the method's own composition check, also
    run before any data is loaded (e.g. "this objective needs embeddings, which this
    fusion does not expose").
    """

    Config: ClassVar[type[StrictModel]]
    name: ClassVar[str] = ""
    default_task: ClassVar[str] = ""
    #: the paper the method implements, cited as the paper itself gives it (title,
    #: authors, venue where its text names one); ``mmalign list`` shows it
    paper: ClassVar[str] = ""
    label_types: ClassVar[tuple[LabelType, ...]] = LABEL_TYPES
    #: modalities the task must offer (empty: any the configured encoders cover)
    modalities: ClassVar[tuple[str, ...]] = ()
    sizes: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}
    default_size: ClassVar[str] = "default"
    #: per-task overrides applied before the user's (the paper's per-dataset tables)
    task_overrides: ClassVar[dict[str, dict[str, Any]]] = {}
    #: size -> task -> overrides of the *task's* config, applied before the user's
    #: ``task.*`` keys (e.g. ``--size paper`` reads the split the paper used)
    task_presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {}

    def check(self, config: Any, task: Task) -> None:  # noqa: B027 - optional hook
        """Raise :class:`~mmalign.errors.ConfigError` for a composition that cannot
        work on ``task`` (called when the run is resolved; the default accepts all)."""

    @abstractmethod
    def stages(self, config: Any, task: Task) -> list[StageSpec]:
        """The stages the runner trains, in order; the last one is evaluated on test."""
