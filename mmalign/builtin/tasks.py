"""Built-in tasks."""

from mmalign.registry import RegistryView


def register(registry: RegistryView) -> None:
    """Add the built-in tasks to the registry."""
