"""Built-in encoders.

Registering imports only the encoder classes; timm, transformers, torchaudio and
PyAV are imported when an encoder is built, so start-up stays fast.
"""

from mmalign.encoders import catalogue
from mmalign.registry import RegistryView


def register(registry: RegistryView) -> None:
    """Add the built-in encoders to the registry."""
    for name, cls in catalogue.ENCODERS.items():
        registry.add("encoder", name, cls)
