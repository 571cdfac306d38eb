"""``video-frames``: decoded frames -> a per-frame image encoder -> one token per frame.

``preprocess`` decodes a clip with PyAV (or takes a ``[T, H, W, 3]`` uint8 array),
picks ``num_frames`` frames spread evenly over it and applies the frame encoder's
own image transform to each; shorter clips give fewer frames, padded and masked in
the batch. ``forward`` encodes the real frames only and pools them by their mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from mmalign.encoders.base import EncoderBase
from mmalign.encoders.pooling import masked_mean
from mmalign.errors import ConfigError, DataError
from mmalign.interfaces import Features, StrictModel


class VideoFramesConfig(StrictModel):
    """Which image encoder sees the frames, and how many frames per clip."""

    frame_encoder: str = Field("efficientnet-lite0", description="a registered image encoder")
    frame_encoder_config: dict[str, Any] = Field(default_factory=dict)
    num_frames: int = Field(8, ge=1, description="frames sampled evenly from each clip")


def frame_indices(total: int, wanted: int) -> list[int]:
    """``wanted`` indices spread evenly over ``total`` frames (all when fewer)."""
    if total <= wanted:
        return list(range(total))
    return sorted({int(round(i)) for i in np.linspace(0, total - 1, wanted)})


def decode_frames(path: Path, wanted: int) -> list[np.ndarray]:
    """Evenly spread RGB frames of a video file, decoded with PyAV."""
    import av

    if not path.is_file():
        raise DataError(f"{path}: video file does not exist")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path}: no video stream")
            stream = container.streams.video[0]
            total = int(stream.frames or 0)
            if total > 0:  # frame count known: keep only the chosen ones, stop early
                targets = frame_indices(total, wanted)
                chosen, last = set(targets), targets[-1]
                frames = []
                for i, frame in enumerate(container.decode(stream)):
                    if i in chosen:
                        frames.append(frame.to_ndarray(format="rgb24"))
                    if i >= last:
                        break
            else:
                every = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
                frames = [every[i] for i in frame_indices(len(every), wanted)]
    except DataError:
        raise
    except Exception as exc:  # PyAV raises av.error.* (InvalidDataError, ...) and OSError
        raise DataError(f"{path}: undecodable video ({type(exc).__name__}: {exc})") from None
    if not frames:
        raise DataError(f"{path}: video has no decodable frames")
    return frames


class VideoFramesEncoder(EncoderBase):
    """Video via PyAV -> per-frame image encoder -> one token per frame."""

    Config = VideoFramesConfig
    name = "video-frames"
    modality = "video"

    def __init__(self, config: VideoFramesConfig | None = None) -> None:
        """The frame encoder is any registered image encoder (a plugin's too): its
        ``preprocess`` gets one in-memory ``[H, W, 3]`` uint8 frame and returns a
        fixed-shape tensor; its ``forward`` returns ``pooled`` features per frame."""
        from mmalign.config import validate
        from mmalign.plugins import get_registry

        super().__init__(config)
        cfg: VideoFramesConfig = self.config
        registry = get_registry()
        cls = registry.entry("encoder", cfg.frame_encoder, "video-frames frame_encoder").obj
        if cls.modality != "image":
            images = sorted(e.name for e in registry.list("encoder") if e.obj.modality == "image")
            raise ConfigError(
                f"video-frames: frame_encoder '{cfg.frame_encoder}' encodes "
                f"'{cls.modality or 'any modality'}', not images; choose one of "
                f"{', '.join(images)}"
            )
        frame_config = validate(cls.Config, cfg.frame_encoder_config,
                                prefix="frame_encoder_config",
                                component=f"encoder '{cfg.frame_encoder}'")
        self.frame_encoder = cls(frame_config)

    @property
    def out_dim(self) -> int:
        return self.frame_encoder.out_dim

    def weights_hash(self) -> str:
        frames = self.frame_encoder
        return frames.weights_hash() if isinstance(frames, EncoderBase) else frames.fingerprint()

    def extra_settings(self) -> dict[str, Any]:
        frames = self.frame_encoder
        settings = frames.settings() if isinstance(frames, EncoderBase) else frames.fingerprint()
        return {"frame_encoder_settings": settings}

    def preprocess(self, raw: Any) -> Tensor:
        wanted = self.config.num_frames
        if isinstance(raw, (str, Path)):
            frames = decode_frames(Path(raw), wanted)
        else:
            array = np.asarray(raw)
            if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
                raise DataError(
                    f"video frames must be uint8 [T, H, W, 3], got {array.dtype} "
                    f"{list(array.shape)} (precomputed features need 'video-features')"
                )
            if array.shape[0] == 0:
                raise DataError("video has no frames")
            frames = [array[i] for i in frame_indices(array.shape[0], wanted)]
        return torch.stack([self.frame_encoder.preprocess(f) for f in frames])

    def collate(self, items: Sequence[Tensor]) -> dict[str, Tensor]:
        longest = max(len(x) for x in items)
        frames = torch.zeros((len(items), longest, *items[0].shape[1:]))
        mask = torch.zeros((len(items), longest), dtype=torch.bool)
        for i, x in enumerate(items):
            frames[i, : len(x)] = x
            mask[i, : len(x)] = True
        return {"frames": frames, "mask": mask}

    def forward(self, inputs: dict[str, Tensor]) -> Features:
        batch = self.to_device(inputs)
        mask = batch["mask"]
        per_frame = self.frame_encoder(batch["frames"][mask])["pooled"]
        tokens = per_frame.new_zeros((*mask.shape, per_frame.shape[-1]))
        tokens[mask] = per_frame
        return {"pooled": masked_mean(tokens, mask), "tokens": tokens, "mask": mask}
