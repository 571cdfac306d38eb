"""The paper's losses as plain functions (equations 1 and 2), plus the cross-process gather.

``info_nce(x, y)`` scores row ``i`` of ``x`` against every row of ``y`` with ``y_i`` as
the positive (equation 1). ``nmodal_info_nce`` averages it over all ordered pairs of
modalities (equation 2), so for two modalities it is the symmetric CLIP loss at logit
scale ``1/tau``. Both take embeddings as given: the model L2-normalises them, so the
dot product is the cosine similarity that ``tau = 0.05`` was chosen for.

Category-aligned data can put several items of one category in a batch; a boolean
``positives`` mask then marks every acceptable partner and the loss for a row is
``-log(sum over positives of softmax)`` (the MIL-NCE form). With exactly one positive
per row it is equation 1 term for term.
"""

from __future__ import annotations

from itertools import combinations, permutations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor


def info_nce(x: Tensor, y: Tensor, tau: float = 0.05, positives: Tensor | None = None) -> Tensor:
    """Equation 1: mean over rows of ``x`` of ``-log softmax_j(x_i . y_j / tau)[positive]``.

    ``positives`` is an optional ``[len(x), len(y)]`` boolean mask (default: ``y_i`` is
    the only positive of ``x_i``, which needs ``len(x) == len(y)``).
    """
    logits = x.float() @ y.float().T / tau
    if positives is None:
        return F.cross_entropy(logits, torch.arange(len(x), device=x.device))
    if not bool(positives.any(dim=1).all()):
        raise ValueError("every row of x needs at least one positive in y")
    pos = logits.masked_fill(~positives, float("-inf")).logsumexp(dim=1)
    return (logits.logsumexp(dim=1) - pos).mean()


def ordered_pairs(modalities: list[str]) -> list[tuple[str, str]]:
    """``P(M)`` of equation 2: every ordered pair of distinct modalities."""
    return list(permutations(modalities, 2))


def unordered_pairs(modalities: list[str]) -> list[tuple[str, str]]:
    """The pairs a round-robin schedule cycles through (each trained in both directions)."""
    return list(combinations(modalities, 2))


def nmodal_info_nce(
    embeddings: dict[str, Tensor],
    tau: float = 0.05,
    positives: Tensor | None = None,
    gallery: dict[str, Tensor] | None = None,
) -> Tensor:
    """Equation 2: the mean of :func:`info_nce` over all ordered modality pairs.

    ``gallery`` (default: ``embeddings``) supplies the columns ``y``; it holds the
    embeddings gathered from every process when training is distributed, and then
    ``positives`` says which gallery rows are the partners of each local row.
    """
    pairs = ordered_pairs(list(embeddings))
    if not pairs:
        raise ValueError("equation 2 needs at least two modalities")
    cols = gallery if gallery is not None else embeddings
    losses = [info_nce(embeddings[a], cols[b], tau, positives) for a, b in pairs]
    return torch.stack(losses).mean()


class _GatherWithGrad(torch.autograd.Function):
    """``all_gather`` whose backward sums every process's gradient for the local slice.

    open_clip's ``gather_with_grad`` + ``local_loss``: each process scores only its
    own rows against the whole global batch, and the summed gradient makes the
    DDP-averaged update equal to the one-process update on the whole batch.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.rank, ctx.n = dist.get_rank(), len(x)
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every process (equal sizes), keeping gradients exact."""
    return _GatherWithGrad.apply(x) if distributed() else x


def gather_labels(x: Tensor) -> Tensor:
    """Concatenate a non-differentiable tensor (labels, tuple ids) from every process."""
    if not distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)
