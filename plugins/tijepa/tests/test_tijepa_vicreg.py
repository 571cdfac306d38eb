"""The authors' VICReg-style loss against hand-computed values and a loop reference."""

from __future__ import annotations

import math

import pytest
import torch
from mmalign_tijepa.objective import JEPAConfig, JEPAObjective, jepa_loss, vicreg_loss, vicreg_terms


def test_vicreg_by_hand_n2_k1_d2():
    # N=2 blocks, K=1 patch, D=2; the targets are all zero
    pred = torch.tensor([[[0.1, 0.0]], [[0.3, 0.2]]])
    target = torch.zeros_like(pred)
    terms = vicreg_terms(pred, target)
    # invariance: (0.01 + 0 + 0.09 + 0.04) / 4
    assert terms["invariance"].item() == pytest.approx(0.035)
    # variance: unbiased var over N = 0.02 per (k, d); std sqrt(0.0201); targets
    # have var 0 -> std sqrt(1e-4) = 0.01; each side halved
    hinge_p = 1 - math.sqrt(0.02 + 1e-4)
    assert terms["variance"].item() == pytest.approx(hinge_p / 2 + 0.99 / 2, rel=1e-6)
    # covariance: X^T X / (2 - 1) (not centred): off-diagonal 0.06 twice -> 0.0072 / K=1.
    # A centred covariance would give 2 * 0.02^2 = 0.0008.
    assert terms["covariance"].item() == pytest.approx(0.0072, rel=1e-5)
    total = 25 * 0.035 + 25 * (hinge_p / 2 + 0.495) + 0.0072
    assert vicreg_loss(pred, target).item() == pytest.approx(total, rel=1e-6)
    assert vicreg_loss(pred, target, sim=1.0, std=0.0, cov=0.0).item() == pytest.approx(0.035)


def test_covariance_is_divided_by_k_not_d():
    # N=2, K=2, D=3: every token is (1, 1, 0) -> X^T X over 4 rows / 3 = 4/3 in the
    # (0, 1) and (1, 0) entries; squared and summed 32/9, divided by K=2 (D would be 3)
    pred = torch.tensor([[1.0, 1.0, 0.0]]).repeat(2, 2, 1)
    terms = vicreg_terms(pred, torch.zeros_like(pred))
    assert terms["covariance"].item() == pytest.approx((32 / 9) / 2, rel=1e-6)


def _loop_reference(pred, target, sim=25.0, std=25.0, cov=1.0) -> float:
    """Scalar loops over the same definitions, in float64."""
    p, t = pred.double().tolist(), target.double().tolist()
    n, k, d = len(p), len(p[0]), len(p[0][0])
    inv = sum((p[i][j][c] - t[i][j][c]) ** 2
              for i in range(n) for j in range(k) for c in range(d)) / (n * k * d)

    def hinge(x):
        total = 0.0
        for j in range(k):
            for c in range(d):
                vals = [x[i][j][c] for i in range(n)]
                mean = sum(vals) / n
                var = sum((v - mean) ** 2 for v in vals) / (n - 1)
                total += max(0.0, 1 - math.sqrt(var + 1e-4))
        return total / (k * d)

    def covariance(x):
        rows = [x[i][j] for i in range(n) for j in range(k)]
        total = 0.0
        for a in range(d):
            for b in range(d):
                if a != b:
                    entry = sum(r[a] * r[b] for r in rows) / (len(rows) - 1)
                    total += entry ** 2
        return total / k

    var = hinge(p) / 2 + hinge(t) / 2
    return sim * inv + std * var + cov * (covariance(p) + covariance(t))


@pytest.mark.parametrize("shape", [(3, 2, 4), (8, 5, 3), (2, 1, 6)])
def test_vicreg_matches_a_loop_reference(shape):
    g = torch.Generator().manual_seed(sum(shape))
    pred = torch.randn(*shape, generator=g) * 0.7
    target = torch.randn(*shape, generator=g) * 1.3
    expected = _loop_reference(pred, target, sim=2.0, std=3.0, cov=0.5)
    got = vicreg_loss(pred, target, sim=2.0, std=3.0, cov=0.5).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_vicreg_gradient_flows_to_predictions_only_through_their_terms():
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(4, 3, 5, generator=g, requires_grad=True)
    target = torch.randn(4, 3, 5, generator=g)
    vicreg_loss(pred, target).backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0


def test_objective_vicreg_flattens_blocks_and_images_into_n():
    g = torch.Generator().manual_seed(2)
    pred = torch.randn(3, 4, 2, 6, generator=g)  # B=3 images, M=4 blocks
    target = torch.randn(3, 4, 2, 6, generator=g)
    expected = vicreg_loss(pred.reshape(12, 2, 6), target.reshape(12, 2, 6))
    assert jepa_loss(pred, target, "vicreg").item() == pytest.approx(expected.item())
    objective = JEPAObjective(JEPAConfig(loss="vicreg", vicreg_cov=0.0))
    loss = objective({"predictions": pred, "targets": target}, {})["loss"]
    assert loss.item() == pytest.approx(
        vicreg_loss(pred.reshape(12, 2, 6), target.reshape(12, 2, 6), cov=0.0).item())


def test_vicreg_refuses_bad_shapes():
    with pytest.raises(ValueError, match=r"same shape \[N, K, D\]"):
        vicreg_loss(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="at least 2 block predictions"):
        vicreg_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3))
