"""The JEPA predictive objective: predicted vs target block representations, the EMA
update of the target module after every optimizer step, and the collapse guard.

Works with any model whose outputs hold ``"predictions"`` and ``"targets"`` (same
shape, [B, M, K, D]: M blocks of K patches) and which names its (online, EMA target)
module pairs in ``ema_pairs()``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from mmalign.interfaces import Batch, Objective, Outputs, StepContext, StrictModel, Task
from mmalign_tijepa.collapse import CollapseGuard, representation_stats


class JEPAConfig(StrictModel):
    loss: Literal["l2", "mse", "smooth_l1", "vicreg"] = Field(
        "l2",
        description="l2: the paper's (1/M) sum_i sum_{j in B_i} ||s_hat - s||^2; mse: its "
        "mean per element; smooth_l1: the I-JEPA code's and the authors' small script's; "
        "vicreg: the authors' large script's (vicreg_loss)",
    )
    smooth_l1_beta: float = 1.0
    vicreg_sim: float = Field(25.0, ge=0, description="vicreg: weight of the MSE term")
    vicreg_std: float = Field(25.0, ge=0, description="vicreg: weight of the variance hinge")
    vicreg_cov: float = Field(1.0, ge=0, description="vicreg: weight of the covariance term")
    ema: tuple[float, float] = Field((0.996, 1.0), description="momentum, linear over steps")
    collapse_std: float = Field(0.01, description="warn when a mean per-dim std falls below")
    collapse_erank: float = Field(2.0, description="warn when an effective rank falls below")
    stats_rows: int = Field(1024, ge=2, description="rows sampled per step for the guard")

    @model_validator(mode="after")
    def _momentum(self) -> JEPAConfig:
        lo, hi = self.ema
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"ema must satisfy 0 <= start <= end <= 1, got {self.ema}")
        return self


class HasEMA(Protocol):
    def ema_pairs(self) -> Iterable[tuple[nn.Module, nn.Module]]: ...


VICREG_EPS = 1e-4  # inside the square root of the variance, as the authors' script


def _off_diagonal(x: Tensor) -> Tensor:
    """The off-diagonal entries of a square matrix, flattened."""
    n = x.shape[0]
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def vicreg_terms(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """The three terms of the authors' VICReg-style loss (``train_P_large_A100.py``).

    ``pred`` and ``target`` are ``[N, K, D]``: N block predictions (blocks x images),
    K patches per block, D channels. Each axis and divisor is the authors':

    * ``invariance`` — ``F.mse_loss``: the mean over all N·K·D elements;
    * ``variance`` — the unbiased variance over **axis 0, the N blocks**, separately for
      every (patch slot k, channel d), ``std = sqrt(var + 1e-4)``, the hinge
      ``relu(1 - std)`` averaged over the K·D entries, and **half** of it per side
      (predictions, targets);
    * ``covariance`` — rows are the N·K tokens, ``C = Xᵀ X / (N·K - 1)`` **without
      centring** (a second moment, unlike VICReg's covariance), the squared off-diagonal
      entries summed and divided by **K** (``pred.size(1)``, VICReg divides by D), the two
      sides added (not halved).

    The targets come from the EMA module without gradient, so their variance and
    covariance terms are constants that only shift the value (as in the authors' code).
    """
    if pred.dim() != 3 or pred.shape != target.shape:
        raise ValueError(
            f"vicreg expects predictions and targets of the same shape [N, K, D], "
            f"got {list(pred.shape)} and {list(target.shape)}"
        )
    if pred.shape[0] < 2:
        raise ValueError("vicreg needs at least 2 block predictions (the variance runs over N)")
    p, t = pred.float(), target.float()
    k, d = p.shape[1], p.shape[2]

    def hinge(x: Tensor) -> Tensor:
        return F.relu(1 - torch.sqrt(x.var(dim=0) + VICREG_EPS)).mean()

    def cov(x: Tensor) -> Tensor:
        rows = x.reshape(-1, d)
        second = rows.T @ rows / (rows.shape[0] - 1)
        return _off_diagonal(second).pow(2).sum() / k

    return {
        "invariance": F.mse_loss(p, t),
        "variance": hinge(p) / 2 + hinge(t) / 2,
        "covariance": cov(p) + cov(t),
    }


def vicreg_loss(
    pred: Tensor, target: Tensor, sim: float = 25.0, std: float = 25.0, cov: float = 1.0
) -> Tensor:
    """``sim·invariance + std·variance + cov·covariance`` (see :func:`vicreg_terms`)."""
    terms = vicreg_terms(pred, target)
    return sim * terms["invariance"] + std * terms["variance"] + cov * terms["covariance"]


def jepa_loss(
    predictions: Tensor, targets: Tensor, kind: str, beta: float = 1.0,
    vicreg: tuple[float, float, float] = (25.0, 25.0, 1.0),
) -> Tensor:
    """[B, M, K, D] predictions and targets -> the scalar loss, averaged over images."""
    p, t = predictions.float(), targets.float()
    if kind == "l2":
        return (p - t).pow(2).sum(dim=(-1, -2)).mean()
    if kind == "mse":
        return F.mse_loss(p, t)
    if kind == "vicreg":  # the B·M block predictions are the authors' N
        return vicreg_loss(p.flatten(0, 1), t.flatten(0, 1), *vicreg)
    return F.smooth_l1_loss(p, t, beta=beta)


def momentum_at(step: int, total_steps: int, ema: tuple[float, float]) -> float:
    """I-JEPA's schedule: ``start + step * (end - start) / total_steps``."""
    start, end = ema
    return start + min(step, total_steps) * (end - start) / max(total_steps, 1)


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, parameter by parameter."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)


def _to(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


class JEPAObjective(Objective):
    """Predict target-block representations; EMA target; energy-collapse guard."""

    Config = JEPAConfig
    #: the predictor's block predictions and the EMA target's layer-normed tokens
    requires = ("predictions", "targets")

    def __init__(self, config: JEPAConfig | None = None, loader: Any = None) -> None:
        super().__init__(config)
        cfg: JEPAConfig = self.config
        self.loader = loader  # a StageSpec.loader adding masks, for the validation report
        self.guard = CollapseGuard(cfg.collapse_std, cfg.collapse_erank)

    def forward(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        cfg: JEPAConfig = self.config
        loss = jepa_loss(
            outputs["predictions"], outputs["targets"], cfg.loss, cfg.smooth_l1_beta,
            (cfg.vicreg_sim, cfg.vicreg_std, cfg.vicreg_cov),
        )
        return {"loss": loss}

    def training_step(self, ctx: StepContext) -> dict[str, float]:
        cfg: JEPAConfig = self.config
        outputs = ctx.forward(ctx.batch)
        losses = self(outputs, ctx.batch)
        ctx.optimize(losses["loss"])
        momentum = momentum_at(ctx.step, ctx.total_steps, cfg.ema)
        model: HasEMA = getattr(ctx.model, "module", ctx.model)  # DDP wraps the model
        for online, target in model.ema_pairs():
            ema_update(target, online, momentum)
        stats = representation_stats(outputs["predictions"], outputs["targets"], cfg.stats_rows)
        self.guard.add(ctx.epoch, stats)
        return {"loss": float(losses["loss"].detach()), "momentum": momentum, **stats}

    @torch.no_grad()
    def validation_stats(self, model: nn.Module, fs: Any, device: torch.device) -> dict[str, Any]:
        """Loss and collapse statistics over a split, with fixed-seed masks.

        For a model whose ``forward`` takes ``context_shift`` (TI-JEPA's), also the loss
        with every context given the caption half a batch away (another image's, since
        validation visits an image's captions together) against the same targets and
        masks: ``text_gain`` = that loss minus the true loss. It is what conditioning on
        the caption buys the prediction of masked regions, the quantity a caption that
        says where things are should raise, read off the pretraining itself rather than a
        downstream probe."""
        model.eval()
        shifts = "context_shift" in inspect.signature(model.forward).parameters
        preds, targets, total, shifted, count, shifted_count = [], [], 0.0, 0.0, 0, 0
        for batch in self.loader(fs, 128, torch.Generator().manual_seed(0), 0, False):
            batch = _to(batch, device)
            out = model(batch)
            n = len(batch["index"])
            total += float(self(out, batch)["loss"]) * n
            count += n
            if shifts and n >= 2:
                swapped = model(batch, context_shift=n // 2)
                shifted += float(self(swapped, batch)["loss"]) * n
                shifted_count += n
            preds.append(out["predictions"].float().cpu())
            targets.append(out["targets"].float().cpu())
        flat = [torch.cat([x.reshape(-1, x.shape[-1]) for x in xs]) for xs in (preds, targets)]
        stats = representation_stats(*flat, rows=4 * self.config.stats_rows)
        message = self.guard.check(stats)
        loss = total / max(count, 1)
        out_stats: dict[str, Any] = {"loss": loss, **stats, "collapsed": message is not None}
        if shifted_count:
            swapped_loss = shifted / shifted_count
            out_stats["swapped_caption_loss"] = swapped_loss
            out_stats["text_gain"] = swapped_loss - loss
            out_stats["text_gain_rel"] = (swapped_loss - loss) / loss if loss else 0.0
        return out_stats

    def report(
        self, model: nn.Module, features: dict[str, Any], task: Task, run_dir: Path,
        device: torch.device,
    ) -> dict[str, Any]:
        """Per-epoch spread of predicted/target representations, the same on validation,
        collapse warnings, and a plot of the spread (``tijepa-collapse.png``)."""
        self.guard.close()
        out: dict[str, Any] = {"epochs": self.guard.epochs, "warnings": list(self.guard.warnings)}
        if self.loader is not None and len(features.get("validation", ())):
            out["validation"] = self.validation_stats(model, features["validation"], device)
            message = self.guard.check(out["validation"])
            if message:
                out["warnings"].append(message)
        if self.guard.epochs:
            out["plot"] = str(plot_spread(self.guard.epochs, Path(run_dir) / "tijepa-collapse.png"))
        out["collapsed"] = bool(out["warnings"])
        return out


def plot_spread(epochs: list[dict[str, float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [int(r["epoch"]) for r in epochs]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, key, title in ((axes[0], "std", "mean per-dim std"), (axes[1], "erank", "eff. rank")):
        for side in ("pred", "target"):
            ax.plot(x, [r[f"{side}_{key}"] for r in epochs], marker="o", label=side)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

