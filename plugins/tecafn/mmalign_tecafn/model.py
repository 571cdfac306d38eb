"""The whole network: cross-sample fusion, then the prediction MLP (equation 17)."""

from __future__ import annotations

import torch
from torch import nn

from mmalign.interfaces import Batch, Outputs
from mmalign_tecafn.fusion import CrossSampleFusion

#: batch key under which the objective hands the step's generator to the gates
GENERATOR_KEY = "tecafn_generator"


class PredictionHead(nn.Module):
    """``z_s`` → tanh MLP (the authors' sum-fusion head) → FC; for regression
    ``ŷ = scale · tanh(FC(·))`` so that the output spans the label range."""

    def __init__(
        self, dim: int, hidden: int, out_dim: int, dropout: float, scale: float | None
    ) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(dim, hidden),
            nn.Tanh(),
            nn.Linear(hidden, 2 * hidden),
            nn.Tanh(),
            nn.Dropout(dropout),
            nn.Linear(2 * hidden, hidden),
            nn.Tanh(),
        )
        self.fc = nn.Linear(hidden, out_dim)
        self.scale = scale

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.fc(self.mlp(z))
        return out if self.scale is None else self.scale * torch.tanh(out.squeeze(-1))


class TeCaFNModel(nn.Module):
    """Returns ``prediction`` (regression) or ``logits`` (classification), and under
    ``tecafn`` what the losses need (contrastive embeddings, pair logits/labels).

    ``encoders`` holds the encoders that run inside the model (not cached: the
    fine-tuned BERT of the paper); their modalities arrive as preprocessed inputs.
    """

    def __init__(
        self,
        fusion: CrossSampleFusion,
        head: PredictionHead,
        encoders: dict[str, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.fusion = fusion
        self.head = head
        self.encoders = nn.ModuleDict(encoders or {})

    def forward(self, batch: Batch) -> Outputs:
        features = {
            m: self.encoders[m](batch[m]["inputs"]) if m in self.encoders else batch[m]
            for m in self.fusion.modalities
        }
        aux = self.fusion(features, batch.get(GENERATOR_KEY))
        out = self.head(aux.pop("fused"))
        key = "logits" if self.head.scale is None else "prediction"
        return {key: out, "tecafn": aux}
