"""The built-in plugin: registered through the ``mmalign`` entry point like any other."""

from typing import Any

from mmalign.builtin import encoders, methods, metrics, tasks
from mmalign.hookspecs import hookimpl
from mmalign.registry import RegistryView


@hookimpl
def mmalign_register(registry: RegistryView) -> None:
    """Register the core's encoders, tasks, metrics and the late-fusion baseline."""
    for area in (encoders, tasks, metrics, methods):
        area.register(registry)


@hookimpl
def mmalign_loggers() -> dict[str, Any]:
    """The built-in TensorBoard logger (``--logger tensorboard``)."""
    from mmalign.live import builtin_loggers

    return builtin_loggers()
