"""Precomputed feature sequences passed through as tokens (``audio-features``,
``video-features``).

MMSA-style datasets ship per-sample feature sequences (COVAREP audio, Facet/
OpenFace video) as ``[T, D]`` float arrays. These encoders validate them, pad a
batch to the longest sequence with a mask, and pool by the masked mean. They have
no weights. Non-finite values are replaced by 0 by default, as the MMSA loaders do
(COVAREP features contain ``-inf``); ``non_finite="error"`` rejects such samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from mmalign.encoders.base import EncoderBase
from mmalign.encoders.pooling import masked_mean, pad_sequences
from mmalign.errors import ConfigError, DataError
from mmalign.interfaces import Features, StrictModel


class FeatureSequenceConfig(StrictModel):
    """How precomputed ``[T, D]`` feature sequences are read."""

    dim: int | None = Field(
        None, ge=1, description="feature size D (required: e.g. 74 for MOSEI COVAREP audio)"
    )
    max_len: int | None = Field(None, ge=1, description="keep at most the first max_len steps")
    non_finite: Literal["zero", "error"] = "zero"


def read_sequence(raw: Any) -> np.ndarray:
    """A float32 ``[T, D]`` array from an array or a ``.npy`` / ``.npz`` file."""
    if isinstance(raw, (str, Path)):
        path = Path(raw)
        try:
            loaded = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise DataError(f"{path}: feature file does not exist") from None
        except Exception as exc:  # numpy raises ValueError/OSError/zipfile errors
            raise DataError(f"{path}: unreadable feature file ({exc})") from None
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                if len(loaded.files) != 1:
                    raise DataError(f"{path}: expected one array, found {loaded.files}")
                loaded = loaded[loaded.files[0]]
        raw = loaded
    try:
        array = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"feature sequence is not numeric ({exc})") from None
    if array.ndim == 1:
        array = array[None, :]  # one time step
    if array.ndim != 2:
        raise DataError(f"feature sequence must be [T, D], got shape {list(array.shape)}")
    return array


class FeatureSequenceEncoder(EncoderBase):
    """Padded pass-through of precomputed feature sequences (not registered itself)."""

    Config = FeatureSequenceConfig

    @property
    def out_dim(self) -> int:
        if self.config.dim is None:
            raise ConfigError(
                f"Encoder '{self.name}' needs `dim`, the size of each precomputed feature "
                f"vector (for the MMSA pickles: MOSI audio 5 / video 20, MOSEI audio 74 / "
                f"video 35). Set it with --set encoders.{self.modality}.config.dim=N"
            )
        return int(self.config.dim)

    def preprocess(self, raw: Any) -> Tensor:
        cfg: FeatureSequenceConfig = self.config
        array = read_sequence(raw)
        if array.shape[0] == 0:
            raise DataError("empty feature sequence (0 time steps)")
        if cfg.dim is not None and array.shape[1] != cfg.dim:
            raise DataError(f"feature size {array.shape[1]} does not match dim={cfg.dim}")
        if not np.isfinite(array).all():
            if cfg.non_finite == "error":
                raise DataError("feature sequence contains NaN or infinite values")
            array = np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)
        if cfg.max_len is not None:
            array = array[: cfg.max_len]
        return torch.from_numpy(np.ascontiguousarray(array))

    def collate(self, items: Sequence[Tensor]) -> dict[str, Tensor]:
        tokens, mask = pad_sequences(list(items))
        return {"tokens": tokens, "mask": mask}

    def forward(self, inputs: dict[str, Tensor]) -> Features:
        tokens, mask = inputs["tokens"], inputs["mask"]
        return {"pooled": masked_mean(tokens, mask), "tokens": tokens, "mask": mask}


class AudioFeaturesEncoder(FeatureSequenceEncoder):
    """Precomputed audio feature sequences [T, D] -> padded tokens, masked-mean pooled."""

    name = "audio-features"
    modality = "audio"


class VideoFeaturesEncoder(FeatureSequenceEncoder):
    """Precomputed video feature sequences [T, D] -> padded tokens, masked-mean pooled."""

    name = "video-features"
    modality = "video"
