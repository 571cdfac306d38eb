"""``audio-mel``: waveform -> log-mel spectrogram -> a small convolutional network.

``preprocess`` (CPU, per clip) reads the file with soundfile (torchaudio's own
loader needs FFmpeg libraries; soundfile does not), mixes to mono, resamples,
crops to ``max_seconds`` and computes a log-mel spectrogram standardised per clip
(zero mean, unit variance over its real frames), so that loudness does not matter
and padding with zeros pads with the clip's mean. ``forward`` runs conv blocks
(3x3 conv, batch norm, ReLU, 2x2 max-pool), averages over frequency and projects
each remaining time step to ``dim``: one token per 2**blocks frames.

The network is trainable by default — there are no published weights for it — and
can be frozen (random features) or loaded from a state dict saved from this encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from mmalign.encoders import checkpoints
from mmalign.encoders.base import EncoderBase, seeded
from mmalign.encoders.pooling import masked_mean
from mmalign.errors import ConfigError, DataError
from mmalign.interfaces import Features, StrictModel


class AudioMelConfig(StrictModel):
    """Spectrogram and network settings of ``audio-mel``."""

    sample_rate: int = Field(16000, ge=1000, description="audio is resampled to this rate")
    n_mels: int = Field(64, ge=8)
    n_fft: int = Field(400, ge=16, description="window: 25 ms at 16 kHz")
    hop_length: int = Field(160, ge=1, description="step: 10 ms at 16 kHz")
    max_seconds: float | None = Field(10.0, gt=0, description="longer clips keep their start")
    channels: list[int] = Field(default_factory=lambda: [32, 64, 128, 128], min_length=1)
    dim: int = Field(128, ge=1, description="token and pooled size")
    trainable: bool = True
    weights: str = Field("random", description='"random" or a state dict saved from this encoder')
    seed: int = 0


def read_waveform(raw: Any, sample_rate: int) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate, from a file or an array at ``sample_rate``."""
    if isinstance(raw, (str, Path)):
        import soundfile

        path = Path(raw)
        if not path.is_file():
            raise DataError(f"{path}: audio file does not exist")
        try:
            samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
        except Exception as exc:  # libsndfile errors for corrupt or unsupported files
            raise DataError(f"{path}: unreadable audio ({exc})") from None
        return samples.mean(axis=1), int(rate)
    array = np.asarray(raw, dtype=np.float32)
    if array.ndim == 2 and array.shape[1] <= 8:  # [T, channels]
        array = array.mean(axis=1)
    if array.ndim != 1:
        raise DataError(f"waveform must be [T] or [T, channels], got shape {list(array.shape)}")
    return array, sample_rate


class MelFrontend:
    """Waveform -> standardised log-mel [n_mels, frames]; a plain object, not a module,
    so that moving the encoder to a GPU leaves per-sample preprocessing on the CPU."""

    def __init__(self, cfg: AudioMelConfig) -> None:
        import torchaudio

        self.cfg = cfg
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            n_mels=cfg.n_mels,
        )

    def __call__(self, raw: Any) -> Tensor:
        import torchaudio

        cfg = self.cfg
        samples, rate = read_waveform(raw, cfg.sample_rate)
        name = f"{raw}: " if isinstance(raw, (str, Path)) else ""
        if samples.size == 0:
            raise DataError(f"{name}audio has no samples")
        if not np.isfinite(samples).all():
            raise DataError(f"{name}audio contains NaN or infinite samples")
        wave = torch.from_numpy(np.ascontiguousarray(samples))
        if rate != cfg.sample_rate:
            wave = torchaudio.functional.resample(wave, rate, cfg.sample_rate)
        if cfg.max_seconds is not None:
            wave = wave[: int(cfg.max_seconds * cfg.sample_rate)]
        if wave.numel() < cfg.n_fft:
            raise DataError(f"{name}audio is shorter than one {cfg.n_fft}-sample window")
        spec = torch.log(self.mel(wave) + 1e-6)
        return (spec - spec.mean()) / (spec.std() + 1e-5)


class MelConvNet(nn.Module):
    """Conv blocks over [B, 1, mels, frames], mean over frequency, linear per time step."""

    def __init__(self, channels: Sequence[int], dim: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = 1
        for c_out in channels:
            blocks += [
                nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.proj = nn.Linear(c_in, dim)
        self.stride = 2 ** len(channels)

    def forward(self, spec: Tensor) -> Tensor:
        x = self.blocks(spec.unsqueeze(1))  # [B, C, mels', T']
        return self.proj(x.mean(dim=2).transpose(1, 2))  # [B, T', dim]


class AudioMelEncoder(EncoderBase):
    """Waveform -> torchaudio log-mel -> small conv net (trainable or frozen)."""

    Config = AudioMelConfig
    name = "audio-mel"
    modality = "audio"

    def __init__(self, config: AudioMelConfig | None = None) -> None:
        super().__init__(config)
        cfg: AudioMelConfig = self.config
        self.frontend = MelFrontend(cfg)
        if cfg.n_mels < 2 ** len(cfg.channels):
            raise ConfigError(
                f"audio-mel: n_mels={cfg.n_mels} is too small for {len(cfg.channels)} "
                f"pooling blocks (needs at least {2 ** len(cfg.channels)})"
            )
        with seeded(cfg.seed):
            self.net = MelConvNet(cfg.channels, cfg.dim)
        self._files: list[Path] = []
        if cfg.weights != "random":
            path = Path(cfg.weights).expanduser()
            state = checkpoints.unwrap(checkpoints.read_checkpoint(path))
            checkpoints.load_strict(self, state, str(path))
            self._files = [path]
        self.set_trainable(cfg.trainable)

    @property
    def out_dim(self) -> int:
        return int(self.config.dim)

    def weight_files(self) -> tuple[list[Path], Path | None]:
        return self._files, None

    def preprocess(self, raw: Any) -> Tensor:
        return self.frontend(raw)

    def collate(self, items: Sequence[Tensor]) -> dict[str, Tensor]:
        """Pad spectrograms along time to a multiple of the network's stride."""
        stride = self.net.stride
        longest = max(x.shape[-1] for x in items)
        longest = max(stride, -(-longest // stride) * stride)
        spec = torch.zeros((len(items), items[0].shape[0], longest))
        frames = torch.tensor([x.shape[-1] for x in items])
        for i, x in enumerate(items):
            spec[i, :, : x.shape[-1]] = x
        return {"spec": spec, "frames": frames}

    def forward(self, inputs: dict[str, Tensor]) -> Features:
        batch = self.to_device(inputs)
        with self.grad_context():
            tokens = self.net(batch["spec"])
        steps = torch.arange(tokens.shape[1], device=tokens.device)
        valid = (batch["frames"] // self.net.stride).clamp_min(1)
        mask = steps.unsqueeze(0) < valid.unsqueeze(1)
        return {"pooled": masked_mean(tokens, mask), "tokens": tokens, "mask": mask}
