"""The JEPA predictive objective: predicted vs target block representations, the EMA
update of the target module after every optimizer step, and the collapse guard.

Works with any model whose outputs hold ``"predictions"`` and ``"targets"`` (same
shape, [B, M, K, D]: M blocks of K patches) and which names its (online, EMA target)
module pairs in ``ema_pairs()``.
"""

from __future__ import annotations

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
    loss: Literal["l2", "mse", "smooth_l1"] = Field(
        "l2",
        description="l2: the paper's (1/M) sum_i sum_{j in B_i} ||s_hat - s||^2; mse: its "
        "mean per element; smooth_l1: the I-JEPA/TI-JEPA code's",
    )
    smooth_l1_beta: float = 1.0
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


def jepa_loss(predictions: Tensor, targets: Tensor, kind: str, beta: float = 1.0) -> Tensor:
    """[B, M, K, D] predictions and targets -> the scalar loss, averaged over images."""
    p, t = predictions.float(), targets.float()
    if kind == "l2":
        return (p - t).pow(2).sum(dim=(-1, -2)).mean()
    if kind == "mse":
        return F.mse_loss(p, t)
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

    def __init__(self, config: JEPAConfig | None = None, loader: Any = None) -> None:
        super().__init__(config)
        cfg: JEPAConfig = self.config
        self.loader = loader  # a StageSpec.loader adding masks, for the validation report
        self.guard = CollapseGuard(cfg.collapse_std, cfg.collapse_erank)

    def forward(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        cfg: JEPAConfig = self.config
        loss = jepa_loss(outputs["predictions"], outputs["targets"], cfg.loss, cfg.smooth_l1_beta)
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
        """Loss and collapse statistics over a split, with fixed-seed masks."""
        model.eval()
        preds, targets, total, count = [], [], 0.0, 0
        for batch in self.loader(fs, 128, torch.Generator().manual_seed(0), 0, False):
            batch = _to(batch, device)
            out = model(batch)
            n = len(batch["index"])
            total += float(self(out, batch)["loss"]) * n
            count += n
            preds.append(out["predictions"].float().cpu())
            targets.append(out["targets"].float().cpu())
        flat = [torch.cat([x.reshape(-1, x.shape[-1]) for x in xs]) for xs in (preds, targets)]
        stats = representation_stats(*flat, rows=4 * self.config.stats_rows)
        message = self.guard.check(stats)
        return {"loss": total / max(count, 1), **stats, "collapsed": message is not None}

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

