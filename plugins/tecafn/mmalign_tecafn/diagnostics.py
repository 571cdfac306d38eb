"""What the mined negatives look like on held-out data, stored with each run.

TeCaFN's premise is that the unimodal contrastive space ranks *similar* samples
first, so hard negatives are near-duplicates that differ in fine detail. This
checks it on the test split, batch by batch as in training: how often the text
retrieves its own audio/video (top-1 within the batch) and how far the labels of
hard negatives are from the anchor's compared with any other sample of the batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mmalign_tecafn.losses import cosine_similarity_matrix, hard_negatives


def _to(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


@torch.no_grad()
def negatives_report(
    model: nn.Module, features: Any, batch_size: int, num: int, device: torch.device
) -> dict[str, float]:
    """Per non-core modality: ``top1_<m>``, ``hardneg_label_gap_<m>`` and
    ``random_label_gap_<m>`` (mean |y_i - y_j|; for class labels, the mismatch
    rate) over consecutive batches of ``batch_size`` held-out samples."""
    model.eval()
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}

    def add(key: str, values: Tensor) -> None:
        sums[key] = sums.get(key, 0.0) + float(values.sum())
        counts[key] = counts.get(key, 0) + values.numel()

    for start in range(0, len(features), batch_size):
        positions = torch.arange(start, min(start + batch_size, len(features)))
        if len(positions) < 2:
            continue
        batch = _to(features.batch(positions), device)
        aux = model(batch)["tecafn"]
        y = batch["label"].float()
        gap = (y[:, None] - y[None, :]).abs()
        if not batch["label"].is_floating_point():
            gap = (gap > 0).float()
        off = ~torch.eye(len(y), dtype=torch.bool, device=y.device)
        for m, emb in aux["contrast"].items():
            sim = cosine_similarity_matrix(emb["query"], emb["key"])
            own = torch.arange(len(y), device=sim.device)
            add(f"top1_{m}", (sim.argmax(1) == own).float())
            neg = hard_negatives(sim, num)
            add(f"hardneg_label_gap_{m}", gap.gather(1, neg))
            add(f"random_label_gap_{m}", gap[off])
    return {k: sums[k] / counts[k] for k in sorted(sums)}
