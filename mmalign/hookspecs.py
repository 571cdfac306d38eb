"""Hook specifications: the documented contract between mmalign and its plugins.

Every hook is an empty function whose docstring is the plugin documentation
(the pytest/pluggy convention). A plugin implements a hook by defining a
function of the same name decorated with :data:`mmalign.hookimpl`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from mmalign.registry import RegistryView

PROJECT = "mmalign"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def mmalign_register(registry: RegistryView) -> None:
    """Register components with mmalign.

    Call ``registry.add(kind, name, obj, summary=None)`` once per component, where
    ``kind`` is one of ``encoder``, ``fusion``, ``objective``, ``task``, ``method``,
    ``metric`` or ``collator`` (something that adds to batches, e.g. mask sampling).
    The registration is attributed to the calling plugin, so ``mmalign list`` can say
    where every name came from.
    """


@hookspec
def mmalign_loggers() -> dict[str, Callable[..., Any]]:
    """Run loggers by name, for ``mmalign run --logger NAME`` (W&B, MLflow, ...).

    Return ``{name: factory}``. The runner calls ``factory(run_dir=..., run_id=...,
    config=...)`` once per run and gets an object with ``log_epoch(stage, row, step)``
    (``row``: the epoch's train losses and validation metrics) and ``close()``.
    The built-in plugin provides ``tensorboard``.
    """
