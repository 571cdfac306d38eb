"""SPP-SCL's contrastive losses and Algorithm 1's gate, as plain functions.

Two variants of each loss (the README has the full comparison):

* ``variant="paper"`` — equations 4–6 as printed: the anchor's own similarity is
  left out of the intra-modal denominator, the paired sample is *not* a positive
  of the inter-modal loss (``m != n``), and both sums over positives are divided
  by the batch size ``B`` (not by the number of positives).
* ``variant="code"`` — what the authors' ``loss.py``/``train.py`` compute: the
  intra-modal diagonal logit is set to 0 and stays in the denominator (a constant
  ``exp(0) = 1`` term), each anchor's sum over positives is divided by its number
  of positives (anchors with none contribute 0 but still count in the batch
  mean), and the inter-modal loss counts the paired sample as a positive; its
  anchors are the *text* features because ``train.py`` passes them first.

Features are ℓ2-normalised inside the losses; the gate works on the raw features,
as the authors' code does.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Variant = Literal["paper", "code"]
VARIANTS: tuple[Variant, ...] = ("paper", "code")


def _check(labels: Tensor, *features: Tensor, variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    for z in features:
        if z.dim() != 2 or len(z) != len(labels):
            raise ValueError(
                f"features must be [B, D] with B = len(labels) = {len(labels)}, "
                f"got {list(z.shape)}"
            )


def _mean_over_positives(log_prob: Tensor, positives: Tensor, variant: Variant) -> Tensor:
    """Per-anchor average log-probability of the positives, then minus the batch mean."""
    picked = torch.where(positives, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    if variant == "paper":
        per_anchor = picked / len(log_prob)
    else:
        per_anchor = picked / positives.sum(dim=1).clamp(min=1)
    return -per_anchor.mean()


def intra_supcon(
    z: Tensor, labels: Tensor, tau: float = 0.07, variant: Variant = "paper"
) -> Tensor:
    """Intra-modal supervised contrastive loss ``L_cl_i`` / ``L_cl_t`` (equations 4–5).

    Positives of anchor ``i`` are the other samples with its label. ``"paper"``
    removes ``k = i`` from the denominator; ``"code"`` replaces its logit by 0.
    """
    _check(labels, z, variant=variant)
    z = F.normalize(z.float(), dim=-1)
    logits = z @ z.T / tau
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    positives = (labels[:, None] == labels[None, :]) & ~eye
    if variant == "paper":
        denominator = torch.logsumexp(logits.masked_fill(eye, float("-inf")), dim=1, keepdim=True)
    else:
        logits = logits.masked_fill(eye, 0.0)
        denominator = torch.logsumexp(logits, dim=1, keepdim=True)
    return _mean_over_positives(logits - denominator, positives, variant)


def inter_supcon(
    z_img: Tensor, z_txt: Tensor, labels: Tensor, tau: float = 0.07, variant: Variant = "paper"
) -> Tensor:
    """Inter-modal supervised contrastive loss ``L_cl_m`` (equation 6).

    ``"paper"``: image anchors, text candidates, positives ``y_m = y_n, m != n``.
    ``"code"``: text anchors, image candidates, positives ``y_m = y_n`` (the pair
    included). Both put every candidate, the pair included, in the denominator.
    """
    _check(labels, z_img, z_txt, variant=variant)
    img = F.normalize(z_img.float(), dim=-1)
    txt = F.normalize(z_txt.float(), dim=-1)
    anchors, candidates = (img, txt) if variant == "paper" else (txt, img)
    logits = anchors @ candidates.T / tau
    positives = labels[:, None] == labels[None, :]
    if variant == "paper":
        positives = positives & ~torch.eye(len(labels), dtype=torch.bool, device=logits.device)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return _mean_over_positives(log_prob, positives, variant)


Gate = Literal["code", "paper"]


def gate_counts(
    z_img: Tensor, z_txt: Tensor, labels: Tensor, gate: Gate = "code"
) -> tuple[int, int]:
    """Algorithm 1's ``c`` and ``c_mask``.

    ``"code"`` (the authors' ``train.py``): ``S = sigmoid(T Iᵀ)`` on the raw
    (unnormalised) features, ``c_mask`` = same-label pairs with the diagonal included.
    ``"paper"``: ``S`` = the cosine similarity of the ℓ2-normalised ``I_p'``, ``T_p'``
    (the paper's "inter-modal similarity matrix"), ``c_mask = sum(InterMask)`` with
    InterMask = 1[y_m = y_n, m ≠ n]. Both: ``c`` = entries of ``S`` strictly below the
    mean of its diagonal.
    """
    _check(labels, z_img, z_txt, variant="code")
    with torch.no_grad():
        if gate == "paper":
            sim = F.normalize(z_txt.float(), dim=-1) @ F.normalize(z_img.float(), dim=-1).T
        else:
            sim = torch.sigmoid(z_txt.float() @ z_img.float().T)
        below = int((sim < sim.diagonal().mean()).sum())
        same = int((labels[:, None] == labels[None, :]).sum())
    return below, same - len(labels) if gate == "paper" else same


def saturated_share(z_img: Tensor, z_txt: Tensor) -> float:
    """Share of the code gate's ``sigmoid(T Iᵀ)`` entries that are exactly 0 or 1 in
    float32: where they dominate, ``c`` counts rounding ties, not similarity."""
    with torch.no_grad():
        sim = torch.sigmoid(z_txt.float() @ z_img.float().T)
        return float(((sim == 1.0) | (sim == 0.0)).float().mean())


def inter_gate(
    z_img: Tensor, z_txt: Tensor, labels: Tensor, alpha: float = 2 / 3, gate: Gate = "code"
) -> bool:
    """True when Algorithm 1 takes the second (inter-modal) step.

    ``"code"``: ``c < int(α · c_mask)`` (floored as ``train.py``); ``"paper"``:
    ``c < α · c_mask``. Few entries below the diagonal mean mean the paired image and
    text are not yet more similar than the rest, so the cross-modal pull is needed.
    """
    below, same = gate_counts(z_img, z_txt, labels, gate)
    return below < (same * alpha if gate == "paper" else int(same * alpha))
