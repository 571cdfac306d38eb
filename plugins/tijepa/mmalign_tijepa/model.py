"""The pretraining model (context module X, EMA target module X~, predictor g_phi) and
the linear probe on its frozen representation.

Targets: the full image's tokens (cached features of the frozen image encoder) and
the text tokens pass the target module; the output is layer-normed (I-JEPA) and the
M target blocks are gathered from it. Context, two ways:

* paper — the visible patches are re-encoded by the frozen ViT on their own
  (``encoder(inputs, keep=context_idx)``), so they never attend to masked patches;
* code  — the cached full-image tokens are gathered at the visible patches (the
  authors' code), so each one has already seen the whole image inside the ViT.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmalign.interfaces import Batch, Encoder, Head, Outputs
from mmalign_tijepa.fusion import T2IConfig, T2ICrossAttention, masked_mean, t2i_inputs
from mmalign_tijepa.masks import token_grid
from mmalign_tijepa.predictor import JEPAPredictor, PredictorConfig, gather_tokens

Representation = Literal["target", "context"]


def _device_of(module: nn.Module) -> torch.device | None:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return None


class TIJEPAModel(nn.Module):
    def __init__(
        self,
        fusion: T2IConfig,
        predictor: PredictorConfig,
        *,
        image_dim: int,
        text_dim: int,
        target_norm: bool = True,
        grid: tuple[int, int] | None = None,
        image_encoder: Encoder | None = None,
    ) -> None:
        super().__init__()
        self.context = T2ICrossAttention(fusion, t2i_inputs(fusion, image_dim, text_dim))
        self.target = copy.deepcopy(self.context).requires_grad_(False)
        self.predictor = JEPAPredictor(predictor, fusion.dim)
        self.target_norm = target_norm
        self.grid = grid
        # the frozen encoder stays outside the module tree: not in checkpoints or counts
        self._encoder: tuple[Encoder, ...] = (image_encoder,) if image_encoder else ()

    @property
    def paper_mode(self) -> bool:
        return bool(self._encoder)

    def no_weight_decay(self) -> set[str]:
        """Parameters kept out of weight decay besides biases and norms (timm's hook)."""
        return {"predictor.mask_token"}

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.context, self.target)]

    def train(self, mode: bool = True) -> TIJEPAModel:
        super().train(mode)
        self.target.eval()  # the EMA copy never uses dropout
        return self

    def _modalities(self, batch: Batch) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        cfg: T2IConfig = self.context.config
        return batch[cfg.image], batch[cfg.text]

    def visible_tokens(self, image: dict[str, Tensor], index: Tensor) -> Tensor:
        """Image tokens of the context patches (see the module docstring)."""
        if not self._encoder:
            return gather_tokens(image["tokens"], index)
        encoder = self._encoder[0]
        inputs = image["inputs"]
        if _device_of(encoder) != inputs.device:
            encoder.to(inputs.device)
        # fp32 like the cached targets: under the runner's bf16 autocast the visible
        # tokens would otherwise differ from the target tokens by more than the masking
        with torch.no_grad(), torch.autocast(inputs.device.type, enabled=False):
            return encoder(inputs.float(), keep=index)["tokens"].float()

    @torch.no_grad()
    def target_tokens(self, image: dict[str, Tensor], text: dict[str, Tensor]) -> Tensor:
        full = self.target.encode(image["tokens"], text["tokens"], text.get("mask"),
                                  grid=self.grid)
        return F.layer_norm(full, full.shape[-1:]) if self.target_norm else full

    def forward(self, batch: Batch, context_shift: int = 0) -> Outputs:
        """Predictions and targets. ``context_shift`` > 0 gives the context path the
        caption of the image that many rows later in the batch (the targets keep their
        own): the diagnostic of how much the predictions rely on the caption."""
        image, text = self._modalities(batch)
        masks = batch["masks"]
        context_idx, target_idx = masks["context"], masks["targets"]
        b, m, k = target_idx.shape
        grid = token_grid(int(image["tokens"].shape[1]), self.grid)
        full = self.target_tokens(image, text)
        targets = gather_tokens(full, target_idx.reshape(b, m * k)).view(b, m, k, -1)
        visible = self.visible_tokens(image, context_idx)
        if context_shift:
            text = {key: torch.roll(value, context_shift, dims=0) for key, value in text.items()
                    if isinstance(value, Tensor)}
        s_x = self.context.encode(visible, text["tokens"], text.get("mask"), context_idx, grid)
        predictions = self.predictor(s_x, context_idx, target_idx, grid)
        return {"predictions": predictions, "targets": targets}

    @torch.no_grad()
    def represent_tokens(
        self, batch: Batch, module: Representation = "target"
    ) -> tuple[Tensor, Tensor | None]:
        """The module's fused image tokens [B, N, dim] and the image mask."""
        image, text = self._modalities(batch)
        net = self.target if module == "target" else self.context
        tokens = net.encode(image["tokens"], text["tokens"], text.get("mask"), grid=self.grid)
        return tokens, image.get("mask")

    @torch.no_grad()
    def represent(self, batch: Batch, module: Representation = "target") -> Tensor:
        """The multimodal representation: mean of the module's fused image tokens [B, dim]."""
        return masked_mean(*self.represent_tokens(batch, module))


class AttentivePool(nn.Module):
    """One learned query cross-attending to frozen tokens, then a LayerNorm: the
    attentive probe of V-JEPA's evaluation, reduced to its pooling. A token-level
    readout: what one token carries (a shape bound to its place) is not averaged with
    the others, as the mean is."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.query, std=0.02)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        query = self.query.expand(tokens.shape[0], -1, -1)
        padding = None if mask is None else ~mask.bool()
        pooled, _ = self.attn(query, tokens, tokens, key_padding_mask=padding,
                              need_weights=False)
        return self.norm(pooled.squeeze(1))


class Probe(nn.Module):
    """A registered head (linear by default) on a precomputed frozen representation:
    ``batch[key]["pooled"]``, or with ``pool`` the pool of ``batch[key]["tokens"]``."""

    def __init__(
        self, head: Head, key: str, regression: bool = False, pool: AttentivePool | None = None
    ) -> None:
        super().__init__()
        self.pool = pool
        self.head = head
        self.key = key
        self.regression = regression

    def forward(self, batch: Batch) -> Outputs:
        features = batch[self.key]
        if self.pool is None:
            x = features["pooled"].float()
        else:
            x = self.pool(features["tokens"].float(), features.get("mask"))
        out = self.head(x)
        return {"prediction": out.squeeze(-1)} if self.regression else {"logits": out}
