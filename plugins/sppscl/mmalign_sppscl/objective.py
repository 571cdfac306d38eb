"""SPP-SCL's objective: the losses of equation 7 and Algorithm 1's two-step schedule.

``training_step`` is the generic multi-step hook of :class:`mmalign.Objective`:

1. ``λ·CE + L_cl_i + L_cl_t`` → first optimizer step;
2. the batch is encoded again by the updated model, the gate is evaluated on the
   new ``I_p'``, ``T_p'`` and, when it fires, a second optimizer step is taken on
   ``L_cl_m`` alone.

``two_step=False`` is Table 4's one-step ablation (every loss at once, one step, no
gate); ``intra=False``/``inter=False`` drop ``L_cl_i + L_cl_t``/``L_cl_m`` (Table 5).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from mmalign.errors import MMAlignError
from mmalign.interfaces import Batch, Objective, Outputs, StepContext, StrictModel, Task
from mmalign_sppscl import diagnostics
from mmalign_sppscl.losses import (
    Gate,
    Variant,
    inter_gate,
    inter_supcon,
    intra_supcon,
    saturated_share,
)


def _distributed() -> bool:
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class SPPSCLLossConfig(StrictModel):
    ce_weight: float = Field(5.0, description="λ, the cross-entropy weight (Table 2)")
    tau: float = Field(0.07, gt=0)
    alpha: float = Field(2 / 3, ge=0, description="gate threshold α")
    gate: Gate = Field(
        "code",
        description="code: sigmoid(T·Iᵀ) on raw features, c_mask with the diagonal, floored "
        "(the authors'); paper: cosine similarity, InterMask without the diagonal",
    )
    variant: Variant = "code"
    two_step: bool = True
    intra: bool = True
    inter: bool = True
    report_batch_size: int = Field(64, ge=1, description="evaluation batch of the report")
    tsne: bool = True


class SPPSCLObjective(Objective):
    """λ·CE + L_cl_i + L_cl_t, then the gated L_cl_m step (Algorithm 1)."""

    Config = SPPSCLLossConfig
    requires = ("logits", "embeddings")

    @classmethod
    def needs(cls, config: StrictModel) -> tuple[str, ...]:
        """``logits`` for λ·CE; the ``embeddings`` I_p/T_p unless both contrastive
        terms are dropped."""
        uses = getattr(config, "intra", True) or getattr(config, "inter", True)
        return cls.requires if uses else ("logits",)

    def __init__(self, config: SPPSCLLossConfig | None = None) -> None:
        super().__init__(config)
        #: gate evaluations and firings in this process (the history has per-epoch rates)
        self.gate_checks = 0
        self.gate_fired = 0

    def step_one(self, outputs: Outputs, labels: Tensor) -> dict[str, Tensor]:
        """``λ·CE`` and, unless dropped, the two intra-modal losses."""
        cfg = self.config
        terms = {"ce": F.cross_entropy(outputs["logits"].float(), labels)}
        if cfg.intra:
            emb = outputs["embeddings"]
            terms["intra_image"] = intra_supcon(emb["image"], labels, cfg.tau, cfg.variant)
            terms["intra_text"] = intra_supcon(emb["text"], labels, cfg.tau, cfg.variant)
        return terms

    def inter(self, outputs: Outputs, labels: Tensor) -> Tensor:
        """``L_cl_m`` on the outputs' embeddings."""
        cfg, emb = self.config, outputs["embeddings"]
        return inter_supcon(emb["image"], emb["text"], labels, cfg.tau, cfg.variant)

    def total(self, terms: dict[str, Tensor]) -> Tensor:
        """``λ·CE`` plus every other term, unweighted (eq. 7)."""
        return sum(
            (self.config.ce_weight * v if k == "ce" else v for k, v in terms.items()),
            start=torch.zeros((), device=terms["ce"].device),
        )

    def forward(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        """Equation 7: every enabled loss on one forward (validation loss, one-step)."""
        terms = self.step_one(outputs, batch["label"])
        if self.config.inter:
            terms["inter"] = self.inter(outputs, batch["label"])
        return {"loss": self.total(terms), **terms}

    def training_step(self, ctx: StepContext) -> dict[str, float]:
        cfg = self.config
        if cfg.two_step and cfg.inter and _distributed():
            raise MMAlignError(
                "spp-scl's gated second step is single-process only: each rank would "
                "decide the gate on its own slice and the ranks' optimizer steps would "
                "diverge; run on one device or with --set two_step=false"
            )
        labels = ctx.batch["label"]
        if not cfg.two_step:
            losses = self(ctx.forward(ctx.batch), ctx.batch)
            ctx.optimize(losses["loss"])
            return {k: float(v.detach()) for k, v in losses.items()}
        terms = self.step_one(ctx.forward(ctx.batch), labels)
        loss = self.total(terms)
        ctx.optimize(loss)
        logs = {k: float(v.detach()) for k, v in terms.items()}
        logs["loss"] = float(loss.detach())
        if cfg.inter:
            again = ctx.forward(ctx.batch)
            emb = again["embeddings"]
            img, txt = emb["image"].detach(), emb["text"].detach()
            fired = inter_gate(img, txt, labels, cfg.alpha, cfg.gate)
            inter = self.inter(again, labels)
            if fired:
                ctx.optimize(inter)
                logs["loss"] += float(inter.detach())
            self.gate_checks += 1
            self.gate_fired += int(fired)
            logs["inter"] = float(inter.detach())
            logs["gate_fired"] = float(fired)
            logs["gate_saturated"] = saturated_share(img, txt)
        return logs

    def report(
        self, model: nn.Module, features: dict[str, Any], task: Task, run_dir: Path,
        device: torch.device,
    ) -> dict[str, Any]:
        """Gate rate, IID/TTD/ITD on the test split, batch dependence, plots."""
        cfg = self.config
        test = features["test"]
        labels = test.labels
        names = list(task.label_names)
        res = diagnostics.collect(model, test, cfg.report_batch_size, device)
        out: dict[str, Any] = {
            "distances": diagnostics.distance_report(res["image"], res["text"], labels, names),
            "eval_batch_dependence": diagnostics.batch_dependence(
                model, test, labels, cfg.report_batch_size, device
            ),
        }
        if cfg.two_step and cfg.inter:
            out["gate"] = {
                "checks": self.gate_checks,
                "fired": self.gate_fired,
                "fraction": self.gate_fired / max(self.gate_checks, 1),
            }
        inter = "gated inter" if cfg.two_step else "inter"
        losses = ["CE"] + ["intra"] * cfg.intra + [inter] * cfg.inter
        title = f"SPP-SCL on {task.name}: " + " + ".join(losses)
        hist = run_dir / "sppscl-distances.png"
        diagnostics.distance_histogram(res["image"], res["text"], labels, hist, title)
        out["distances_png"] = str(hist)
        if cfg.tsne:
            tsne = run_dir / "sppscl-tsne.png"
            if diagnostics.tsne_plot(res["fused"], labels, names, tsne, title):
                out["tsne_png"] = str(tsne)
        return out
