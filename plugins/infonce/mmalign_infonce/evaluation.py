"""Retrieval evaluation as the paper reports it (Tables I-VI).

Recall@k is the share of queries with at least one item of their own category among
the k nearest (cosine) items of the target gallery: one target modality (Tables I,
III, V) or "any", every item of every modality but the query itself (Tables II, IV,
VI); ties are broken against the query (:func:`mmalign.metrics.retrieval_recall`).
``any-tuple`` is the other reading of "any": a gallery of one item per
category per modality (an aligned-tuple gallery, the query excluded), averaged over
seeded draws; with it a same-modality neighbour is always of another category,
which is what the paper's "any" numbers imply (see the README). The runner calls
models the same way: one modality per batch.

Where a split's samples name their cross-modal instance (synth-events' events), the
report adds instance-level recall (``{a}->{b}/event_r@k``, ``mean_event_r@k``): a hit
is the query's own event's view among the k nearest of the target modality. The
category-level tables above are unchanged by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmalign.features import move
from mmalign.metrics import retrieval_recall, retrieval_tables

KS = (1, 5, 10)


def recall_tables(
    embeddings: dict[str, Tensor], labels: dict[str, Tensor], ks: Sequence[int] = KS
) -> dict[str, float]:
    """Every ordered pair and every modality vs "any", with both tables' Mean rows.

    Keys as :func:`mmalign.metrics.retrieval_tables` (``"text->image/r@10"``,
    ``"text->any/r@10"``, ``"mean_r@10"`` over ordered pairs) plus ``"mean_any_r@k"``,
    the Mean row of the "any" tables.
    """
    out = retrieval_tables(embeddings, labels, ks)
    for k in ks:
        rows = [out[f"{m}->any/r@{k}"] for m in embeddings]
        out[f"mean_any_r@{k}"] = float(np.mean(rows))
    out.update(tuple_gallery_recall(embeddings, labels, ks))
    return out


def one_per_category(labels: Tensor, generator: torch.Generator) -> Tensor:
    """Indices of one randomly drawn item of each category present in ``labels``."""
    order = torch.randperm(len(labels), generator=generator)
    shuffled = labels[order]
    first = {}
    for pos, c in enumerate(shuffled.tolist()):
        first.setdefault(c, int(order[pos]))
    return torch.tensor([first[c] for c in sorted(first)], dtype=torch.long)


def tuple_gallery_recall(
    embeddings: dict[str, Tensor],
    labels: dict[str, Tensor],
    ks: Sequence[int] = KS,
    draws: int = 10,
    seed: int = 0,
) -> dict[str, float]:
    """Recall@k against "any" in a gallery of one item per category per modality.

    Each draw picks, per modality, one item of every category; every picked item
    queries the others (itself excluded), as in :func:`recall_tables`' "any".
    Keys ``"{m}->any-tuple/r@k"`` and ``"mean_any-tuple_r@k"``, averaged over draws.
    """
    sums: dict[str, float] = {}
    for d in range(draws):
        g = torch.Generator().manual_seed(seed + d)
        picks = {m: one_per_category(torch.as_tensor(labels[m]), g) for m in embeddings}
        emb = {m: torch.as_tensor(embeddings[m])[i] for m, i in picks.items()}
        lab = {m: torch.as_tensor(labels[m])[i] for m, i in picks.items()}
        tables = retrieval_tables(emb, lab, ks)
        for m in embeddings:
            for k in ks:
                key = f"{m}->any-tuple/r@{k}"
                sums[key] = sums.get(key, 0.0) + tables[f"{m}->any/r@{k}"] / draws
    for k in ks:
        sums[f"mean_any-tuple_r@{k}"] = float(
            np.mean([sums[f"{m}->any-tuple/r@{k}"] for m in embeddings])
        )
    return sums


def pair_mean(metrics: dict[str, float], modalities: Sequence[str], k: int = 10) -> float:
    """Mean recall@k over the ordered pairs of ``modalities`` only (to compare runs on
    the pairs they share, as the paper compares "matching rows")."""
    keys = [f"{a}->{b}/r@{k}" for a in modalities for b in modalities if a != b]
    return float(np.mean([metrics[key] for key in keys]))


@torch.no_grad()
def embed_split(
    model: nn.Module, fs: Any, device: torch.device, batch_size: int = 256
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Embeddings and labels of every modality of a split.

    Category-aligned data (one modality per sample) is embedded one modality per
    batch; paired data (every sample has every modality, as when the loss is a term
    of another method's objective) in whole batches, since a fusion may need every
    modality at once.
    """
    model.eval()
    if fs.paired:
        parts: dict[str, list[Tensor]] = {m: [] for m in fs.modalities}
        for start in range(0, len(fs), batch_size):
            positions = torch.arange(start, min(start + batch_size, len(fs)))
            batch = move(fs.batch(positions), device)
            for m, e in model(batch)["embeddings"].items():
                parts[m].append(e.float().cpu())
        embeddings = {m: torch.cat(p) for m, p in parts.items() if p}
        return embeddings, {m: fs.labels for m in embeddings}
    embeddings, labels = {}, {}
    for m, data in fs.modalities.items():
        chunks = []
        for start in range(0, len(data.rows), batch_size):
            rows = torch.arange(start, min(start + batch_size, len(data.rows)))
            pooled = fs.modality_batch(m, rows)["pooled"].to(device)
            chunks.append(model({m: {"pooled": pooled}})["embeddings"][m].float().cpu())
        embeddings[m] = torch.cat(chunks)
        labels[m] = fs.labels[data.rows]
    return embeddings, labels


def split_events(fs: Any, modalities: Sequence[str]) -> dict[str, list[str]] | None:
    """Per modality, the instance id of each of its rows (in :func:`embed_split`'s
    order), or None unless every row of every modality has one."""
    if fs.instances is None:
        return None
    events = {m: [fs.instances[int(p)] for p in fs.modalities[m].rows] for m in modalities}
    return None if any(None in ids for ids in events.values()) else events


def event_recall(
    embeddings: dict[str, Tensor], events: dict[str, list[str]], ks: Sequence[int] = KS
) -> dict[str, float]:
    """Instance-level recall@k for every ordered pair: the share of queries whose own
    event's view of the target modality is among its k nearest items there."""
    number = {n: i for i, n in enumerate(sorted({n for ids in events.values() for n in ids}))}
    codes = {m: torch.tensor([number[n] for n in ids]) for m, ids in events.items()}
    out: dict[str, float] = {}
    for a in embeddings:
        for b in embeddings:
            if a != b:
                res = retrieval_recall(embeddings[a], embeddings[b], codes[a], codes[b], ks)
                out.update({f"{a}->{b}/event_{k}": v for k, v in res.items()})
    for k in ks:
        pairs = [out[f"{a}->{b}/event_r@{k}"] for a in embeddings for b in embeddings if a != b]
        out[f"mean_event_r@{k}"] = float(np.mean(pairs))
    return out


def evaluate_retrieval(
    model: nn.Module, fs: Any, device: torch.device, ks: Sequence[int] = KS
) -> dict[str, float]:
    """The paper's recall tables for one split of a trained model, plus instance-level
    recall where the split names its events."""
    embeddings, labels = embed_split(model, fs, device)
    out = recall_tables(embeddings, labels, ks=ks)
    events = split_events(fs, list(embeddings))
    if events is not None:
        out.update(event_recall(embeddings, events, ks))
    return out


def format_tables(
    results: dict[str, dict[str, float]], modalities: Sequence[str], ks: Sequence[int] = KS
) -> str:
    """Markdown tables shaped like the paper's: one column block per split."""
    splits = list(results)
    head = "| Recall at | " + " | ".join(f"{s} @{k}" for s in splits for k in ks) + " |"
    rule = "|---|" + "---:|" * (len(splits) * len(ks))

    def row(label: str, key: str) -> str:
        cells = " | ".join(f"{results[s][key.format(k=k)]:.2f}" for s in splits for k in ks)
        return f"| {label} | {cells} |"

    pairs = [
        row(f"{a} → {b}", f"{a}->{b}/r@{{k}}") for a in modalities for b in modalities if a != b
    ]
    anys = [row(f"{m} → any", f"{m}->any/r@{{k}}") for m in modalities]
    tuples = [row(f"{m} → any", f"{m}->any-tuple/r@{{k}}") for m in modalities]
    event_block = []
    if all("mean_event_r@1" in results[s] for s in splits):
        event_block = [
            "",
            "Instance-level recall: the query's own event among the nearest (not in the paper)",
            "",
            head,
            rule,
            *(row(f"{a} → {b}", f"{a}->{b}/event_r@{{k}}")
              for a in modalities for b in modalities if a != b),
            row("**Mean**", "mean_event_r@{k}"),
        ]
    return "\n".join(
        [
            "Recall at 1, 5 and 10 for modality pairs (Tables I, III, V)",
            "",
            head,
            rule,
            *pairs,
            row("**Mean**", "mean_r@{k}"),
            "",
            "Recall at 1, 5 and 10 against any modality (Tables II, IV, VI)",
            "",
            head,
            rule,
            *anys,
            row("**Mean**", "mean_any_r@{k}"),
            "",
            "Recall against any modality, one item per category and modality (any-tuple)",
            "",
            head,
            rule,
            *tuples,
            row("**Mean**", "mean_any-tuple_r@{k}"),
            *event_block,
        ]
    )
