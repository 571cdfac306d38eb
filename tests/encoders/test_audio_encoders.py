"""audio-mel (waveforms) and audio-features (precomputed sequences)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from mmalign.encoders.audio import AudioMelConfig, AudioMelEncoder
from mmalign.encoders.sequences import AudioFeaturesEncoder, FeatureSequenceConfig
from mmalign.errors import ConfigError, DataError

SMALL = {"channels": [8, 16], "dim": 24, "n_mels": 32}


def tone(path: Path, seconds: float, rate: int, freq: float = 440.0, channels: int = 1) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    soundfile.write(path, np.stack([wave] * channels, axis=1), rate)
    return path


def test_mel_pipeline_shapes_resampling_and_mask(tmp_path: Path) -> None:
    enc = AudioMelEncoder(AudioMelConfig(**SMALL))
    long = enc.preprocess(tone(tmp_path / "long.wav", 1.0, 8000, channels=2))
    short = enc.preprocess(tone(tmp_path / "short.flac", 0.3, 16000))
    assert long.shape == (32, 101)  # resampled to 16 kHz: 1 s -> 101 frames of 10 ms
    assert short.shape == (32, 31)
    torch.testing.assert_close(long.mean(), torch.tensor(0.0), atol=1e-4, rtol=0)
    feats = enc(enc.collate([long, short]))
    assert feats["tokens"].shape == (2, 26, 24)  # 101 frames padded to 104, stride 4
    assert feats["mask"].sum(1).tolist() == [25, 7]
    assert feats["pooled"].shape == (2, 24)
    torch.testing.assert_close(feats["pooled"][1], feats["tokens"][1, :7].mean(0))


def test_waveform_arrays_are_taken_at_the_configured_rate() -> None:
    enc = AudioMelEncoder(AudioMelConfig(**SMALL, sample_rate=8000, hop_length=80, n_fft=200))
    wave = np.random.default_rng(0).normal(size=8000).astype(np.float32)
    assert enc.preprocess(wave).shape == (32, 101)
    assert enc.preprocess(np.stack([wave, wave], axis=1)).shape == (32, 101)


def test_long_audio_is_cropped(tmp_path: Path) -> None:
    enc = AudioMelEncoder(AudioMelConfig(**SMALL, max_seconds=0.5))
    assert enc.preprocess(tone(tmp_path / "a.wav", 2.0, 16000)).shape[-1] == 51


def test_trainable_by_default_and_frozen_on_request() -> None:
    enc = AudioMelEncoder(AudioMelConfig(**SMALL))
    assert not enc.frozen and enc.training
    spec = torch.randn(2, 32, 40)
    enc({"spec": spec, "frames": torch.tensor([40, 40])})["pooled"].sum().backward()
    assert enc.net.proj.weight.grad is not None
    frozen = AudioMelEncoder(AudioMelConfig(**SMALL, trainable=False))
    frozen.train()
    assert frozen.frozen and not frozen.training


def test_saved_weights_load_back(tmp_path: Path) -> None:
    a = AudioMelEncoder(AudioMelConfig(**SMALL, seed=1))
    torch.save(a.state_dict(), tmp_path / "audio.pt")
    b = AudioMelEncoder(AudioMelConfig(**SMALL, seed=2, weights=str(tmp_path / "audio.pt")))
    a.eval(), b.eval()
    batch = {"spec": torch.randn(1, 32, 48), "frames": torch.tensor([48])}
    torch.testing.assert_close(a(batch)["tokens"], b(batch)["tokens"])
    with pytest.raises(ConfigError, match="do not fit"):
        AudioMelEncoder(AudioMelConfig(channels=[8], dim=24, weights=str(tmp_path / "audio.pt")))


def test_bad_audio_raises_data_error(tmp_path: Path) -> None:
    enc = AudioMelEncoder(AudioMelConfig(**SMALL))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt nonsense")
    with pytest.raises(DataError, match="broken.wav"):
        enc.preprocess(broken)
    with pytest.raises(DataError, match="missing.wav"):
        enc.preprocess(tmp_path / "missing.wav")
    with pytest.raises(DataError, match="shorter"):
        enc.preprocess(tone(tmp_path / "blip.wav", 0.01, 16000))
    with pytest.raises(DataError, match="NaN"):
        enc.preprocess(np.full(16000, np.nan, dtype=np.float32))
    with pytest.raises(DataError, match="no samples"):
        enc.preprocess(np.zeros(0, dtype=np.float32))


def test_too_many_blocks_for_the_mel_bins() -> None:
    with pytest.raises(ConfigError, match="n_mels"):
        AudioMelEncoder(AudioMelConfig(n_mels=8, channels=[4, 4, 4, 4]))


def test_feature_sequences_pad_mask_and_pool(tmp_path: Path) -> None:
    enc = AudioFeaturesEncoder(FeatureSequenceConfig(dim=5))
    a = np.arange(15, dtype=np.float32).reshape(3, 5)
    np.save(tmp_path / "b.npy", np.ones((1, 5), dtype=np.float32))
    feats = enc(enc.collate([enc.preprocess(a), enc.preprocess(tmp_path / "b.npy")]))
    assert feats["tokens"].shape == (2, 3, 5) and enc.out_dim == 5
    assert feats["mask"].tolist() == [[True, True, True], [True, False, False]]
    torch.testing.assert_close(feats["pooled"][0], torch.from_numpy(a.mean(0)))
    torch.testing.assert_close(feats["pooled"][1], torch.ones(5))
    assert enc.frozen


def test_feature_sequences_non_finite_truncation_and_errors(tmp_path: Path) -> None:
    x = np.array([[1.0, -np.inf], [np.nan, 2.0], [3.0, 4.0]], dtype=np.float32)
    zeroed = AudioFeaturesEncoder(FeatureSequenceConfig(dim=2, max_len=2)).preprocess(x)
    assert zeroed.tolist() == [[1.0, 0.0], [0.0, 2.0]]
    strict = AudioFeaturesEncoder(FeatureSequenceConfig(dim=2, non_finite="error"))
    with pytest.raises(DataError, match="NaN"):
        strict.preprocess(x)
    with pytest.raises(DataError, match="does not match dim=2"):
        strict.preprocess(np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(DataError, match="empty"):
        strict.preprocess(np.zeros((0, 2), dtype=np.float32))
    with pytest.raises(DataError, match=r"\[T, D\]"):
        strict.preprocess(np.zeros((2, 2, 2), dtype=np.float32))
    with pytest.raises(DataError, match="nothing.npy"):
        strict.preprocess(tmp_path / "nothing.npy")
    with pytest.raises(ConfigError, match="needs `dim`"):
        _ = AudioFeaturesEncoder().out_dim
