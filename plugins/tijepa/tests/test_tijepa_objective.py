"""The JEPA loss against hand-computed values, EMA math and schedule, the collapse guard."""

from __future__ import annotations

import math

import pytest
import torch
from mmalign_tijepa.collapse import CollapseGuard, spread
from mmalign_tijepa.objective import JEPAConfig, JEPAObjective, ema_update, jepa_loss, momentum_at
from tijepa_toys import tiny_batch, tiny_model
from torch import nn

from mmalign.interfaces import StepContext


def test_l2_loss_is_the_papers_formula():
    # B=1 image, M=2 blocks of K=2 patches, D=1: sum over patches, mean over blocks
    p = torch.tensor([[[[1.0], [2.0]], [[0.0], [1.0]]]])
    t = torch.zeros_like(p)
    assert jepa_loss(p, t, "l2").item() == pytest.approx((1 + 4 + 0 + 1) / 2)
    # D=2, one patch per block: squared L2 norms 5 and 25 -> 15; a second, exact
    # image halves the batch mean
    p = torch.tensor([[[[1.0, 2.0]], [[0.0, 0.0]]], [[[1.0, 1.0]], [[1.0, 1.0]]]])
    t = torch.tensor([[[[0.0, 0.0]], [[3.0, 4.0]]], [[[1.0, 1.0]], [[1.0, 1.0]]]])
    assert jepa_loss(p, t, "l2").item() == pytest.approx(7.5)
    assert jepa_loss(p, t, "mse").item() == pytest.approx(30 / 8)
    # smooth-L1 (beta 1): |d|<1 -> d^2/2, else |d|-1/2: 0.5 + 1.5 + 2.5 + 3.5 over 8 elements
    assert jepa_loss(p, t, "smooth_l1").item() == pytest.approx(8 / 8)


def test_momentum_schedule_is_linear_over_all_steps():
    ema = (0.996, 1.0)
    assert momentum_at(0, 1000, ema) == pytest.approx(0.996)
    assert momentum_at(500, 1000, ema) == pytest.approx(0.998)
    assert momentum_at(1000, 1000, ema) == pytest.approx(1.0)
    assert momentum_at(5000, 1000, ema) == pytest.approx(1.0)


def test_ema_update_math():
    online, target = nn.Linear(3, 2), nn.Linear(3, 2)
    with torch.no_grad():
        for p in online.parameters():
            p.fill_(1.0)
        for p in target.parameters():
            p.fill_(-2.0)
    ema_update(target, online, 0.9)
    for p in target.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.9 * -2.0 + 0.1 * 1.0))
    ema_update(target, online, 1.0)  # momentum 1 freezes the target
    for p in target.parameters():
        assert torch.allclose(p, torch.full_like(p, -1.7))


def test_training_step_updates_online_then_ema_target():
    model = tiny_model()
    objective = JEPAObjective(JEPAConfig(ema=(0.9, 1.0)))
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.1
    )
    before = [p.clone() for p in model.target.parameters()]

    def optimize(loss):
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    ctx = StepContext(model=model, batch=tiny_batch(), optimize=optimize, forward=model,
                      step=0, epoch=0, total_steps=10, device=torch.device("cpu"),
                      generator=torch.Generator())
    out = objective.training_step(ctx)
    assert out["momentum"] == pytest.approx(0.9)
    assert all(k in out for k in ("pred_std", "pred_erank", "target_std", "target_erank"))
    for old, new, online in zip(before, model.target.parameters(), model.context.parameters(),
                                strict=True):
        assert torch.allclose(new, 0.9 * old + 0.1 * online, atol=1e-6)
        assert new.grad is None
    changed = any(not torch.equal(o, t) for o, t in
                  zip(model.context.parameters(), before, strict=True))
    assert changed


def test_spread_of_collapsed_and_diverse_rows():
    std, erank = spread(torch.ones(100, 16) * 3.0)
    assert std == pytest.approx(0.0) and erank == pytest.approx(1.0)
    # 16 one-hot rows, centred, span 15 equally strong directions
    std, erank = spread(torch.eye(16).repeat(4, 1))
    assert std > 0.2 and erank == pytest.approx(15.0, rel=1e-4)
    # a rank-2 cloud has effective rank between 1 and 2
    g = torch.Generator().manual_seed(0)
    low = torch.randn(200, 2, generator=g) @ torch.randn(2, 32, generator=g)
    assert 1.0 < spread(low)[1] <= 2.0 + 1e-4


def test_guard_warns_once_per_collapsed_epoch():
    guard = CollapseGuard(min_std=0.01, min_erank=2.0)
    healthy = {"pred_std": 0.5, "pred_erank": 20.0, "target_std": 0.4, "target_erank": 18.0}
    collapsed = {"pred_std": 1e-4, "pred_erank": 1.0, "target_std": 0.4, "target_erank": 18.0}
    guard.add(0, healthy)
    guard.add(0, healthy)
    with pytest.warns(RuntimeWarning, match="collapse suspected at epoch 1: pred std"):
        guard.add(1, collapsed)
        guard.add(2, healthy)  # closes epoch 1
    guard.close()
    assert [int(r["epoch"]) for r in guard.epochs] == [0, 1, 2]
    assert len(guard.warnings) == 1 and "pred effective rank 1 < 2" in guard.warnings[0]
    assert math.isclose(guard.epochs[0]["pred_std"], 0.5)


def _validation_with(batch: dict) -> tuple[dict, JEPAObjective]:
    objective = JEPAObjective(JEPAConfig(), loader=lambda fs, *args: iter([batch]))
    return objective.validation_stats(tiny_model(), None, torch.device("cpu")), objective


def test_text_gain_is_the_loss_with_another_images_caption_minus_the_true_loss():
    """The diagnostic against a forward pass built by hand: the predictions of a batch
    whose captions were permuted (row i gets row i-2's, half the batch of 4 away)
    scored against the targets of the untouched batch."""
    batch = tiny_batch(b=4)
    stats, _ = _validation_with(batch)
    model = tiny_model().eval()
    rows = torch.tensor([2, 3, 0, 1])
    permuted = {**batch, "text": {k: v[rows] for k, v in batch["text"].items()}}
    with torch.no_grad():
        true = model(batch)
        swapped_predictions = model(permuted)["predictions"]
        shifted = model(batch, context_shift=2)
    assert torch.equal(shifted["targets"], true["targets"])  # targets keep their caption
    assert torch.allclose(shifted["predictions"], swapped_predictions, atol=1e-6)
    expected_true = float(jepa_loss(true["predictions"], true["targets"], "l2"))
    expected_swapped = float(jepa_loss(swapped_predictions, true["targets"], "l2"))
    assert stats["loss"] == pytest.approx(expected_true, rel=1e-6)
    assert stats["swapped_caption_loss"] == pytest.approx(expected_swapped, rel=1e-6)
    assert stats["text_gain"] == pytest.approx(expected_swapped - expected_true, rel=1e-5)
    assert stats["text_gain"] != 0
    assert stats["text_gain_rel"] == pytest.approx(stats["text_gain"] / expected_true)


def test_text_gain_is_zero_when_every_image_has_the_same_caption():
    batch = tiny_batch(b=4)
    batch["text"] = {k: v[:1].expand_as(v).clone() for k, v in batch["text"].items()}
    stats, _ = _validation_with(batch)
    assert stats["text_gain"] == pytest.approx(0.0, abs=1e-6)
