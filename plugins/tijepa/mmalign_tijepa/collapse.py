"""The energy-collapse guard: is the predictor (or the EMA target) mapping everything
to the same point?

Per training step, a strided sample of the predicted and target token
representations gives the mean per-dimension standard deviation and the effective
rank (exp of the entropy of the normalised singular values, Roy & Vetterli 2007).
Per epoch the means are logged, and a warning is raised when either falls under its
threshold: collapsed outputs have std near 0 and effective rank near 1.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field

import torch
from torch import Tensor

log = logging.getLogger("mmalign.tijepa")

KEYS = ("pred_std", "pred_erank", "target_std", "target_erank")


def spread(x: Tensor, rows: int = 1024) -> tuple[float, float]:
    """(mean per-dimension std, effective rank) of the rows of ``x`` [..., D]."""
    flat = x.detach().float().reshape(-1, x.shape[-1])
    if len(flat) > rows:
        flat = flat[:: math.ceil(len(flat) / rows)]
    if len(flat) < 2:
        return float("nan"), float("nan")
    std = float(flat.std(dim=0).mean())
    singular = torch.linalg.svdvals(flat - flat.mean(dim=0))
    total = singular.sum()
    if total <= 0:
        return std, 1.0
    p = singular / total
    p = p[p > 0]
    return std, float(torch.exp(-(p * p.log()).sum()))


def representation_stats(
    predictions: Tensor, targets: Tensor, rows: int = 1024
) -> dict[str, float]:
    pred_std, pred_erank = spread(predictions, rows)
    target_std, target_erank = spread(targets, rows)
    return {
        "pred_std": pred_std,
        "pred_erank": pred_erank,
        "target_std": target_std,
        "target_erank": target_erank,
    }


@dataclass
class CollapseGuard:
    """Accumulates per-step statistics and checks each finished epoch."""

    min_std: float = 0.01
    min_erank: float = 2.0
    epochs: list[dict[str, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _epoch: int | None = None
    _sums: dict[str, float] = field(default_factory=dict)
    _count: int = 0

    def add(self, epoch: int, stats: dict[str, float]) -> None:
        if self._epoch is not None and epoch != self._epoch:
            self.close()
        self._epoch = epoch
        for key in KEYS:
            self._sums[key] = self._sums.get(key, 0.0) + stats[key]
        self._count += 1

    def close(self) -> None:
        """Finish the current epoch: log its means and warn on collapse."""
        if self._epoch is None or not self._count:
            return
        row = {k: v / self._count for k, v in self._sums.items()}
        row["epoch"] = self._epoch
        self.epochs.append(row)
        log.info(
            "ti-jepa epoch %d: pred std %.4f erank %.1f | target std %.4f erank %.1f",
            self._epoch, row["pred_std"], row["pred_erank"], row["target_std"],
            row["target_erank"],
        )
        message = self.check(row)
        if message:
            self.warnings.append(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        self._epoch, self._sums, self._count = None, {}, 0

    def check(self, row: dict[str, float]) -> str | None:
        """A warning text when the representations of ``row`` look collapsed."""
        bad = [
            f"{side} std {row[f'{side}_std']:.4g} < {self.min_std}"
            for side in ("pred", "target")
            if row[f"{side}_std"] < self.min_std
        ] + [
            f"{side} effective rank {row[f'{side}_erank']:.3g} < {self.min_erank}"
            for side in ("pred", "target")
            if row[f"{side}_erank"] < self.min_erank
        ]
        if not bad:
            return None
        where = f"epoch {int(row['epoch'])}" if "epoch" in row else "validation"
        return f"TI-JEPA representation collapse suspected at {where}: " + "; ".join(bad)
