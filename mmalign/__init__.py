"""mmalign: multimodal alignment methods as composable, benchmarkable plugins."""

from importlib.metadata import PackageNotFoundError, version

from mmalign.api import load_run, run
from mmalign.hookspecs import hookimpl, hookspec
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

try:
    __version__ = version("mmalign")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

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
