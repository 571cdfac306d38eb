"""The SPP-SCL network: image branch, text branch, CMF and classifier."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mmalign.interfaces import Batch, Encoder, Features, FeatureSpec, Fusion, Outputs
from mmalign_sppscl.fusion import CMFConfig, CrossModalFusion, Mode
from mmalign_sppscl.image import ImageBranch
from mmalign_sppscl.text import Summary, TextBranch


def branch_specs(dim: int, image_tokens: int, text_tokens: int) -> dict[str, FeatureSpec]:
    """What the fusion receives inside SPP-SCL: ``I_p``/``T_p`` (width D) as ``pooled``
    and the branches' reduced feature map / BiLSTM states as ``tokens``."""
    return {
        "image": FeatureSpec(pooled=dim, tokens=image_tokens),
        "text": FeatureSpec(pooled=dim, tokens=text_tokens),
    }


class SPPSCLModel(nn.Module):
    """``(I, T) → I_p, T_p → M_p → logits``.

    Outputs ``logits``, ``embeddings`` (``{"image": I_p, "text": T_p}``, what the
    losses and the gate see), ``fused`` (the classifier's hidden layer, the fused
    feature the paper's t-SNE shows) and ``ha_weights``.
    """

    def __init__(
        self,
        *,
        image_dim: int,
        text_dim: int,
        num_classes: int,
        image_modality: str = "image",
        text_modality: str = "text",
        dim: int = 32,
        dropout: float = 0.2,
        image_channels: int = 128,
        lstm_hidden: int = 64,
        ha_layers: int = 4,
        ha_summary: Summary = "cls",
        mask_padding: bool = True,
        special_tokens: bool = True,
        cmf: Mode = "batch",
        make_fusion: Callable[[dict[str, FeatureSpec]], Fusion] | None = None,
        train_mode_encoders: dict[str, Encoder] | None = None,
    ) -> None:
        super().__init__()
        self.modalities = {"image": image_modality, "text": text_modality}
        # outside the module tree (not in checkpoints, counts or the optimizer): frozen
        # encoders that this model runs on the raw inputs in its own train/eval mode
        self._encoders: tuple[dict[str, Encoder], ...] = (
            (train_mode_encoders,) if train_mode_encoders else ()
        )
        self.image = ImageBranch(image_dim, channels=image_channels, dim=dim, dropout=dropout)
        self.text = TextBranch(
            text_dim,
            layers=ha_layers,
            hidden=lstm_hidden,
            dim=dim,
            dropout=dropout,
            mask_padding=mask_padding,
            special_tokens=special_tokens,
            summary=ha_summary,
        )
        inputs = branch_specs(dim, self.image.out_tokens, self.text.out_tokens)
        self.fusion: Fusion = (
            make_fusion(inputs) if make_fusion is not None
            else CrossModalFusion(CMFConfig(mode=cmf, dim=dim, dropout=dropout), inputs)
        )
        if self.fusion.out_dim is None or "pooled" not in type(self.fusion).outputs(
            self.fusion.config
        ):
            raise ValueError("spp-scl's classifier needs a fusion that provides 'pooled'")
        self.classifier = nn.Sequential(
            nn.Linear(self.fusion.out_dim, 2 * dim),
            nn.BatchNorm1d(2 * dim),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.head = nn.Linear(2 * dim, num_classes)

    def features(self, batch: Batch, modality: str) -> Features:
        """Cached features, or (train-mode encoders) the frozen encoder run now on the
        batch's inputs with dropout and batch-norm statistics as in ``self.training``."""
        if not self._encoders:
            return batch[modality]
        encoder = self._encoders[0][modality]
        inputs = batch[modality]["inputs"]
        nn.Module.train(encoder, self.training)  # EncoderBase keeps frozen ones in eval
        with torch.no_grad():
            return encoder.to(self.head.weight.device)(inputs)

    def forward(self, batch: Batch) -> Outputs:
        image = self.image(self.features(batch, self.modalities["image"]))
        text = self.text(self.features(batch, self.modalities["text"]))
        fused = self.classifier(self.fusion({"image": image, "text": text}).pooled)
        return {
            "logits": self.head(fused),
            "embeddings": {"image": image["pooled"], "text": text["pooled"]},
            "fused": fused,
            "ha_weights": text["weights"],
        }
