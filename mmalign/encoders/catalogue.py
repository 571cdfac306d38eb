"""Every built-in encoder class by its registered name.

The registry is filled from here (:mod:`mmalign.builtin.encoders`); the video frame
encoder takes its per-frame image encoder from the registry, so a plugin's image
encoder can encode video frames too.
"""

from __future__ import annotations

from mmalign.encoders.audio import AudioMelEncoder
from mmalign.encoders.base import EncoderBase
from mmalign.encoders.efficientnet_lite import EfficientNetLite0Encoder
from mmalign.encoders.hf_text import HFTextEncoder
from mmalign.encoders.ijepa import IJepaViTH14Encoder
from mmalign.encoders.minilm import MiniLMEncoder
from mmalign.encoders.named_text import BertBaseUncasedEncoder, GteBaseEncoder
from mmalign.encoders.resnet50 import ResNet50Encoder
from mmalign.encoders.sequences import AudioFeaturesEncoder, VideoFeaturesEncoder
from mmalign.encoders.timm_image import TimmEncoder
from mmalign.encoders.video import VideoFramesEncoder

ENCODERS: dict[str, type[EncoderBase]] = {
    cls.name: cls
    for cls in (
        MiniLMEncoder,
        EfficientNetLite0Encoder,
        TimmEncoder,
        HFTextEncoder,
        AudioMelEncoder,
        AudioFeaturesEncoder,
        VideoFramesEncoder,
        VideoFeaturesEncoder,
        IJepaViTH14Encoder,
        GteBaseEncoder,
        ResNet50Encoder,
        BertBaseUncasedEncoder,
    )
}
