"""Every built-in encoder is registered under its own name with a strict Config."""

from __future__ import annotations

import pytest

from mmalign.builtin import encoders as builtin_encoders
from mmalign.encoders.catalogue import ENCODERS
from mmalign.interfaces import Encoder, StrictModel
from mmalign.registry import Registry

EXPECTED = {
    "minilm-l6": "text",
    "efficientnet-lite0": "image",
    "timm": "image",
    "hf-text": "text",
    "audio-mel": "audio",
    "audio-features": "audio",
    "video-frames": "video",
    "video-features": "video",
    "ijepa-vit-h14": "image",
    "gte-base": "text",
    "resnet50": "image",
    "bert-base-uncased": "text",
}


def test_registered_names_and_modalities() -> None:
    registry = Registry()
    builtin_encoders.register(registry.view("builtin", "mmalign"))
    assert set(registry.names("encoder")) == set(EXPECTED)
    for name, modality in EXPECTED.items():
        cls = registry.get("encoder", name)
        assert issubclass(cls, Encoder) and cls.name == name and cls.modality == modality
        assert registry.entry("encoder", name).summary  # a docstring line for `mmalign list`


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_configs_are_strict(name: str) -> None:
    config_cls = ENCODERS[name].Config
    assert issubclass(config_cls, StrictModel)
    with pytest.raises(ValueError):
        config_cls(no_such_option=1)
