"""Built-in methods."""

from mmalign.registry import RegistryView


def register(registry: RegistryView) -> None:
    """Add the built-in methods to the registry."""
