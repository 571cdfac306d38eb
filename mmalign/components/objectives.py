"""Task losses on the standard outputs (``logits`` or ``prediction``)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from mmalign.interfaces import Batch, Objective, Outputs


class CrossEntropyObjective(Objective):
    """Cross-entropy of ``outputs["logits"]`` against integer labels."""

    def forward(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        loss = F.cross_entropy(outputs["logits"].float(), batch["label"])
        return {"loss": loss}


class L1RegressionObjective(Objective):
    """Mean absolute error of ``outputs["prediction"]`` (the MSA convention)."""

    def forward(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        loss = F.l1_loss(outputs["prediction"].float(), batch["label"].float())
        return {"loss": loss}
