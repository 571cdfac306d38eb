"""Diagnostics of a trained SPP-SCL model on the test split.

* IID / TTD / ITD: mean Euclidean distance between same-label embeddings within
  the image branch, within the text branch and across them (the paper's Figure 1
  and Figure 4 quantity), on the ℓ2-normalised ``I_p``/``T_p`` (the space the
  contrastive losses shape) and on the raw ones.
* How the test accuracy moves with the evaluation batch (size and order): with
  ``fusion.config.mode=batch`` a prediction depends on its batch-mates, with ``sample`` not.
* A t-SNE plot of the fused features and a histogram of the three distances.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

DISTANCES = ("IID", "TTD", "ITD")


def _move(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _move(v, device) for k, v in obj.items()}
    return obj


@torch.no_grad()
def collect(
    model: nn.Module, fs: Any, batch_size: int, device: torch.device, order: Tensor | None = None
) -> dict[str, Tensor]:
    """Logits, embeddings and fused features of a split, batched in ``order``
    (default: the split's order, as the runner evaluates); returned in split order."""
    model.eval()
    order = torch.arange(len(fs)) if order is None else order
    parts: dict[str, list[Tensor]] = {"logits": [], "image": [], "text": [], "fused": []}
    for start in range(0, len(fs), batch_size):
        out = model(_move(fs.batch(order[start : start + batch_size]), device))
        parts["logits"].append(out["logits"].float().cpu())
        parts["image"].append(out["embeddings"]["image"].float().cpu())
        parts["text"].append(out["embeddings"]["text"].float().cpu())
        parts["fused"].append(out["fused"].float().cpu())
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order))
    return {k: torch.cat(v)[inverse] for k, v in parts.items()}


def pair_distances(
    img: Tensor, txt: Tensor, labels: Tensor, same: bool = True
) -> dict[str, Tensor]:
    """Every same-label (or, ``same=False``, different-label) distance: image-image and
    text-text pairs ``i != j``, image-text pairs ``(i, j)`` including ``i = j``."""
    match = labels[:, None] == labels[None, :]
    if not same:
        match = ~match
    off_diagonal = match & ~torch.eye(len(labels), dtype=torch.bool)
    return {
        "IID": torch.cdist(img, img)[off_diagonal],
        "TTD": torch.cdist(txt, txt)[off_diagonal],
        "ITD": torch.cdist(img, txt)[match],
    }


def _means(d: dict[str, Tensor]) -> dict[str, float]:
    return {k: float(v.mean()) if len(v) else float("nan") for k, v in d.items()}


def mean_distances(img: Tensor, txt: Tensor, labels: Tensor) -> dict[str, float]:
    """IID, TTD, ITD means and their spread ``(max - min) / mean`` (0 = balanced)."""
    means = _means(pair_distances(img, txt, labels))
    values = np.array(list(means.values()))
    means["spread"] = float((values.max() - values.min()) / values.mean())
    return means


def distance_report(
    img: Tensor, txt: Tensor, labels: Tensor, label_names: Sequence[str]
) -> dict[str, Any]:
    """IID/TTD/ITD on normalised and raw embeddings, overall and per class, and the
    same three means over different-label pairs for scale (normalised)."""
    unit_img = torch.nn.functional.normalize(img, dim=-1)
    unit_txt = torch.nn.functional.normalize(txt, dim=-1)
    per_class = {}
    for c in labels.unique().tolist():
        keep = labels == c
        name = label_names[c] if c < len(label_names) else str(c)
        per_class[name] = mean_distances(unit_img[keep], unit_txt[keep], labels[keep])
    return {
        "n": len(labels),
        "normalized": mean_distances(unit_img, unit_txt, labels),
        "raw": mean_distances(img, txt, labels),
        "per_class_normalized": per_class,
        "other_label_normalized": _means(pair_distances(unit_img, unit_txt, labels, same=False)),
    }


def batch_dependence(
    model: nn.Module,
    fs: Any,
    labels: Tensor,
    batch_size: int,
    device: torch.device,
    seed: int = 0,
) -> dict[str, float]:
    """Test accuracy when the same model is evaluated with other batch sizes or a
    shuffled order, and the share of predictions that change against the runner's
    evaluation (``batch_size``, split order)."""
    n = len(fs)
    batch_size = min(batch_size, n)
    runs = {f"bs={s}": collect(model, fs, s, device) for s in sorted({1, 16, batch_size, n})}
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    runs[f"bs={batch_size},shuffled"] = collect(model, fs, batch_size, device, order)
    reference = runs[f"bs={batch_size}"]["logits"].argmax(-1)
    out: dict[str, float] = {}
    for name, res in runs.items():
        pred = res["logits"].argmax(-1)
        out[f"acc@{name}"] = float((pred == labels).float().mean())
        out[f"changed@{name}"] = float((pred != reference).float().mean())
    return out


def tsne_plot(
    fused: Tensor, labels: Tensor, label_names: Sequence[str], path: Path, title: str
) -> bool:
    """2-D t-SNE of the fused features coloured by label; False when too few points."""
    from sklearn.manifold import TSNE

    n = len(fused)
    if n < 5:
        return False
    perplexity = float(min(30.0, (n - 1) / 3))
    points = TSNE(2, perplexity=perplexity, init="pca", random_state=0).fit_transform(
        fused.numpy()
    )
    from matplotlib.figure import Figure  # only when a run plots: `mmalign list` stays light

    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    for c in labels.unique().tolist():
        keep = (labels == c).numpy()
        name = label_names[c] if c < len(label_names) else str(c)
        ax.scatter(points[keep, 0], points[keep, 1], s=6, label=name)
    ax.legend(markerscale=2)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def distance_histogram(img: Tensor, txt: Tensor, labels: Tensor, path: Path, title: str) -> None:
    """Histograms of the same-label IID/TTD/ITD distances (normalised embeddings)."""
    unit = torch.nn.functional.normalize
    d = pair_distances(unit(img, dim=-1), unit(txt, dim=-1), labels)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    bins = np.linspace(0, 2, 41)
    for name in DISTANCES:
        ax.hist(d[name].numpy(), bins=bins, alpha=0.45, density=True,
                label=f"{name} (mean {float(d[name].mean()):.3f})")
    ax.set_xlabel("Euclidean distance between same-label embeddings (ℓ2-normalised)")
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
