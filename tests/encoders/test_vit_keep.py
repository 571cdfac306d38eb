"""Encoding only some ViT patches, checked against I-JEPA's apply_masks recipe."""

from __future__ import annotations

import pytest
import torch

from mmalign.encoders.timm_image import TimmConfig, TimmEncoder
from mmalign.encoders.vit import vit_tokens
from mmalign.errors import ConfigError


@pytest.fixture(scope="module", params=["class-token", "no-class-token"])
def enc(request: pytest.FixtureRequest) -> TimmEncoder:
    e = TimmEncoder(TimmConfig(model="test_vit", seed=3))
    if request.param == "no-class-token":  # the I-JEPA layout: no prefix, average pooling
        import timm

        torch.manual_seed(3)
        e.model = timm.create_model(
            "test_vit", num_classes=0, class_token=False, global_pool="avg", fc_norm=False
        ).eval()
        e.set_trainable(False)
    return e


def ijepa_reference(model: torch.nn.Module, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """I-JEPA's VisionTransformer.forward with masks, written out independently."""
    tokens = model.patch_embed(x)
    if tokens.ndim == 4:  # [B, H, W, C] when the model allows dynamic image sizes
        tokens = tokens.flatten(1, 2)
    prefix = model.num_prefix_tokens
    pos = model.pos_embed
    patches = tokens + pos[:, prefix:]  # positions of the full grid
    gathered = torch.gather(patches, 1, keep.unsqueeze(-1).repeat(1, 1, patches.shape[-1]))
    if prefix:
        cls = model.cls_token + pos[:, :prefix]
        gathered = torch.cat([cls.expand(len(x), -1, -1), gathered], dim=1)
    for blk in model.blocks:
        gathered = blk(gathered)
    return model.norm(gathered)[:, prefix:]


def test_subset_matches_the_reference(enc: TimmEncoder) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 160, 160, generator=g)
    n = enc.num_patches
    keep = torch.stack([torch.randperm(n, generator=g)[:37] for _ in range(2)])
    feats = enc(x, keep=keep)
    assert feats["tokens"].shape == (2, 37, enc.out_dim)
    assert feats["mask"].shape == (2, 37) and feats["mask"].all()
    with torch.no_grad():
        expected = ijepa_reference(enc.model, x, keep)
    torch.testing.assert_close(feats["tokens"], expected, rtol=1e-4, atol=1e-5)


def test_keeping_every_patch_equals_the_full_forward(enc: TimmEncoder) -> None:
    x = torch.randn(1, 3, 160, 160)
    keep = torch.arange(enc.num_patches).unsqueeze(0)
    torch.testing.assert_close(enc(x, keep=keep)["tokens"], enc(x)["tokens"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(enc(x, keep=keep)["pooled"], enc(x)["pooled"], rtol=1e-4, atol=1e-5)


def test_order_of_keep_only_permutes_tokens(enc: TimmEncoder) -> None:
    """Positions come from the grid, not from the order of ``keep``."""
    x = torch.randn(1, 3, 160, 160)
    keep = torch.tensor([[3, 17, 40, 8, 60]])
    perm = torch.tensor([4, 2, 0, 3, 1])
    a = enc(x, keep=keep)["tokens"]
    b = enc(x, keep=keep[:, perm])["tokens"]
    torch.testing.assert_close(b, a[:, perm], rtol=1e-4, atol=1e-5)


def test_subset_differs_from_slicing_the_full_output(enc: TimmEncoder) -> None:
    """Kept patches attend only to kept patches (not to the masked ones)."""
    x = torch.randn(1, 3, 160, 160)
    keep = torch.tensor([[0, 1, 2, 3]])
    assert not torch.allclose(enc(x, keep=keep)["tokens"], enc(x)["tokens"][:, :4], atol=1e-4)


@pytest.mark.parametrize(
    "keep, message",
    [
        (torch.tensor([[0, 100]]), "lie in"),
        (torch.tensor([[-1, 2]]), "lie in"),
        (torch.tensor([[0.0, 1.0]]), "integer"),
        (torch.tensor([0, 1]), "batch"),
        (torch.zeros(2, 3, dtype=torch.long), "batch=1"),
    ],
)
def test_bad_keep_is_rejected(enc: TimmEncoder, keep: torch.Tensor, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        vit_tokens(enc.model, torch.randn(1, 3, 160, 160), keep)
