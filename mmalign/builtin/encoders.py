"""Built-in encoders."""

from mmalign.registry import RegistryView


def register(registry: RegistryView) -> None:
    """Add the built-in encoders to the registry."""
