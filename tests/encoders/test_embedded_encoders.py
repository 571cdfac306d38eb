"""The embedded pretrained encoders: weights really loaded, contract honoured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from mmalign.encoders.efficientnet_lite import (
    EfficientNetLite0Config,
    EfficientNetLite0Encoder,
    weights_path,
)
from mmalign.encoders.minilm import MiniLMConfig, MiniLMEncoder
from mmalign.errors import ConfigError, DataError

CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
CUPS = {967, 968}  # espresso, cup


@pytest.fixture(scope="module")
def effnet() -> EfficientNetLite0Encoder:
    return EfficientNetLite0Encoder()


@pytest.fixture(scope="module")
def minilm() -> MiniLMEncoder:
    return MiniLMEncoder(MiniLMConfig(layers=[0, 3, 6]))


def imagenet_top1(encoder: EfficientNetLite0Encoder, images: list[np.ndarray]) -> list[int]:
    """Top-1 ImageNet class through the package's own classifier weights."""
    sd = torch.load(weights_path(), map_location="cpu", weights_only=True)
    batch = encoder.collate([encoder.preprocess(Image.fromarray(im)) for im in images])
    pooled = encoder(batch)["pooled"]
    logits = pooled @ sd["_fc.weight"].T + sd["_fc.bias"]
    return logits.argmax(-1).tolist()


def test_efficientnet_classifies_real_photos(effnet: EfficientNetLite0Encoder) -> None:
    cat, coffee = imagenet_top1(effnet, [data.chelsea(), data.coffee()])
    assert cat in CATS
    assert coffee in CUPS


def test_efficientnet_from_file_path_and_shapes(
    effnet: EfficientNetLite0Encoder, tmp_path: Path
) -> None:
    file = tmp_path / "chelsea.jpg"
    Image.fromarray(data.chelsea()).save(file)
    feats = effnet(effnet.collate([effnet.preprocess(file), effnet.preprocess(file)]))
    assert effnet.out_dim == 1280
    assert feats["pooled"].shape == (2, 1280)
    assert feats["tokens"].shape == (2, 49, 1280)  # 7x7 map at 224
    assert feats["mask"].dtype == torch.bool and bool(feats["mask"].all())
    # pooled is the mean of the flattened final map
    torch.testing.assert_close(feats["pooled"], feats["tokens"].mean(1), rtol=1e-5, atol=1e-5)


def test_efficientnet_resolution_is_configurable() -> None:
    small = EfficientNetLite0Encoder(EfficientNetLite0Config(image_size=160))
    x = small.preprocess(Image.fromarray(data.coffee()))
    assert x.shape == (3, 160, 160)
    assert small(small.collate([x]))["tokens"].shape == (1, 25, 1280)  # 5x5 map
    assert imagenet_top1(small, [data.coffee()])[0] in CUPS


def test_efficientnet_is_frozen_and_stays_in_eval(effnet: EfficientNetLite0Encoder) -> None:
    assert effnet.frozen and not effnet.training
    effnet.train()
    assert not effnet.training  # batch-norm statistics must not change under a parent's train()
    out = effnet(effnet.collate([effnet.preprocess(Image.fromarray(data.coffee()))]))
    assert not out["pooled"].requires_grad


def test_efficientnet_trainable_option() -> None:
    enc = EfficientNetLite0Encoder(EfficientNetLite0Config(image_size=64, trainable=True))
    assert not enc.frozen
    enc.train()
    assert enc.training
    out = enc(enc.collate([enc.preprocess(Image.fromarray(data.coffee()))] * 2))
    out["pooled"].sum().backward()
    assert enc.model.conv_stem.weight.grad is not None


def test_bad_images_raise_data_error_naming_the_file(
    effnet: EfficientNetLite0Encoder, tmp_path: Path
) -> None:
    good = tmp_path / "good.jpg"
    Image.fromarray(data.astronaut()).save(good, quality=90)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not an image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    for path in (truncated, garbage, empty, tmp_path / "missing.jpg"):
        with pytest.raises(DataError, match=path.name):
            effnet.preprocess(path)
    with pytest.raises(DataError):
        effnet.preprocess(12345)


def test_grayscale_and_rgba_images_are_converted(
    effnet: EfficientNetLite0Encoder, tmp_path: Path
) -> None:
    gray = tmp_path / "gray.png"
    Image.fromarray(data.camera()).save(gray)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(data.coffee()).convert("RGBA").save(rgba)
    assert effnet.preprocess(gray).shape == (3, 224, 224)
    assert effnet.preprocess(rgba).shape == (3, 224, 224)


def test_minilm_shapes_layers_and_mean_pooling(minilm: MiniLMEncoder) -> None:
    texts = ["a cat sits on the mat", "hello"]
    feats = minilm(minilm.collate([minilm.preprocess(t) for t in texts]))
    B, L = 2, feats["tokens"].shape[1]
    assert minilm.out_dim == 384 and minilm.num_layers == 6
    assert feats["pooled"].shape == (B, 384)
    assert feats["tokens"].shape == (B, L, 384)
    assert feats["mask"].dtype == torch.bool
    assert feats["mask"].sum(1).tolist() == [8, 3]  # [CLS] words [SEP]
    assert feats["layers"].shape == (B, 3, L, 384)
    torch.testing.assert_close(feats["layers"][:, 2], feats["tokens"])
    manual = feats["tokens"][1, :3].mean(0)  # second text: only its 3 real tokens
    torch.testing.assert_close(feats["pooled"][1], manual, rtol=1e-5, atol=1e-6)


def test_minilm_padding_does_not_change_a_text(minilm: MiniLMEncoder) -> None:
    alone = minilm(minilm.collate([minilm.preprocess("short text")]))["pooled"]
    batch = minilm.collate(
        [minilm.preprocess("short text"), minilm.preprocess("a much longer text " * 10)]
    )
    padded = minilm(batch)["pooled"][:1]
    torch.testing.assert_close(alone, padded, rtol=1e-4, atol=1e-5)


def test_minilm_weights_are_pretrained(minilm: MiniLMEncoder) -> None:
    texts = [
        "a cat sits on the mat",
        "a kitten is sitting on a rug",
        "stock markets fell sharply after the announcement",
    ]
    pooled = minilm(minilm.collate([minilm.preprocess(t) for t in texts]))["pooled"]
    z = torch.nn.functional.normalize(pooled, dim=-1)
    sims = z @ z.T
    assert sims[0, 1] > 0.5  # paraphrases are close ...
    assert sims[0, 2] < 0.3 and sims[1, 2] < 0.3  # ... unrelated sentences are not


def test_minilm_truncates_and_normalises() -> None:
    enc = MiniLMEncoder(MiniLMConfig(max_length=8, normalize=True))
    ids = enc.preprocess("word " * 50)
    assert len(ids) == 8
    pooled = enc(enc.collate([ids]))["pooled"]
    torch.testing.assert_close(pooled.norm(dim=-1), torch.ones(1))


@pytest.mark.parametrize("bad", ["", "   \n\t", None, 3.5])
def test_bad_texts_raise_data_error(minilm: MiniLMEncoder, bad: object) -> None:
    with pytest.raises(DataError):
        minilm.preprocess(bad)


def test_minilm_rejects_layers_it_does_not_have() -> None:
    with pytest.raises(ConfigError, match="layer 7"):
        MiniLMEncoder(MiniLMConfig(layers=[7]))


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError):
        MiniLMConfig(pool="mean")  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        EfficientNetLite0Config(size=160)  # type: ignore[call-arg]
