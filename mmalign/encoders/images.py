"""Reading images and turning them into normalised tensors.

Every image encoder reads its samples the same way: PIL, fully decoded (so that a
truncated file fails here, in ``preprocess``, where the runner can skip it, and
not later inside a batch), converted to RGB, resized so the shorter side is
``image_size / crop_pct``, centre-cropped to ``image_size``, scaled to [0, 1] and
normalised. This is timm's evaluation transform.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from pydantic import Field
from torch import Tensor

from mmalign.errors import DataError
from mmalign.interfaces import StrictModel

Interpolation = Literal["bilinear", "bicubic", "nearest", "lanczos"]

_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


class ImageConfig(StrictModel):
    """Preprocessing settings; ``None`` means the model's own pretrained default."""

    image_size: int | None = Field(None, ge=8, description="side of the square input")
    crop_pct: float | None = Field(None, gt=0, le=1, description="crop / resize ratio")
    interpolation: Interpolation | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None


def load_image(raw: Any) -> Image.Image:
    """An RGB PIL image from a path (or an in-memory image); ``DataError`` if unreadable."""
    if isinstance(raw, Image.Image):
        return raw.convert("RGB")
    if isinstance(raw, np.ndarray):
        if raw.dtype != np.uint8 or raw.ndim != 3 or raw.shape[-1] != 3:
            raise DataError(
                f"image array must be uint8 [H, W, 3], got {raw.dtype} {list(raw.shape)}"
            )
        return Image.fromarray(raw)
    if not isinstance(raw, (str, Path)):
        raise DataError(f"expected an image path, got {type(raw).__name__}")
    path = Path(raw)
    try:
        with Image.open(path) as img:
            img.load()  # decode every pixel now: truncated files fail here
            return img.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"{path}: image file does not exist") from None
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, ...
        raise DataError(
            f"{path}: corrupt or unreadable image ({type(exc).__name__}: {exc})"
        ) from None


class ImageTransform:
    """Resize (shorter side), centre crop, tensor, normalise — one sample at a time."""

    def __init__(
        self,
        image_size: int,
        crop_pct: float,
        interpolation: Interpolation,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
    ) -> None:
        self.image_size = image_size
        self.crop_pct = crop_pct
        self.interpolation = interpolation
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.resize_to = math.floor(image_size / crop_pct)

    def settings(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size,
            "crop_pct": self.crop_pct,
            "interpolation": self.interpolation,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def __call__(self, image: Image.Image) -> Tensor:
        img = resize_shorter(image, self.resize_to, _RESAMPLE[self.interpolation])
        img = center_crop(img, self.image_size)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return ((x - mean) / std).contiguous()


def resize_shorter(image: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    """Resize so the shorter side is ``size``, keeping the aspect ratio (torchvision's
    ``Resize(int)`` rule: the longer side is truncated, not rounded)."""
    w, h = image.size
    if min(w, h) == size:
        return image
    new = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    return image.resize(new, resample=resample)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """The central ``size`` x ``size`` square (torchvision's rounding of the offsets).

    Only called after :func:`resize_shorter` to at least ``size``, so never pads.
    """
    w, h = image.size
    left = int(round((w - size) / 2.0))
    top = int(round((h - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def resolve_transform(config: ImageConfig, defaults: dict[str, Any]) -> ImageTransform:
    """Fill the config's ``None`` fields from a model's defaults (timm data config keys)."""
    size = config.image_size or int(defaults["input_size"][-1])
    return ImageTransform(
        image_size=size,
        crop_pct=config.crop_pct if config.crop_pct is not None else float(defaults["crop_pct"]),
        interpolation=config.interpolation or defaults.get("interpolation", "bicubic"),
        mean=config.mean or tuple(defaults["mean"]),
        std=config.std or tuple(defaults["std"]),
    )
