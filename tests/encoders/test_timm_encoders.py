"""The generic timm adapter: random, local checkpoint and HF-cache weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from mmalign.encoders.locate import WeightsNotFoundError
from mmalign.encoders.timm_image import TimmConfig, TimmEncoder
from mmalign.errors import ConfigError


def photo(tmp_path: Path, name: str = "img.png", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path = tmp_path / name
    Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(path)
    return path


def source_model(name: str, seed: int) -> torch.nn.Module:
    """A timm model as a user would have trained it: with its classifier."""
    torch.manual_seed(seed)
    return timm.create_model(name, pretrained=False).eval()


def test_random_vit_shapes_and_patch_tokens(tmp_path: Path) -> None:
    enc = TimmEncoder(TimmConfig(model="test_vit"))
    x = enc.collate([enc.preprocess(photo(tmp_path))] * 3)
    assert x.shape == (3, 3, 160, 160)  # the model's own default resolution
    feats = enc(x)
    n = enc.num_patches
    assert feats["tokens"].shape == (3, n, enc.out_dim)  # class token dropped
    assert feats["pooled"].shape == (3, enc.out_dim)
    assert feats["mask"].all() and feats["mask"].shape == (3, n)
    full = enc.model.forward_features(x)
    torch.testing.assert_close(feats["tokens"], full[:, 1:])
    torch.testing.assert_close(feats["pooled"], full[:, 0])  # test_vit pools the class token


def test_random_cnn_tokens_are_the_flattened_map(tmp_path: Path) -> None:
    enc = TimmEncoder(TimmConfig(model="test_resnet", image_size=96))
    feats = enc(enc.collate([enc.preprocess(photo(tmp_path))]))
    fmap = enc.model.forward_features(enc.collate([enc.preprocess(photo(tmp_path))]))
    c, h, w = fmap.shape[1:]
    assert feats["tokens"].shape == (1, h * w, c)
    torch.testing.assert_close(feats["tokens"][0, w + 1], fmap[0, :, 1, 1])  # row-major
    torch.testing.assert_close(feats["pooled"], fmap.mean((2, 3)))


def test_random_weights_follow_the_seed() -> None:
    a = TimmEncoder(TimmConfig(model="test_resnet", seed=1))
    b = TimmEncoder(TimmConfig(model="test_resnet", seed=1))
    c = TimmEncoder(TimmConfig(model="test_resnet", seed=2))
    wa, wb, wc = (e.model.conv1[0].weight for e in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "ddp", "safetensors", "folder"])
def test_local_checkpoint_loads_exactly(tmp_path: Path, wrap: str) -> None:
    src = source_model("test_resnet", seed=5)
    sd = src.state_dict()
    if wrap == "plain":
        path = tmp_path / "ckpt.pth"
        torch.save(sd, path)
    elif wrap == "state_dict":
        path = tmp_path / "ckpt.pth.tar"
        torch.save({"state_dict": sd, "epoch": 3}, path)
    elif wrap == "ddp":
        path = tmp_path / "ckpt.pt"
        torch.save({"model": {f"module.{k}": v for k, v in sd.items()}}, path)
    elif wrap == "safetensors":
        path = tmp_path / "model.safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        path = tmp_path / "folder"
        path.mkdir()
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path / "model.safetensors"))
    enc = TimmEncoder(TimmConfig(model="test_resnet", weights=str(path), seed=99))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = src.forward_head(src.forward_features(x), pre_logits=True)
    torch.testing.assert_close(enc(x)["pooled"], expected, rtol=1e-4, atol=1e-4)
    assert enc.frozen and not enc.training


def test_wrong_architecture_checkpoint_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "vit.pth"
    torch.save(source_model("test_vit", 0).state_dict(), path)
    with pytest.raises(ConfigError, match="do not fit"):
        TimmEncoder(TimmConfig(model="test_resnet", weights=str(path)))


def test_missing_checkpoint_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="nothing.pth"):
        TimmEncoder(TimmConfig(model="test_resnet", weights=str(tmp_path / "nothing.pth")))


def test_hf_cache_weights(isolated_caches: Path) -> None:
    src = source_model("test_resnet", seed=7)
    snap = (
        isolated_caches / "hf-hub" / "models--timm--test_resnet.r160_in1k" / "snapshots" / "c0ffee"
    )
    snap.mkdir(parents=True)
    save_file(
        {k: v.contiguous() for k, v in src.state_dict().items()}, str(snap / "model.safetensors")
    )
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("c0ffee")
    enc = TimmEncoder(TimmConfig(model="test_resnet", weights="hf-cache"))
    torch.testing.assert_close(enc.model.conv1[0].weight, src.conv1[0].weight)


def test_hf_cache_missing_says_where_to_put_the_weights(isolated_caches: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as err:
        TimmEncoder(TimmConfig(model="test_resnet", weights="hf-cache"))
    message = str(err.value)
    assert "models--timm--test_resnet.r160_in1k" in message
    assert str(isolated_caches / "hf-hub") in message
    assert "weights=random" in message


def test_unknown_model_suggests_a_name() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'test_resnet'"):
        TimmEncoder(TimmConfig(model="test_resnett"))


def test_vit_image_size_resizes_the_patch_grid() -> None:
    enc = TimmEncoder(TimmConfig(model="test_vit", image_size=96))
    side = 96 // enc.model.patch_embed.patch_size[0]
    assert enc.num_patches == side * side
    assert enc(torch.randn(1, 3, 96, 96))["tokens"].shape[1] == side * side


def test_keep_needs_a_vit() -> None:
    enc = TimmEncoder(TimmConfig(model="test_resnet"))
    assert not enc.supports_keep
    with pytest.raises(ConfigError, match="ViT"):
        enc(torch.randn(1, 3, 64, 64), keep=torch.zeros(1, 2, dtype=torch.long))


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_image_transform_equals_torchvision(interpolation: str) -> None:
    """The hand-written transform is torchvision's Resize + CenterCrop + Normalize."""
    from torchvision import transforms as T

    from mmalign.encoders.images import ImageTransform

    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 255, (301, 457, 3), dtype=np.uint8))
    ours = ImageTransform(96, 0.875, interpolation, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    mode = getattr(T.InterpolationMode, interpolation.upper())
    theirs = T.Compose(
        [
            T.Resize(int(96 / 0.875), interpolation=mode),
            T.CenterCrop(96),
            T.ToTensor(),
            T.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3)),
        ]
    )
    torch.testing.assert_close(ours(image), theirs(image))
