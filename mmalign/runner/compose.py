"""Resolving names into objects: method config, task, encoders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmalign import paths
from mmalign.config import ConfigError, apply_overrides, resolve_method_config, validate
from mmalign.interfaces import Encoder, EncoderRef, Method, StrictModel, Task
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
    cls = registry.get("task", name)
    tree = apply_overrides(cls.Config, cls.Config().model_dump(mode="json"), task_config)
    cfg = validate(cls.Config, tree)
    return cls(cfg, data_dir=paths.task_data_dir(name, data_dir))


def make_encoders(
    registry: Registry, refs: dict[str, EncoderRef], modalities: tuple[str, ...]
) -> dict[str, Encoder]:
    """Instantiate the encoders for the modalities the task offers."""
    out = {}
    for modality, ref in refs.items():
        if modality not in modalities:
            continue
        cls = registry.get("encoder", ref.name)
        out[modality] = cls(validate(cls.Config, ref.config))
    return out
