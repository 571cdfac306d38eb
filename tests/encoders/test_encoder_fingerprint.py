"""Fingerprints key the feature cache: they must move with weights and preprocessing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import timm
import torch

from mmalign import paths
from mmalign.encoders import hashing
from mmalign.encoders.audio import AudioMelConfig, AudioMelEncoder
from mmalign.encoders.efficientnet_lite import EfficientNetLite0Config, EfficientNetLite0Encoder
from mmalign.encoders.hf_text import HFTextConfig, HFTextEncoder
from mmalign.encoders.sequences import AudioFeaturesEncoder, FeatureSequenceConfig
from mmalign.encoders.timm_image import TimmConfig, TimmEncoder


def fp(**cfg: object) -> str:
    return TimmEncoder(TimmConfig(model="test_resnet", **cfg)).fingerprint()


def test_same_config_same_fingerprint_and_it_names_the_encoder() -> None:
    assert fp() == fp()
    assert fp().startswith("timm-")


@pytest.mark.parametrize(
    "change",
    [
        {"image_size": 96},
        {"crop_pct": 1.0},
        {"interpolation": "bilinear"},
        {"mean": (0.5, 0.5, 0.5)},
        {"std": (0.2, 0.2, 0.2)},
        {"seed": 1},  # different random weights
    ],
)
def test_every_setting_and_the_weights_change_it(change: dict[str, object]) -> None:
    assert fp(**change) != fp()


def test_model_name_changes_it() -> None:
    assert TimmEncoder(TimmConfig(model="test_vit")).fingerprint() != fp()


def test_checkpoint_content_counts_not_its_location(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = timm.create_model("test_resnet")
    first = tmp_path / "a" / "w.pth"
    first.parent.mkdir()
    torch.save(src.state_dict(), first)
    moved = tmp_path / "b" / "w.pth"
    moved.parent.mkdir()
    shutil.copy(first, moved)
    assert fp(weights=str(first)) == fp(weights=str(moved))
    with torch.no_grad():
        src.conv1[0].weight.add_(0.01)
    torch.save(src.state_dict(), moved)
    assert fp(weights=str(first)) != fp(weights=str(moved))


def test_embedded_encoder_fingerprints_follow_resolution() -> None:
    a = EfficientNetLite0Encoder(EfficientNetLite0Config(image_size=160)).fingerprint()
    b = EfficientNetLite0Encoder(EfficientNetLite0Config(image_size=192)).fingerprint()
    c = EfficientNetLite0Encoder(EfficientNetLite0Config(image_size=192)).fingerprint()
    assert a != b and b == c


def test_text_fingerprint_follows_tokenizer_settings_pooling_and_weights(tiny_bert: Path) -> None:
    folder = tiny_bert

    def text_fp(**cfg: object) -> str:
        return HFTextEncoder(HFTextConfig(model=str(folder), **cfg)).fingerprint()

    base = text_fp()
    assert text_fp(max_length=16) != base
    assert text_fp(pooling="mean") != base
    assert text_fp(layers=[1, 2]) != base
    vocab = folder / "vocab.txt"
    vocab.write_text(vocab.read_text() + "extra\n")  # a tokenizer file is part of the weights
    assert text_fp() != base


def test_trainable_weights_are_hashed_as_they_are_now() -> None:
    enc = AudioMelEncoder(AudioMelConfig(channels=[4], dim=8, n_mels=16))
    before = enc.fingerprint()
    with torch.no_grad():
        enc.net.proj.weight.add_(1.0)
    assert enc.fingerprint() != before


def test_frozen_weights_hash_is_memoised() -> None:
    enc = AudioMelEncoder(AudioMelConfig(channels=[4], dim=8, n_mels=16, trainable=False))
    before = enc.fingerprint()
    with torch.no_grad():  # frozen weights are not expected to change: hashed once
        enc.net.proj.weight.add_(1.0)
    assert enc.fingerprint() == before


def test_feature_sequence_settings_count() -> None:
    a = AudioFeaturesEncoder(FeatureSequenceConfig(dim=5)).fingerprint()
    b = AudioFeaturesEncoder(FeatureSequenceConfig(dim=5, max_len=10)).fingerprint()
    assert a != b and a.startswith("audio-features-")


def test_file_hash_is_memoised_by_path_size_and_mtime(tmp_path: Path) -> None:
    file = tmp_path / "weights.bin"
    file.write_bytes(b"abc")
    real = hashing.file_sha256(file)
    memo = paths.cache_dir() / "weights-sha256.json"
    entries = json.loads(memo.read_text())
    assert list(entries.values()) == [real]
    # a planted memo entry for the same (path, size, mtime) is trusted without reading
    hashing._memory.clear()
    memo.write_text(json.dumps({k: "planted" for k in entries}))
    assert hashing.file_sha256(file) == "planted"
    # rewriting the file (new mtime) invalidates the memo
    stat = file.stat()
    file.write_bytes(b"xyz")
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert hashing.file_sha256(file) not in ("planted", real)
