"""PNG plots for runs and suites (matplotlib, imported lazily, Agg backend).

Kept out of every import path that a run or the CLI takes until a plot is drawn, so
``mmalign --help`` and headless SLURM jobs never pay for or depend on a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    tmp.replace(path)
    return path


def means_with_ci(labels: Sequence[str], means: Sequence[float],
                  cis: Sequence[tuple[float, float] | None],
                  points: Sequence[Sequence[float]], metric: str, title: str,
                  path: Path) -> Path:
    """One bar per row: the mean, its 95% CI as an error bar, and each seed as a dot."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(labels) + 2), 3.6))
    xs = range(len(labels))
    low = [m - ci[0] if ci else 0.0 for m, ci in zip(means, cis, strict=True)]
    high = [ci[1] - m if ci else 0.0 for m, ci in zip(means, cis, strict=True)]
    ax.bar(xs, means, yerr=[low, high], capsize=4, color="#8fb3d9", edgecolor="#2f5d8a")
    for x, values in zip(xs, points, strict=True):
        ax.scatter([x] * len(values), values, s=12, color="#1b1b1b", zorder=3)
    ax.set_xticks(list(xs), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    finite = [v for vs in points for v in vs] + [m for m in means]
    if finite:
        span = max(finite) - min(finite) or abs(max(finite)) * 0.1 or 0.1
        ax.set_ylim(min(finite) - span, max(finite) + span)
    return _save(fig, path)


def learning_curves(history: list[dict[str, float]], monitor: str, best_epoch: int,
                    title: str, path: Path) -> Path:
    """Train losses and validation metrics per epoch; the selected epoch marked."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    epochs = [row.get("epoch", i) for i, row in enumerate(history)]
    for key in sorted({k for row in history for k in row if k.startswith("train_")}):
        left.plot(epochs, [row.get(key, float("nan")) for row in history], label=key)
    left.set_xlabel("epoch")
    left.set_title("training", fontsize=9)
    for key in sorted({k for row in history for k in row if k.startswith("val_")}):
        right.plot(epochs, [row.get(key, float("nan")) for row in history], label=key,
                   linewidth=2.2 if key == f"val_{monitor}" or key == monitor else 1.0)
    for ax in (left, right):
        if best_epoch >= 0:
            ax.axvline(best_epoch, color="#c0392b", linestyle="--", linewidth=1,
                       label=f"selected epoch {best_epoch}")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    right.set_xlabel("epoch")
    right.set_title(f"validation (selection by {monitor})", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def matrix(values: Sequence[Sequence[float]], rows: Sequence[str], cols: Sequence[str],
           title: str, xlabel: str, ylabel: str, path: Path, fmt: str = "{:.0f}") -> Path:
    """A heat map with the value in each cell (confusion matrices, recall tables)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(cols) + 1.5, 1.0 + 0.6 * len(rows)))
    image = ax.imshow(values, cmap="Blues")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    top = max((v for row in values for v in row), default=0)
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                    color="white" if top and v > top / 2 else "black")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)
