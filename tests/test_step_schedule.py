"""Per-step warm-up + cosine learning rate, cosine weight decay and timm's parameter
groups, against I-JEPA's formulas written out by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmalign.interfaces import TrainConfig
from mmalign.runner.optim import StepSchedule, make_optimizer, parameter_groups


def ijepa_lr(step: int, warmup: int, total: int, start: float, ref: float, final: float) -> float:
    """I-JEPA's WarmupCosineSchedule after ``step + 1`` calls of ``step()``."""
    s = step + 1
    if s < warmup:
        return start + s / max(1, warmup) * (ref - start)
    progress = (s - warmup) / max(1, total - warmup)
    return max(final, final + (ref - final) * 0.5 * (1 + math.cos(math.pi * progress)))


def ijepa_wd(step: int, total: int, ref: float, final: float) -> float:
    """I-JEPA's CosineWDSchedule after ``step + 1`` calls."""
    progress = (step + 1) / total
    wd = final + (ref - final) * 0.5 * (1 + math.cos(math.pi * progress))
    return min(final, wd) if final > ref else max(final, wd)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4)
        self.token = nn.Parameter(torch.zeros(1, 1, 4))
        self.kept = nn.Parameter(torch.zeros(2, 4))

    def no_weight_decay(self) -> set[str]:
        return {"token"}


def test_groups_exclude_biases_norms_and_listed_names():
    model = Tiny()
    cfg = TrainConfig(weight_decay=0.05, decay_exclude_1d=True)
    groups = parameter_groups(cfg, model)
    by_wd = {g["weight_decay"]: {id(p) for p in g["params"]} for g in groups}
    assert by_wd[0.05] == {id(model.linear.weight), id(model.kept)}
    assert by_wd[0.0] == {id(model.linear.bias), id(model.norm.weight), id(model.norm.bias),
                          id(model.token)}


def test_lr_and_weight_decay_follow_ijepa_per_step():
    model = Tiny()
    cfg = TrainConfig(epochs=5, lr=1e-3, scheduler="warmup-cosine", warmup_epochs=2,
                      warmup_lr=2e-4, final_lr=1e-6, weight_decay=0.04,
                      final_weight_decay=0.4, decay_exclude_1d=True)
    optimizer = make_optimizer(cfg, parameter_groups(cfg, model))
    steps_per_epoch = 3
    schedule = StepSchedule(cfg, optimizer, steps_per_epoch)
    total, warm = 15, 6
    for step in range(total):  # the stage never runs past its total
        schedule.update(step)
        want_lr = ijepa_lr(step, warm, total, 2e-4, 1e-3, 1e-6)
        want_wd = ijepa_wd(step, total, 0.04, 0.4)
        for group in optimizer.param_groups:
            assert group["lr"] == pytest.approx(want_lr, rel=1e-9, abs=1e-12)
            if any(p is model.kept for p in group["params"]):
                assert group["weight_decay"] == pytest.approx(want_wd)
            else:
                assert group["weight_decay"] == 0.0
    # spot values: the first step is one warm-up increment above start, the peak is
    # reached at the end of warm-up and the last step lands on final_lr
    schedule.update(0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(2e-4 + (1e-3 - 2e-4) / 6)
    schedule.update(warm - 1)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    schedule.update(total - 1)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-6)
    assert schedule.weight_decay_at(total - 1) == pytest.approx(0.4)


def test_runner_applies_the_schedule_per_step(toy_plugin, run_method):
    from mmalign.testing import toy_encoders

    result = run_method(
        "late-fusion", task="toy-pairs", encoders=toy_encoders(),
        **{"train.epochs": 3, "train.batch_size": 32, "train.scheduler": "warmup-cosine",
           "train.warmup_epochs": 1, "train.warmup_lr": 1e-4, "train.final_lr": 1e-5,
           "train.lr": 1e-2, "train.decay_exclude_1d": True, "train.weight_decay": 0.1,
           "train.final_weight_decay": 0.2, "train.patience": None},
    )
    history = result.extra["stages"]["train"]["history"]
    per_epoch = [r["train_lr"] for r in history]
    # end of warm-up (epoch 0) is the peak; the last step lands on final_lr
    assert per_epoch[0] == pytest.approx(1e-2)
    assert per_epoch[0] > per_epoch[1] > per_epoch[2] == pytest.approx(1e-5)
    assert history[-1]["train_weight_decay"] == pytest.approx(0.2)
