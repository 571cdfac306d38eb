"""Evaluation metrics as the papers compute them (public API).

* :func:`classification` — accuracy, weighted and macro F1 (MVSA, HFM).
* :func:`sentiment_regression` — MAE, Pearson r, Acc-7, Acc-2 in the "has0"
  (negative vs non-negative) and "non0" (zero labels dropped) conventions with
  weighted F1, as MMSA computes them for CMU-MOSI/MOSEI.
* :func:`retrieval_recall` — recall@k where a hit is a gallery item of the query's
  class, for category-aligned retrieval (XMediaNet).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor


def accuracy_score(y_true: Any, y_pred: Any) -> float:
    """scikit-learn's, imported on first use so that importing this module is cheap."""
    from sklearn.metrics import accuracy_score as score

    return float(score(y_true, y_pred))


def f1_score(y_true: Any, y_pred: Any, **kwargs: Any) -> float:
    """scikit-learn's F1, imported on first use."""
    from sklearn.metrics import f1_score as score

    return float(score(y_true, y_pred, **kwargs))


def _np(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().float().cpu().numpy() if x.is_floating_point() else x.cpu().numpy()
    return np.asarray(x)


def classification(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Accuracy, weighted F1 and macro F1 of integer class predictions."""
    t, p = _np(y_true).astype(int), _np(y_pred).astype(int)
    return {
        "acc": float(accuracy_score(t, p)),
        "f1_weighted": float(f1_score(t, p, average="weighted", zero_division=0)),
        "f1_macro": float(f1_score(t, p, average="macro", zero_division=0)),
    }


def sentiment_regression(y_true: Any, y_pred: Any) -> dict[str, float]:
    """MSA regression metrics on scores in [-3, 3]."""
    t, p = _np(y_true).astype(np.float64).ravel(), _np(y_pred).astype(np.float64).ravel()
    mae = float(np.mean(np.abs(p - t)))
    # a constant prediction (a collapsed model) has no correlation: NaN, as MMSA's np.corrcoef
    corr = float(np.corrcoef(p, t)[0, 1]) if np.std(p) > 0 and np.std(t) > 0 else float("nan")
    acc7 = float(np.mean(np.round(np.clip(p, -3, 3)) == np.round(np.clip(t, -3, 3))))
    has0_t, has0_p = t >= 0, p >= 0
    nz = t != 0
    non0_t, non0_p = t[nz] > 0, p[nz] > 0
    return {
        "mae": mae,
        "corr": corr,
        "acc7": acc7,
        "acc2_has0": float(accuracy_score(has0_t, has0_p)),
        "f1_has0": float(f1_score(has0_t, has0_p, average="weighted", zero_division=0)),
        "acc2_non0": float(accuracy_score(non0_t, non0_p)) if nz.any() else 0.0,
        "f1_non0": float(f1_score(non0_t, non0_p, average="weighted", zero_division=0))
        if nz.any()
        else 0.0,
    }


def binary_from_logits(y_true: Any, logits: Any) -> dict[str, float]:
    """Acc-2 and F1 for a binary task scored by 2-class logits (UR-FUNNY)."""
    pred = _np(logits).argmax(-1)
    t = _np(y_true).astype(int)
    return {
        "acc2": float(accuracy_score(t, pred)),
        "f1": float(f1_score(t, pred, average="weighted", zero_division=0)),
    }


def retrieval_recall(
    query: Tensor,
    gallery: Tensor,
    query_labels: Tensor,
    gallery_labels: Tensor,
    ks: Sequence[int] = (1, 5, 10),
    exclude_self: bool | Tensor = False,
    chunk: int = 1024,
) -> dict[str, float]:
    """Recall@k by cosine similarity; a hit is a top-k gallery item of the query's class.

    Ties are broken against the query: items of another class as similar as its most
    similar same-class item rank before it, so the result does not depend on the
    gallery's order and a collapsed embedding earns nothing. A query whose class the
    gallery lacks is never a hit. ``exclude_self=True`` means query ``i`` *is* gallery
    item ``i`` and is skipped; a tensor gives, per query, the gallery index to skip
    (``-1`` for none).
    """
    q = torch.nn.functional.normalize(torch.as_tensor(query).float(), dim=-1)
    g = torch.nn.functional.normalize(torch.as_tensor(gallery).float(), dim=-1)
    ql, gl = torch.as_tensor(query_labels), torch.as_tensor(gallery_labels)
    if isinstance(exclude_self, Tensor):
        skip = exclude_self.long()
    elif exclude_self:
        skip = torch.arange(len(q))
    else:
        skip = torch.full((len(q),), -1, dtype=torch.long)
    hits = {k: 0 for k in ks}
    for start in range(0, len(q), chunk):
        sim = q[start : start + chunk] @ g.T
        rows = torch.arange(sim.shape[0])
        s = skip[start : start + chunk]
        same = gl[None, :] == ql[start : start + chunk, None]
        other = ~same
        same[rows[s >= 0], s[s >= 0]] = False
        other[rows[s >= 0], s[s >= 0]] = False
        sim = sim.nan_to_num(nan=-torch.inf)  # a NaN similarity ranks last
        best = sim.masked_fill(~same, -torch.inf).amax(dim=1, keepdim=True)
        # the first hit's rank: 1 + the other-class items at least as similar
        rank = 1 + ((sim >= best) & other).sum(dim=1)
        for k in ks:
            hits[k] += int((same.any(dim=1) & (rank <= k)).sum())
    return {f"r@{k}": hits[k] / len(q) for k in ks}


def evaluate_outputs(
    label_type: str, outputs: dict[str, Any], labels: Tensor, names: Sequence[str]
) -> dict[str, float]:
    """Default task evaluation from a method's concatenated outputs."""
    if label_type == "classification":
        logits = outputs["logits"]
        if logits.shape[-1] == 2 and "acc2" in names:
            return binary_from_logits(labels, logits)
        return classification(labels, _np(logits).argmax(-1))
    if label_type == "regression":
        return sentiment_regression(labels, outputs["prediction"])
    raise ValueError(f"No default evaluation for label type '{label_type}'")


def retrieval_tables(
    embeddings: dict[str, Tensor], labels: dict[str, Tensor], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Recall@k for every ordered modality pair and for each modality against "any".

    Keys are ``"{query}->{target}/r@k"`` and ``"{query}->any/r@k"``; "any" is the
    gallery of all items of every modality with the query itself excluded.
    ``mean_r@k`` averages the ordered pairs (not the "any" rows).
    """
    names = list(embeddings)
    out: dict[str, float] = {}
    for q in names:
        for t in names:
            if q == t:
                continue
            res = retrieval_recall(embeddings[q], embeddings[t], labels[q], labels[t], ks)
            out.update({f"{q}->{t}/{k}": v for k, v in res.items()})
        gallery = torch.cat([torch.as_tensor(embeddings[m]).float() for m in names])
        gallery_labels = torch.cat([torch.as_tensor(labels[m]) for m in names])
        offset = sum(len(embeddings[m]) for m in names[: names.index(q)])
        skip = torch.arange(len(embeddings[q])) + offset
        res = retrieval_recall(embeddings[q], gallery, labels[q], gallery_labels, ks, skip)
        out.update({f"{q}->any/{k}": v for k, v in res.items()})
    for k in ks:
        pair = [v for key, v in out.items() if key.endswith(f"/r@{k}") and "->any" not in key]
        out[f"mean_r@{k}"] = float(np.mean(pair)) if pair else 0.0
    return out
