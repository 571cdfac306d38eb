"""Equations 1 and 2 against hand computation and torch's cross-entropy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmalign_infonce.losses import info_nce, nmodal_info_nce, ordered_pairs, unordered_pairs

# x = I, y = S^T, so x . y_j = S[i, j]:
S = torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 2.0, 2.0]])


def test_info_nce_matches_a_hand_computed_3x3_example():
    # row 0: -log(e^2 / (e^2 + 1 + e))  = 0.40761
    # row 1: -log(e / (e + e + 1))      = 0.86199
    # row 2: -log(e^2 / (1 + 2 e^2))    = 0.75862
    expected = (0.40761 + 0.86199 + 0.75862) / 3
    assert info_nce(torch.eye(3), S.T, tau=1.0).item() == pytest.approx(expected, abs=1e-4)
    # tau scales the logits: at tau = 0.5 they are 2 S
    assert info_nce(torch.eye(3), S.T, tau=0.5).item() == pytest.approx(0.534606, abs=1e-5)


def test_info_nce_is_cross_entropy_on_the_similarity_matrix():
    g = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(7, 5, generator=g), dim=-1)
    y = F.normalize(torch.randn(7, 5, generator=g), dim=-1)
    ce = F.cross_entropy(x @ y.T / 0.05, torch.arange(7))
    assert info_nce(x, y).item() == pytest.approx(ce.item(), rel=1e-6)
    # the same through the positives mask (the path used in training)
    assert info_nce(x, y, positives=torch.eye(7, dtype=torch.bool)).item() == pytest.approx(
        ce.item(), rel=1e-6
    )


def test_several_positives_count_as_one_bag():
    logits = S  # tau = 1, x = I
    labels = torch.tensor([0, 0, 1])
    mask = labels[:, None] == labels[None, :]
    got = info_nce(torch.eye(3), S.T, tau=1.0, positives=mask)
    rows = [-torch.log((logits[i][mask[i]].exp().sum()) / logits[i].exp().sum()) for i in range(3)]
    assert got.item() == pytest.approx(torch.stack(rows).mean().item(), rel=1e-6)
    assert got < info_nce(torch.eye(3), S.T, tau=1.0)  # a second positive can only help


def test_a_row_without_positive_is_an_error():
    with pytest.raises(ValueError, match="positive"):
        info_nce(
            torch.eye(2), torch.eye(2), positives=torch.tensor([[True, False], [False, False]])
        )


@pytest.mark.parametrize(("n", "pairs"), [(2, 2), (3, 6), (4, 12), (5, 20)])
def test_equation_2_averages_every_ordered_pair(n, pairs):
    g = torch.Generator().manual_seed(n)
    emb = {f"m{i}": F.normalize(torch.randn(6, 4, generator=g), dim=-1) for i in range(n)}
    assert len(ordered_pairs(list(emb))) == pairs == n * (n - 1)
    assert len(unordered_pairs(list(emb))) == pairs // 2
    by_hand = sum(info_nce(emb[a], emb[b]) for a in emb for b in emb if a != b) / pairs
    assert nmodal_info_nce(emb).item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_two_modalities_give_the_symmetric_clip_loss():
    g = torch.Generator().manual_seed(1)
    x = F.normalize(torch.randn(8, 16, generator=g), dim=-1)
    y = F.normalize(torch.randn(8, 16, generator=g), dim=-1)
    logits = x @ y.T * (1 / 0.05)  # CLIP's logit scale
    target = torch.arange(8)
    clip = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    assert nmodal_info_nce({"text": x, "image": y}).item() == pytest.approx(clip.item(), rel=1e-6)


def test_equation_2_needs_two_modalities():
    with pytest.raises(ValueError, match="two modalities"):
        nmodal_info_nce({"text": torch.eye(2)})
