"""mmalign: multimodal alignment methods as composable, benchmarkable plugins.

The public names are imported on first use (PEP 562), so ``mmalign --help``, shell
completion and ``import mmalign.testing`` do not pay for torch until it is needed.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from mmalign.hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
    from mmalign.api import load_run, run
    from mmalign.interfaces import (
        Batch,
        BuildContext,
        ComponentRef,
        Encoder,
        EncoderRef,
        Features,
        FeatureSpec,
        Fusion,
        FusionOutput,
        FusionRef,
        Head,
        HeadRef,
        Method,
        Metric,
        Objective,
        ObjectiveRef,
        Outputs,
        Sample,
        StageSpec,
        StepContext,
        StrictModel,
        Task,
        TaskData,
        TermRef,
        TrainConfig,
    )
    from mmalign.plugins import get_registry

_LAZY = {
    "Batch": "mmalign.interfaces",
    "BuildContext": "mmalign.interfaces",
    "ComponentRef": "mmalign.interfaces",
    "Encoder": "mmalign.interfaces",
    "EncoderRef": "mmalign.interfaces",
    "Features": "mmalign.interfaces",
    "FeatureSpec": "mmalign.interfaces",
    "Fusion": "mmalign.interfaces",
    "FusionOutput": "mmalign.interfaces",
    "FusionRef": "mmalign.interfaces",
    "Head": "mmalign.interfaces",
    "HeadRef": "mmalign.interfaces",
    "Method": "mmalign.interfaces",
    "Metric": "mmalign.interfaces",
    "Objective": "mmalign.interfaces",
    "ObjectiveRef": "mmalign.interfaces",
    "Outputs": "mmalign.interfaces",
    "Sample": "mmalign.interfaces",
    "StageSpec": "mmalign.interfaces",
    "StepContext": "mmalign.interfaces",
    "StrictModel": "mmalign.interfaces",
    "Task": "mmalign.interfaces",
    "TaskData": "mmalign.interfaces",
    "TermRef": "mmalign.interfaces",
    "TrainConfig": "mmalign.interfaces",
    "get_registry": "mmalign.plugins",
    "load_run": "mmalign.api",
    "run": "mmalign.api",
}

try:
    __version__ = version("mmalign")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mmalign' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Batch",
    "BuildContext",
    "ComponentRef",
    "Encoder",
    "EncoderRef",
    "FeatureSpec",
    "Features",
    "Fusion",
    "FusionOutput",
    "FusionRef",
    "Head",
    "HeadRef",
    "Method",
    "Metric",
    "Objective",
    "ObjectiveRef",
    "Outputs",
    "Sample",
    "StageSpec",
    "StepContext",
    "StrictModel",
    "Task",
    "TaskData",
    "TermRef",
    "TrainConfig",
    "get_registry",
    "hookimpl",
    "hookspec",
    "load_run",
    "run",
]
