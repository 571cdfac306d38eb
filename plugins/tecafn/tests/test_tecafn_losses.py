"""Mining, gate and losses of ``mmalign_tecafn.losses`` against hand-worked values."""

import math

import pytest
import torch
from mmalign_tecafn.losses import (
    bidirectional_infonce,
    hard_negatives,
    random_negatives,
    replacement_gate,
    text_centred_infonce,
)

# row i: text i against the other modality of samples 0..4. Rows 0 and 3 score
# themselves highest; row 1 scores another sample above itself; row 4 has a tie.
SIM = torch.tensor(
    [
        [0.95, 0.10, 0.80, 0.30, 0.50],
        [0.20, 0.60, 0.10, 0.70, 0.90],
        [0.40, 0.30, 0.20, 0.10, 0.35],
        [0.00, 0.50, 0.60, 0.99, -0.20],
        [0.70, 0.70, 0.10, 0.20, 0.30],
    ]
)


def test_hard_negatives_exact_indices_most_similar_first():
    assert hard_negatives(SIM, 2).tolist() == [[2, 4], [4, 3], [0, 4], [2, 1], [0, 1]]
    assert hard_negatives(SIM, 3).tolist() == [
        [2, 4, 3],
        [4, 3, 0],
        [0, 4, 1],
        [2, 1, 0],
        [0, 1, 3],
    ]


def test_hard_negatives_never_choose_self_even_when_asking_for_all():
    for num in (1, 4, 10):
        idx = hard_negatives(SIM, num)
        assert idx.shape == (5, min(num, 4))
        assert not (idx == torch.arange(5)[:, None]).any()
    # every other sample, once each, when num >= B - 1
    assert [sorted(r) for r in hard_negatives(SIM, 10).tolist()] == [
        [j for j in range(5) if j != i] for i in range(5)
    ]


def test_hard_negatives_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        hard_negatives(torch.zeros(3, 4), 2)


def test_random_negatives_are_all_others():
    assert random_negatives(4).tolist() == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.7, 1.0])
def test_gate_replacement_rate_and_pseudo_labels(p):
    n, draws = 50, 400
    negatives = hard_negatives(torch.rand(n, n, generator=torch.Generator().manual_seed(1)), 3)
    x = torch.arange(n).float()[:, None]
    gen = torch.Generator().manual_seed(7)
    replaced, picks = 0, torch.zeros(3)
    for _ in range(draws):
        gate = replacement_gate(x, negatives, p, gen)
        kept = gate.index == torch.arange(n)
        # the pseudo-label is 1 exactly for a kept (paired) modality
        assert torch.equal(gate.paired, kept.long())
        assert torch.equal(gate.x, x[gate.index])
        # a replacement is always one of that sample's negatives
        slot = negatives == gate.index[:, None]
        assert (slot.any(1) | kept).all()
        picks += slot[~kept].float().sum(0)
        replaced += int((~kept).sum())
    total = n * draws
    # 20,000 Bernoulli(p) draws: 4 standard deviations is < 0.015
    assert abs(replaced / total - p) < 0.015
    if replaced:  # uniform over the 3 hard negatives
        assert torch.allclose(picks / replaced, torch.full((3,), 1 / 3), atol=0.03)


@pytest.mark.parametrize("p", [0.3, 0.7])
def test_two_independent_gates_give_table_2(p):
    n, draws = 40, 500
    negatives = random_negatives(n)
    x = torch.zeros(n, 1)
    gen = torch.Generator().manual_seed(3)
    counts = {}
    for _ in range(draws):
        video = replacement_gate(x, negatives, p, gen).paired
        audio = replacement_gate(x, negatives, p, gen).paired
        for v, a in zip(video.tolist(), audio.tolist(), strict=True):
            counts[(v, a)] = counts.get((v, a), 0) + 1
    total = n * draws
    expected = {(1, 1): (1 - p) ** 2, (0, 1): p * (1 - p), (1, 0): p * (1 - p), (0, 0): p * p}
    for case, prob in expected.items():
        assert abs(counts.get(case, 0) / total - prob) < 0.015, case


def test_gate_is_reproducible_and_keeps_rows_without_negatives():
    negatives = random_negatives(6)
    x = torch.randn(6, 3)
    a = replacement_gate(x, negatives, 0.5, torch.Generator().manual_seed(0))
    b = replacement_gate(x, negatives, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(a.index, b.index)
    single = replacement_gate(x[:1], torch.zeros(1, 0, dtype=torch.long), 1.0)
    assert single.index.tolist() == [0] and single.paired.tolist() == [1]


def test_text_centred_infonce_hand_computed():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # cosines: [[1, r], [0, r]], r = 1/sqrt(2)
    r, tau = 1 / math.sqrt(2), 0.5
    row0 = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(r / tau)))
    row1 = -math.log(math.exp(r / tau) / (math.exp(0 / tau) + math.exp(r / tau)))
    assert text_centred_infonce(q, k, tau).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)
    # cosine logits: the scale of the embeddings does not matter
    assert text_centred_infonce(5 * q, 0.1 * k, tau).item() == pytest.approx(
        (row0 + row1) / 2, rel=1e-6
    )


def test_bidirectional_infonce_hand_computed():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    u = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    r, tau = 1 / math.sqrt(2), 0.5
    zu = (
        -math.log(math.exp(2) / (math.exp(2) + math.exp(r / tau)))
        - math.log(math.exp(r / tau) / (1 + math.exp(r / tau)))
    ) / 2
    # u -> z: row 0 cosines [1, 0], row 1 cosines [r, r]
    uz = (-math.log(math.exp(2) / (math.exp(2) + 1)) + math.log(2)) / 2
    assert bidirectional_infonce(z, u, tau).item() == pytest.approx(zu + uz, rel=1e-6)
    assert text_centred_infonce(u, z, tau).item() == pytest.approx(uz, rel=1e-6)
