"""Running a trained model over a split and turning its outputs into metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from mmalign.features import FeatureSet, move, shuffled_batches
from mmalign.interfaces import Batch, Objective, Outputs, Task
from mmalign.runner.device import autocast


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        out = obj.detach().cpu()
        return out.float() if out.is_floating_point() else out
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    return obj


def concat(parts: list[Any]) -> Any:
    """Concatenate a list of (nested dicts of) tensors along the batch axis."""
    first = parts[0]
    if isinstance(first, Tensor):
        return torch.cat(parts) if first.dim() else torch.stack(parts)
    if isinstance(first, dict):
        return {k: concat([p[k] for p in parts]) for k in first if all(k in p for p in parts)}
    return parts


@torch.no_grad()
def predict(
    model: nn.Module,
    fs: FeatureSet,
    batch_size: int,
    device: torch.device,
    modalities: list[str] | None = None,
) -> Outputs:
    """Model outputs over a whole split, in order."""
    model.eval()
    parts = []
    chunks = shuffled_batches(len(fs), batch_size, torch.Generator(), shuffle=False)
    for gathered in fs.batches(chunks, modalities):
        batch = move(gathered, device)
        with autocast(device):
            parts.append(_to_cpu(model(batch)))
    return concat(parts)


@torch.no_grad()
def predict_retrieval(
    model: nn.Module, fs: FeatureSet, batch_size: int, device: torch.device
) -> Outputs:
    """Per-modality embeddings and labels for category-aligned retrieval."""
    assert fs.labels is not None
    model.eval()
    embeddings, labels = {}, {}
    for m, data in fs.modalities.items():
        chunks = []
        for start in range(0, len(data.rows), batch_size):
            rows = torch.arange(start, min(start + batch_size, len(data.rows)))
            batch: Batch = {m: fs.modality_batch(m, rows), "label": fs.labels[data.rows[rows]]}
            with autocast(device):
                out = model(move(batch, device))
            chunks.append(_to_cpu(out["embeddings"][m]))
        embeddings[m] = torch.cat(chunks)
        labels[m] = fs.labels[data.rows]
    return {"embeddings": embeddings, "labels": labels}


def evaluate_split(
    task: Task, model: nn.Module, fs: FeatureSet, batch_size: int, device: torch.device
) -> dict[str, float]:
    if task.label_type == "retrieval":
        outputs = predict_retrieval(model, fs, batch_size, device)
        return task.evaluate(outputs, outputs["labels"])
    outputs = predict(model, fs, batch_size, device)
    assert fs.labels is not None, f"split {fs.split} has no labels to evaluate"
    return task.evaluate(outputs, fs.labels)


@torch.no_grad()
def mean_loss(
    model: nn.Module, objective: Objective, batches: Callable[[], Any], device: torch.device
) -> float:
    """The objective's mean loss over a split (for pretraining and val-loss stopping)."""
    model.eval()
    objective.eval()
    total, count = 0.0, 0
    for batch in batches():
        batch = move(batch, device)
        with autocast(device):
            losses = objective(model(batch), batch)
        n = len(batch["index"]) if "index" in batch else 1
        total += float(losses["loss"]) * n
        count += n
    return total / max(count, 1)
