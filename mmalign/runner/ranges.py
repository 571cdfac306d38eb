"""Checks on a resolved run config that a field type alone cannot express.

Run when the config is resolved, before any data is read, so that a nonsense value
stops the run with the key and the valid range instead of training nothing (or on
NaN) and recording the result as completed:

* ``train.monitor`` must name a quantity the task reports on validation; a misspelt
  name would leave model selection silently off (the value is never found);
* any field named ``dropout`` or ``*_dropout``, in any component's config, is a
  probability in [0, 1) (``nn.Dropout`` raises mid-run outside [0, 1], and 1 drops
  everything).
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from mmalign.errors import ConfigError
from mmalign.interfaces import Task, TrainConfig
from mmalign.suggest import did_you_mean

#: ``train.monitor`` value that turns selection off: the last epoch's weights are kept
KEEP_LAST = "last"


def monitors(task: Task) -> list[str]:
    """What ``train.monitor`` may name for ``task``: ``val_loss``, one of its metrics, or
    :data:`KEEP_LAST`."""
    metrics = [] if task.label_type == "none" else list(task.metrics)
    return ["val_loss", *metrics, KEEP_LAST]


def _models(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, BaseModel]]:
    yield prefix, model
    for name in type(model).model_fields:
        value = getattr(model, name)
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for key, item in items:
            if isinstance(item, BaseModel):
                where = f"{prefix}{name}." if key is None else f"{prefix}{name}.{key}."
                yield from _models(item, where)


def check_resolved(cfg: BaseModel, task: Task) -> None:
    """Raise :class:`ConfigError` naming every out-of-range key of ``cfg`` for ``task``."""
    problems = []
    valid = monitors(task)
    for prefix, model in _models(cfg):
        if isinstance(model, TrainConfig) and model.monitor not in (None, *valid):
            problems.append(
                f"Invalid value for '{prefix}monitor': '{model.monitor}' is not reported by "
                f"task '{task.name}'.{did_you_mean(model.monitor, valid)} "
                f"Valid: {', '.join(valid)}"
            )
        for name in type(model).model_fields:
            value = getattr(model, name)
            is_dropout = name == "dropout" or name.endswith("_dropout")
            if is_dropout and isinstance(value, float) and not 0 <= value < 1:
                problems.append(
                    f"Invalid value for '{prefix}{name}': {value} is outside [0, 1) "
                    f"(a dropout probability)"
                )
    if problems:
        raise ConfigError("; ".join(problems))

