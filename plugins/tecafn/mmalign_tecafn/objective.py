"""The TeCaFN loss (equation 19): task + γ1 (L_tcon + L_bicon) + γ2 L_ap."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor, nn

from mmalign.interfaces import Batch, Objective, Outputs, StepContext, StrictModel
from mmalign_tecafn.diagnostics import negatives_report
from mmalign_tecafn.fusion import as_list
from mmalign_tecafn.losses import text_centred_infonce
from mmalign_tecafn.model import GENERATOR_KEY


class LossConfig(StrictModel):
    """Loss weights and temperature (the authors' code defaults)."""

    tau: float = Field(0.1, gt=0.0, description="temperature of both InfoNCE stages")
    gamma1: float = Field(0.1, ge=0.0, description="weight of L_con = L_tcon + L_bicon")
    gamma2: float = Field(0.1, ge=0.0, description="weight of the pair loss L_ap")
    no_contrast: list[str] = Field(default_factory=list, description="w/o L_ta / L_tv")

    @field_validator("no_contrast", mode="before")
    @classmethod
    def _contrast_names(cls, value: Any) -> Any:
        return as_list(value)


class TeCaFNObjective(Objective):
    """MAE (regression, equation 18) or cross-entropy (classification) plus the
    contrastive and pairwise terms; logs each term and, in training, how often each
    gate replaced its modality. Reads ``outputs["tecafn"]``, which only the
    cross-sample fusion returns."""

    Config = LossConfig
    requires = ("tecafn",)

    def __init__(self, config: LossConfig | None = None) -> None:
        super().__init__(config)
        self.cfg: LossConfig = self.config
        #: batch size of the hard-negative diagnostics (the method sets the run's)
        self.batch_size = 32

    def forward(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        cfg = self.cfg
        aux = outputs["tecafn"]
        label = batch["label"]
        if "prediction" in outputs:
            task = F.l1_loss(outputs["prediction"].float(), label.float())
        else:
            task = F.cross_entropy(outputs["logits"].float(), label)
        zero = task.new_zeros(())
        tcon = sum(
            (
                text_centred_infonce(e["query"], e["key"], cfg.tau)
                for m, e in aux["contrast"].items()
                if m not in cfg.no_contrast
            ),
            zero,
        )
        bicon = sum((text_centred_infonce(q, k, cfg.tau) for q, k in aux.get("bicon", [])), zero)
        ap = sum(
            (
                F.cross_entropy(aux["pair_logits"][m].float(), y)
                for m, y in aux["pair_labels"].items()
            ),
            zero,
        )
        out = {
            "loss": task + cfg.gamma1 * (tcon + bicon) + cfg.gamma2 * ap,
            "task": task,
            "tcon": tcon,
            "bicon": bicon,
            "ap": ap,
        }
        for m, y in aux["pair_labels"].items():
            out[f"replaced_{m}"] = 1.0 - y.float().mean()
        return out

    def report(
        self, model: nn.Module, features: dict[str, Any], task: Any, run_dir: Any, device: Any
    ) -> dict[str, float]:
        """Hard-negative diagnostics on the test split (see :mod:`.diagnostics`)."""
        num = model.fusion.cfg.num
        return negatives_report(model, features["test"], self.batch_size, num, device)

    def training_step(self, ctx: StepContext) -> dict[str, float]:
        """One step; the step's seeded generator drives the replacement gates."""
        outputs = ctx.forward({**ctx.batch, GENERATOR_KEY: ctx.generator})
        losses = self(outputs, ctx.batch)
        ctx.optimize(losses["loss"])
        return {k: float(v.detach()) for k, v in losses.items()}
