"""Resolving names into objects: method config, task, encoders, and the checks that
a composition fits before any data is loaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mmalign import paths
from mmalign.config import ConfigError, apply_overrides, resolve_method_config, validate
from mmalign.interfaces import (
    ComponentRef,
    Encoder,
    EncoderRef,
    FeatureSpec,
    Method,
    StrictModel,
    Task,
)
from mmalign.registry import Registry
from mmalign.suggest import did_you_mean


def method_config(
    method: Method, task_name: str, size: str, layers: list[dict[str, Any]]
) -> StrictModel:
    if size not in method.sizes:
        raise ConfigError(
            f"Method '{method.name}' has no size '{size}'.{did_you_mean(size, method.sizes)} "
            f"Sizes: {', '.join(method.sizes)}"
        )
    presets = [method.sizes[size], method.task_overrides.get(task_name, {})]
    return resolve_method_config(method.Config, presets + layers)  # type: ignore[return-value]


def split_overrides(sets: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``task.*`` keys configure the task; everything else configures the method."""
    task = {k.removeprefix("task."): v for k, v in sets.items() if k.startswith("task.")}
    method = {k: v for k, v in sets.items() if not k.startswith("task.")}
    return method, task


def make_task(
    registry: Registry, name: str, task_config: dict[str, Any], data_dir: Path | None
) -> Task:
    cls = registry.entry("task", name, "--task").obj
    # Only the user's keys: the config's own validators fill the rest, so a preset key
    # (a structured task's ``structure``) supplies the knobs the user left unset.
    tree = apply_overrides(cls.Config, {}, task_config)
    cfg = validate(cls.Config, tree, prefix="task", component=f"task '{name}'")
    return cls(cfg, data_dir=paths.task_data_dir(name, data_dir))


def make_encoders(
    registry: Registry, refs: dict[str, EncoderRef], modalities: tuple[str, ...]
) -> dict[str, Encoder]:
    """Instantiate the encoders for the modalities the task offers."""
    return {
        modality: registry.create("encoder", ref, where=f"encoders.{modality}")
        for modality, ref in refs.items()
        if modality in modalities
    }


def feature_specs(
    encoders: dict[str, Encoder], refs: dict[str, EncoderRef]
) -> dict[str, FeatureSpec]:
    """What each modality hands a fusion once its ref's ``keep`` is applied."""
    return {m: e.feature_spec(refs[m].keep) for m, e in encoders.items()}


def component_refs(value: Any, path: str = "") -> Iterator[tuple[str, ComponentRef]]:
    """Every :class:`ComponentRef` that names a registry kind inside ``value``, with its
    dotted path in the config (``fusion``, ``encoders.text``)."""
    if isinstance(value, ComponentRef):
        if value.kind is not None:
            yield path, value
        return
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from component_refs(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from component_refs(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from component_refs(item, f"{path}[{i}]")


def check_component_refs(registry: Registry, config: BaseModel) -> None:
    """Look up every component name in a resolved config and validate its options
    (recursively: a composite objective's terms are checked too), so that a typo
    fails in seconds with "Did you mean", not after feature extraction."""
    pending = list(component_refs(config))
    while pending:
        path, ref = pending.pop(0)
        assert ref.kind is not None
        cls, sub = registry.config_of(ref.kind, ref, where=path)
        if ref.kind == "encoder":
            modality = path.rsplit(".", 1)[-1]
            if cls.modality and modality != cls.modality:
                encoders = registry.list("encoder")
                fitting = sorted(e.name for e in encoders if e.obj.modality in (modality, ""))
                raise ConfigError(
                    f"{path}.name: encoder '{ref.name}' encodes '{cls.modality}', not "
                    f"'{modality}'. Encoders for {modality}: {', '.join(fitting) or 'none'}"
                )
        pending.extend(component_refs(sub, f"{path}.config"))


def check_method_task(registry: Registry, method: Method, name: str, config: Any,
                      task: Task) -> None:
    """The task's labels and modalities fit the method, and its own check passes."""
    if task.label_type not in method.label_types:
        fits = sorted(
            e.name for e in registry.list("task") if e.obj.label_type in method.label_types
        )
        raise ConfigError(
            f"Method '{name}' trains on {', '.join(method.label_types)} labels; task "
            f"'{task.name}' has {task.label_type} labels. Tasks that fit: {', '.join(fits)}"
        )
    missing = [m for m in method.modalities if m not in task.modalities]
    if missing:
        raise ConfigError(
            f"Method '{name}' needs modalities {', '.join(method.modalities)}; task "
            f"'{task.name}' offers {', '.join(task.modalities)} (no {', '.join(missing)})."
        )
    encoders = getattr(config, "encoders", None)
    if isinstance(encoders, dict) and encoders and not set(encoders) & set(task.modalities):
        raise ConfigError(
            f"Method '{name}' has encoders for {', '.join(encoders)} only; task "
            f"'{task.name}' offers {', '.join(task.modalities)}. Add one with "
            f"--set encoders.{task.modalities[0]}.name=ENCODER"
        )
    method.check(config, task)
