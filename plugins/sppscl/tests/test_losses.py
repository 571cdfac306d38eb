"""The losses and the gate against values worked out by hand on a 4-sample batch.

Batch (τ = 0.5, so a logit is 2·cosine), labels ``[0, 0, 0, 1]``:

* images ``(2,0), (0,3), (1,1), (-1,0)`` → unit vectors ``e0, e1, (e0+e1)/√2, -e0``;
* texts ``(1,0), (1,1), (0,1), (0,-5)`` → ``e0, (e0+e1)/√2, e1, -e1``.

Sample 3 has no same-label partner, which separates the two variants' handling of
anchors without positives. The expected values below are written out per anchor
with scalar arithmetic, independently of the vectorised implementation.
"""

from __future__ import annotations

from math import exp, log, sqrt

import pytest
import torch
from mmalign_sppscl.losses import (
    gate_counts,
    inter_gate,
    inter_supcon,
    intra_supcon,
    saturated_share,
)

R2 = sqrt(2)
TAU = 0.5
LABELS = torch.tensor([0, 0, 0, 1])
IMG = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0], [-1.0, 0.0]])
TXT = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, -5.0]])


def test_intra_paper_by_hand():
    # image logits: l01 = 0, l02 = √2, l03 = -2, l12 = √2, l13 = 0, l23 = -√2
    d0 = exp(0) + exp(R2) + exp(-2)  # k ≠ 0
    d1 = exp(0) + exp(R2) + exp(0)
    d2 = exp(R2) + exp(R2) + exp(-R2)
    a0 = ((0 - log(d0)) + (R2 - log(d0))) / 4  # positives 1, 2; divided by B = 4
    a1 = ((0 - log(d1)) + (R2 - log(d1))) / 4
    a2 = ((R2 - log(d2)) + (R2 - log(d2))) / 4
    expected = -(a0 + a1 + a2 + 0.0) / 4
    assert expected == pytest.approx(0.347064, abs=1e-5)
    got = intra_supcon(IMG, LABELS, tau=TAU, variant="paper")
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_intra_code_by_hand():
    # the diagonal logit becomes 0: a constant exp(0) = 1 joins every denominator
    d0 = 1 + exp(0) + exp(R2) + exp(-2)
    d1 = 1 + exp(0) + exp(R2) + exp(0)
    d2 = 1 + exp(R2) + exp(R2) + exp(-R2)
    a0 = ((0 - log(d0)) + (R2 - log(d0))) / 2  # divided by the 2 positives
    a1 = ((0 - log(d1)) + (R2 - log(d1))) / 2
    a2 = ((R2 - log(d2)) + (R2 - log(d2))) / 2
    expected = -(a0 + a1 + a2 + 0.0) / 4  # anchor 3 (no positives) counts as 0
    assert expected == pytest.approx(0.803498, abs=1e-5)
    got = intra_supcon(IMG, LABELS, tau=TAU, variant="code")
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_inter_paper_by_hand():
    # image anchors; logits 2·cos(img_m, txt_n); positives same label, m ≠ n
    rows = [[2, R2, 0, 0], [0, R2, 2, -2], [R2, 2, R2, -R2]]
    positives = [[1, 2], [0, 2], [0, 1]]
    total = 0.0
    for logits, pos in zip(rows, positives, strict=True):
        log_d = log(sum(exp(v) for v in logits))  # every text, the pair included
        total += sum(logits[n] - log_d for n in pos) / 4
    expected = -total / 4  # anchor 3: no other label-1 text
    assert expected == pytest.approx(0.561131, abs=1e-5)
    got = inter_supcon(IMG, TXT, LABELS, tau=TAU, variant="paper")
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_inter_code_by_hand():
    # text anchors (train.py passes the text first); positives include the pair
    rows = [[2, 0, R2, -2], [R2, R2, 2, -R2], [0, 2, R2, 0], [0, -2, -R2, 0]]
    positives = [[0, 1, 2], [0, 1, 2], [0, 1, 2], [3]]
    total = 0.0
    for logits, pos in zip(rows, positives, strict=True):
        log_d = log(sum(exp(v) for v in logits))
        total += sum(logits[m] - log_d for m in pos) / len(pos)
    expected = -total / 4
    assert expected == pytest.approx(1.221024, abs=1e-5)
    got = inter_supcon(IMG, TXT, LABELS, tau=TAU, variant="code")
    assert float(got) == pytest.approx(expected, rel=1e-5)


def anchored_supcon(anchors, candidates, labels, tau):
    """Scalar reference: SupCon over positives incl. the pair, per-anchor mean."""
    a = torch.nn.functional.normalize(anchors, dim=-1).tolist()
    c = torch.nn.functional.normalize(candidates, dim=-1).tolist()
    total = 0.0
    for m, row in enumerate(a):
        logits = [sum(x * y for x, y in zip(row, other, strict=True)) / tau for other in c]
        log_d = log(sum(exp(v) for v in logits))
        pos = [n for n in range(len(c)) if labels[n] == labels[m]]
        total += sum(logits[n] - log_d for n in pos) / len(pos)
    return -total / len(a)


def test_inter_code_is_text_anchored():
    g = torch.Generator().manual_seed(3)
    img, txt = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    labels = [0, 1, 0, 2, 1, 1]
    got = float(inter_supcon(img, txt, torch.tensor(labels), tau=TAU, variant="code"))
    assert got == pytest.approx(anchored_supcon(txt, img, labels, TAU), rel=1e-5)
    assert got != pytest.approx(anchored_supcon(img, txt, labels, TAU), rel=1e-3)


def test_losses_are_scale_invariant_and_differentiable():
    z = IMG.clone().requires_grad_(True)
    loss = intra_supcon(z, LABELS, tau=TAU, variant="paper")
    loss.backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    assert float(intra_supcon(IMG * 7, LABELS, TAU, "code")) == pytest.approx(
        float(intra_supcon(IMG, LABELS, TAU, "code")), rel=1e-5
    )


def test_bad_variant_and_shapes_are_refused():
    with pytest.raises(ValueError, match="variant"):
        intra_supcon(IMG, LABELS, variant="both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="B, D"):
        inter_supcon(IMG, TXT[:3], LABELS)


def similarity_inputs(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(img, txt) with ``txt @ img.T == raw``: identity images, raw rows as texts."""
    return torch.eye(len(raw)), raw.clone()


def test_gate_counts_below_diagonal_mean_and_same_label_pairs():
    # zero diagonal: mean diag of sigmoid = 0.5, so c = number of negative entries
    raw = torch.zeros(4, 4)
    raw[0, 1] = raw[2, 3] = raw[3, 0] = -1.0
    img, txt = similarity_inputs(raw)
    labels = torch.tensor([0, 0, 1, 2])  # same-label pairs: 4 diagonal + (0,1) + (1,0)
    assert gate_counts(img, txt, labels) == (3, 6)


@pytest.mark.parametrize("negatives, fires", [(3, True), (4, False), (12, False), (0, True)])
def test_gate_on_both_sides_of_threshold(negatives, fires):
    # c_mask = 6, threshold int(6 · 2/3) = 4: fire iff c < 4
    raw = torch.zeros(4, 4)
    off = [(i, j) for i in range(4) for j in range(4) if i != j]
    for i, j in off[:negatives]:
        raw[i, j] = -2.0
    img, txt = similarity_inputs(raw)
    assert inter_gate(img, txt, torch.tensor([0, 0, 1, 2])) is fires


def test_gate_threshold_is_floored_like_the_authors():
    # labels [0,0,0,1]: c_mask = 9 + 1 = 10, 10 · 2/3 = 6.67 → int → 6
    labels = torch.tensor([0, 0, 0, 1])
    off = [(i, j) for i in range(4) for j in range(4) if i != j]
    for negatives, fires in [(5, True), (6, False)]:
        raw = torch.zeros(4, 4)
        for i, j in off[:negatives]:
            raw[i, j] = -2.0
        img, txt = similarity_inputs(raw)
        assert inter_gate(img, txt, labels) is fires


def test_gate_aligned_pairs_skip_the_second_step():
    """Paired features far more similar than the rest: everything off the diagonal is
    below the diagonal mean, so the inter-modal step is not needed."""
    z = torch.eye(4) * 5
    assert gate_counts(z, z, LABELS) == (12, 10)
    assert inter_gate(z, z, LABELS) is False
    assert inter_gate(z, z, LABELS, alpha=2.0) is True


def test_gate_uses_raw_features():
    """Unlike the losses, the gate is not scale invariant: sigmoid of raw dot products."""
    raw = torch.full((4, 4), 0.1)
    raw.diagonal().copy_(torch.tensor([0.0, 0.0, 0.0, 2.0]))
    img, txt = similarity_inputs(raw)
    labels = torch.tensor([0, 0, 1, 2])  # threshold int(6 · 2/3) = 4
    # sigmoid(0.1) = 0.525 < diagonal mean 0.595: all 12 off-diagonal + 3 diagonal below
    assert gate_counts(img, txt, labels) == (15, 6)
    assert inter_gate(img, txt, labels) is False
    # ×100: sigmoid(10) ≈ 1 > diagonal mean 0.625; only the three 0.5 diagonal entries
    assert gate_counts(img * 100, txt, labels) == (3, 6)
    assert inter_gate(img * 100, txt, labels) is True


def test_paper_gate_is_cosine_without_the_diagonal_in_c_mask():
    # orthonormal pairs: cosine S = I, diagonal mean 1, so all 12 off-diagonal entries
    # are below it; InterMask (m != n, same label) has (0,1) and (1,0) only
    z = torch.eye(4)
    labels = torch.tensor([0, 0, 1, 2])
    assert gate_counts(z, z, labels, gate="paper") == (12, 2)
    assert gate_counts(z, z, labels, gate="code") == (12, 6)  # diagonal in c_mask
    # cosine is scale invariant; the code gate's sigmoid is not
    assert gate_counts(z * 100, z * 0.01, labels, gate="paper") == (12, 2)
    # the threshold is α · c_mask, not floored: 12 < 6.25 · 2 = 12.5 fires
    assert inter_gate(z, z, labels, alpha=6.25, gate="paper") is True
    assert inter_gate(z, z, labels, alpha=6.0, gate="paper") is False
    # the code gate floors: int(6 · 2.1) = 12, and 12 < 12 does not fire
    assert inter_gate(z, z, labels, alpha=2.1, gate="code") is False
    assert inter_gate(z, z, labels, alpha=2.2, gate="code") is True  # int(13.2) = 13


def test_paper_gate_counts_entries_below_the_cosine_diagonal_mean():
    # texts at angles: cos(T_m, I_n) worked out by hand; diagonal mean (1 + 0.6 + 0) / 3
    img = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    txt = torch.tensor([[2.0, 0.0], [0.6, 0.8], [-1.0, 0.0]])
    # S rows (texts) x cols (images): [1, 1, 0], [0.6, 0.6, 0.8], [-1, -1, 0]
    # mean diag = (1 + 0.6 + 0) / 3 = 0.533: below it are 0, -1, -1, 0 -> c = 4
    labels = torch.tensor([1, 1, 0])
    assert gate_counts(img, txt, labels, gate="paper") == (4, 2)


def test_saturated_share_counts_float32_ones_and_zeros():
    raw = torch.zeros(4, 4)
    raw.diagonal().fill_(100.0)  # sigmoid(100) == 1.0 in float32
    raw[0, 1] = -200.0  # sigmoid(-200) == 0.0
    img, txt = similarity_inputs(raw)
    assert saturated_share(img, txt) == pytest.approx(5 / 16)
    assert saturated_share(img * 0.01, txt) == 0.0
