"""TeCaFN's losses and negative mining as plain functions (public API).

* :func:`hard_negatives` — Algorithm 1: the ``num`` most similar non-matching
  columns of a text→modality similarity matrix, the sample itself never chosen.
* :func:`random_negatives` — the "w/o hard negatives" ablation: every other sample.
* :func:`replacement_gate` — Table 2: replace each sample's modality by one of its
  negatives with probability ``p`` and return the pair pseudo-labels.
* :func:`text_centred_infonce` — equation 6, one direction (query → key).
* :func:`bidirectional_infonce` — equations 15–16, both directions.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


def cosine_similarity_matrix(q: Tensor, k: Tensor) -> Tensor:
    """``S[i, j] = cos(q_i, k_j)`` (equation 7)."""
    return F.normalize(q.float(), dim=-1) @ F.normalize(k.float(), dim=-1).T


def hard_negatives(sim: Tensor, num: int) -> Tensor:
    """Indices ``[B, min(num, B-1)]`` of each row's most similar off-diagonal columns.

    Row ``i`` of ``sim`` scores text ``i`` against the other modality of every sample;
    column ``i`` is the matching pair and is excluded, so the result holds only true
    negatives, most similar first (ties: lower index first, so the result is exact).
    """
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"sim must be a square [B, B] matrix, got {tuple(sim.shape)}")
    if num < 0:
        raise ValueError(f"num must be >= 0, got {num}")
    n = sim.shape[0]
    scores = sim.detach().float().clone()
    scores.fill_diagonal_(float("-inf"))
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    return order[:, : min(num, n - 1)]


def random_negatives(batch_size: int, device: torch.device | None = None) -> Tensor:
    """Indices ``[B, B-1]``: every other sample of the batch (uniform negatives)."""
    idx = torch.arange(batch_size, device=device).expand(batch_size, batch_size)
    off = ~torch.eye(batch_size, dtype=torch.bool, device=device)
    return idx[off].view(batch_size, batch_size - 1)


class Gate(NamedTuple):
    """What :func:`replacement_gate` returns."""

    #: the gated inputs: ``x[index]``
    x: Tensor
    #: ``[B]`` the batch row each sample's modality now comes from
    index: Tensor
    #: ``[B]`` pseudo-label, 1 = own modality kept ("paired"), 0 = replaced
    paired: Tensor


def replacement_gate(
    x: Tensor, negatives: Tensor, p: float, generator: torch.Generator | None = None
) -> Gate:
    """Replace row ``i`` of ``x`` by ``x[j]``, ``j`` drawn uniformly from
    ``negatives[i]``, with probability ``p``; otherwise keep it.

    Drawn on the generator's device (the CPU by default) so that a seeded generator
    gives the same gate on any accelerator. A row without negatives is always kept.
    Two independent gates (audio, video) give the four cases of Table 2.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    n, k = negatives.shape
    if n != x.shape[0]:
        raise ValueError(f"negatives has {n} rows for a batch of {x.shape[0]}")
    where = generator.device if generator is not None else torch.device("cpu")
    draw = torch.rand(n, generator=generator, device=where)
    pick = torch.randint(max(k, 1), (n,), generator=generator, device=where)
    own = torch.arange(n, device=where)
    if k == 0:
        index = own
    else:
        replace = draw < p
        chosen = negatives.to(where)[own, pick]
        index = torch.where(replace, chosen, own)
    index = index.to(x.device)
    paired = (index == torch.arange(n, device=x.device)).long()
    return Gate(x=x[index], index=index, paired=paired)


def text_centred_infonce(q: Tensor, k: Tensor, tau: float) -> Tensor:
    """InfoNCE of queries against keys (equation 6): for query ``i`` the key ``i`` is
    the positive and every other key of the batch a negative; cosine logits over
    ``tau``. Only the query → key direction, as the paper's text-centred loss."""
    logits = cosine_similarity_matrix(q, k) / tau
    target = torch.arange(len(q), device=q.device)
    return F.cross_entropy(logits, target)


def bidirectional_infonce(z: Tensor, u: Tensor, tau: float) -> Tensor:
    """``L_{tv,ta} + L_{ta,tv}`` (equations 15–16): InfoNCE in both directions."""
    return text_centred_infonce(z, u, tau) + text_centred_infonce(u, z, tau)
