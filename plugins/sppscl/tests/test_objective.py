"""Algorithm 1 inside ``training_step``: one or two optimizer steps, gated."""

from __future__ import annotations

import math

import pytest
import torch
from mmalign_sppscl.losses import inter_gate, inter_supcon
from mmalign_sppscl.objective import SPPSCLLossConfig, SPPSCLObjective
from torch import nn

from mmalign.interfaces import StepContext


class TinyModel(nn.Module):
    """Linear image/text embeddings and a linear classifier; records every forward."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.img = nn.Linear(6, 4)
        self.txt = nn.Linear(6, 4)
        self.head = nn.Linear(8, 3)
        self.seen: list[torch.Tensor] = []

    def forward(self, batch):
        self.seen.append(self.img.weight.detach().clone())
        i, t = self.img(batch["image"]), self.txt(batch["text"])
        return {"logits": self.head(torch.cat([i, t], -1)), "embeddings": {"image": i, "text": t}}


def make_ctx(model, steps):
    """A StepContext whose ``optimize`` is a plain SGD step, logged in ``steps``.

    (A hand-written update: ``torch.optim``'s first step imports ``torch._dynamo``,
    which costs seconds.)"""
    g = torch.Generator().manual_seed(1)
    batch = {
        "image": torch.randn(8, 6, generator=g),
        "text": torch.randn(8, 6, generator=g),
        "label": torch.tensor([0, 1, 2, 0, 1, 2, 0, 0]),
    }

    def optimize(loss):
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= 0.1 * p.grad
        steps.append(float(loss.detach()))

    return StepContext(
        model=model, batch=batch, optimize=optimize, forward=model, step=0, epoch=0,
        total_steps=1, device=torch.device("cpu"), generator=g,
    )


def run(**cfg):
    model, steps = TinyModel(), []
    ctx = make_ctx(model, steps)
    objective = SPPSCLObjective(SPPSCLLossConfig(**cfg))
    logs = objective.training_step(ctx)
    return model, steps, logs, objective, ctx


def test_gate_closed_means_one_step_after_re_encoding():
    model, steps, logs, objective, ctx = run(alpha=0.0)  # c < int(0) never holds
    assert len(steps) == 1
    assert len(model.seen) == 2  # the batch was encoded again after the step
    assert not torch.equal(model.seen[0], model.seen[1])  # ... by the updated model
    assert logs["gate_fired"] == 0.0
    assert (objective.gate_checks, objective.gate_fired) == (1, 0)
    assert logs["loss"] == pytest.approx(steps[0])


def test_gate_open_means_a_second_step_on_the_inter_loss_alone():
    model, steps, logs, objective, ctx = run(alpha=100.0)  # c <= B² < 100 · c_mask
    assert len(steps) == 2
    assert logs["gate_fired"] == 1.0
    assert (objective.gate_checks, objective.gate_fired) == (1, 1)
    # the second loss is L_cl_m on the re-encoded batch, nothing else
    assert steps[1] == pytest.approx(logs["inter"])
    assert logs["loss"] == pytest.approx(steps[0] + steps[1])


def authors_gate(z_img, z_txt, labels, alpha: float) -> bool:
    """The authors' train.py rule, written out element by element: S = sigmoid(T Iᵀ)
    on the raw features, c = entries of S below the mean of its diagonal, c_mask =
    same-label pairs with the diagonal, the second step when c < int(α · c_mask)."""
    t, v, y = z_txt.tolist(), z_img.tolist(), labels.tolist()
    n = len(y)
    s = [[1 / (1 + math.exp(-sum(a * b for a, b in zip(t[i], v[j], strict=True))))
          for j in range(n)] for i in range(n)]
    mean_diag = sum(s[i][i] for i in range(n)) / n
    c = sum(1 for i in range(n) for j in range(n) if s[i][j] < mean_diag)
    c_mask = sum(1 for i in range(n) for j in range(n) if y[i] == y[j])
    return c < int(alpha * c_mask)


def test_the_real_gate_decides():
    """Over a range of α the step count follows the authors' rule, computed by hand on
    the batch re-encoded after step 1, and both outcomes occur."""
    outcomes = set()
    for alpha in (0.05, 0.3, 0.5, 2 / 3, 0.8, 1.0):
        _, steps, logs, _, _ = run(alpha=alpha)
        model2 = TinyModel()
        ctx2 = make_ctx(model2, [])
        SPPSCLObjective(SPPSCLLossConfig(inter=False)).training_step(ctx2)  # same step 1
        with torch.no_grad():
            emb = model2(ctx2.batch)["embeddings"]
        fired = authors_gate(emb["image"], emb["text"], ctx2.batch["label"], alpha)
        assert fired == inter_gate(emb["image"], emb["text"], ctx2.batch["label"], alpha)
        assert len(steps) == 1 + int(fired), alpha
        outcomes.add(fired)
        assert logs["inter"] == pytest.approx(float(
            inter_supcon(emb["image"], emb["text"], ctx2.batch["label"], variant="code")),
            rel=1e-5)  # logged on the re-encoded batch whether or not the step is taken
    assert outcomes == {True, False}


def test_step_one_is_weighted_ce_plus_intra():
    _, steps, logs, _, _ = run(alpha=0.0, ce_weight=5.0)
    assert steps[0] == pytest.approx(5.0 * logs["ce"] + logs["intra_image"] + logs["intra_text"])
    _, steps, logs, _, _ = run(alpha=0.0, intra=False)
    assert "intra_image" not in logs
    assert steps[0] == pytest.approx(5.0 * logs["ce"])


def test_one_step_ablation_optimizes_everything_once():
    model, steps, logs, objective, _ = run(two_step=False, alpha=100.0)
    assert len(steps) == 1 and len(model.seen) == 1
    assert "gate_fired" not in logs and objective.gate_checks == 0
    assert steps[0] == pytest.approx(
        5.0 * logs["ce"] + logs["intra_image"] + logs["intra_text"] + logs["inter"]
    )


def test_without_inter_loss_there_is_no_gate_and_no_re_encoding():
    model, steps, logs, objective, _ = run(inter=False, alpha=100.0)
    assert len(steps) == 1 and len(model.seen) == 1
    assert "inter" not in logs and objective.gate_checks == 0


def test_forward_is_equation_seven():
    model = TinyModel()
    ctx = make_ctx(model, [])
    objective = SPPSCLObjective(SPPSCLLossConfig(ce_weight=2.0))
    with torch.no_grad():
        losses = objective(model(ctx.batch), ctx.batch)
    expected = 2.0 * losses["ce"] + losses["intra_image"] + losses["intra_text"] + losses["inter"]
    assert float(losses["loss"]) == pytest.approx(float(expected))
