"""Encoding a subset of a ViT's patches, as I-JEPA's ``apply_masks`` does.

TI-JEPA re-encodes only the visible context patches of an image. The patches are
embedded and given their position embeddings on the full grid first, then the
kept ones are gathered, and only those go through the transformer blocks — so a
kept patch knows where it is but attends only to the other kept patches. Prefix
tokens (a class token, registers) are always kept, in front.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmalign.errors import ConfigError


def is_vit(model: nn.Module) -> bool:
    """True for timm ``VisionTransformer`` models (the ones patch selection supports)."""
    from timm.models.vision_transformer import VisionTransformer

    return isinstance(model, VisionTransformer)


def num_patches(model: nn.Module) -> int:
    return int(model.patch_embed.num_patches)


def check_keep(keep: Tensor, batch: int, patches: int) -> Tensor:
    """Validate ``keep`` ([B, K] patch indices) and return it as a long tensor."""
    if keep.ndim != 2 or keep.shape[0] != batch:
        raise ConfigError(
            f"keep must be a [batch, K] tensor of patch indices with batch={batch}, "
            f"got shape {list(keep.shape)}"
        )
    if keep.is_floating_point() or keep.dtype == bool:
        raise ConfigError(f"keep must hold integer patch indices, got {keep.dtype}")
    if keep.numel() and (int(keep.min()) < 0 or int(keep.max()) >= patches):
        raise ConfigError(
            f"keep indices must lie in [0, {patches}) (the patch grid), "
            f"got min {int(keep.min())} max {int(keep.max())}"
        )
    return keep.long()


def vit_tokens(model: nn.Module, images: Tensor, keep: Tensor | None = None) -> Tensor:
    """The final-norm token states of a timm ViT, prefix tokens first.

    Without ``keep`` this equals ``model.forward_features(images)``. With ``keep``
    only the listed patches (plus prefix tokens) pass through the blocks; the output
    has ``num_prefix_tokens + K`` tokens, patch ``j`` of the output being patch
    ``keep[:, j]`` of the image.
    """
    if keep is None:
        return model.forward_features(images)
    x = model.patch_embed(images)
    x = model._pos_embed(x)  # prefix tokens concatenated in front, positions added
    prefix = model.num_prefix_tokens
    keep = check_keep(keep, images.shape[0], x.shape[1] - prefix).to(x.device)
    index = keep.unsqueeze(-1).expand(-1, -1, x.shape[-1])
    patches = x[:, prefix:].gather(1, index)
    x = patches if prefix == 0 else torch.cat([x[:, :prefix], patches], dim=1)
    x = model.patch_drop(x)
    x = model.norm_pre(x)
    x = model.blocks(x)
    return model.norm(x)
