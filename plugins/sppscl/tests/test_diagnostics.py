"""IID/TTD/ITD by hand, and the evaluation-batch dependence of the two CMF modes."""

from __future__ import annotations

from math import sqrt

import pytest
import torch
from mmalign_sppscl.diagnostics import batch_dependence, distance_report, mean_distances

LABELS = torch.tensor([0, 0, 1, 1])
IMG = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0], [1.0, 1.0]])
TXT = torch.tensor([[0.0, 0.0], [0.0, 1.0], [5.0, 0.0], [1.0, 1.0]])


def test_same_label_distances_by_hand():
    d = mean_distances(IMG, TXT, LABELS)
    assert d["IID"] == pytest.approx((5 + 5 + 1 + 1) / 4)  # pairs (0,1) and (2,3), both ways
    assert d["TTD"] == pytest.approx((1 + 1 + 2 * sqrt(17)) / 4)
    # image i against text j for every same-label (i, j), the sample's own pair included
    itd = (0 + 1 + 5 + sqrt(18)) + (4 + 1 + sqrt(17) + 0)
    assert d["ITD"] == pytest.approx(itd / 8)
    values = [d["IID"], d["TTD"], d["ITD"]]
    assert d["spread"] == pytest.approx((max(values) - min(values)) / (sum(values) / 3))


def test_distance_report_scopes():
    report = distance_report(IMG + 1, TXT + 1, LABELS, ["a", "b"])
    assert report["n"] == 4
    assert set(report["per_class_normalized"]) == {"a", "b"}
    for scope in ("normalized", "other_label_normalized"):
        assert all(0 <= report[scope][k] <= 2 for k in ("IID", "TTD", "ITD"))
    assert report["raw"]["IID"] > report["normalized"]["IID"]


class Split:
    """A FeatureSet-like split: one feature vector per sample."""

    def __init__(self, n: int = 20) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, generator=g)
        self.labels = torch.randint(0, 3, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, positions):
        return {"x": {"pooled": self.x[positions]}, "label": self.labels[positions]}


class Scorer(torch.nn.Module):
    """Logits from the sample alone, or relative to its batch (like ``cmf=batch``)."""

    def __init__(self, across_batch: bool) -> None:
        super().__init__()
        self.across_batch = across_batch

    def forward(self, batch):
        x = batch["x"]["pooled"]
        logits = x - x.mean(0, keepdim=True) if self.across_batch else x
        return {"logits": logits, "embeddings": {"image": x, "text": x}, "fused": x}


@pytest.mark.parametrize("across_batch", [True, False])
def test_batch_dependence_detects_batch_mates(across_batch):
    split = Split()
    out = batch_dependence(Scorer(across_batch), split, split.labels, 8, torch.device("cpu"))
    assert set(out) == {f"{kind}@{name}" for kind in ("acc", "changed")
                        for name in ("bs=1", "bs=8", "bs=16", "bs=20", "bs=8,shuffled")}
    assert out["changed@bs=8"] == 0.0
    changed = [v for k, v in out.items() if k.startswith("changed@")]
    assert (max(changed) > 0) is across_batch
    reference = (split.x.argmax(-1) == split.labels).float().mean()
    if not across_batch:
        assert out["acc@bs=1"] == pytest.approx(float(reference))


def test_batch_dependence_by_hand():
    """Four samples, logits = x minus its batch's mean, evaluated at batch size 2: the
    batches {0, 1} and {2, 3} predict [1, 0, 0, 1]; one batch of all four [0, 0, 1, 1];
    single samples have zero logits, so argmax 0 for all."""
    split = Split(4)
    split.x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    split.labels = torch.tensor([0, 0, 1, 1])
    out = batch_dependence(Scorer(True), split, split.labels, 2, torch.device("cpu"))
    assert out["acc@bs=2"] == 0.5 and out["changed@bs=2"] == 0.0  # the reference
    assert out["acc@bs=1"] == 0.5 and out["changed@bs=1"] == 0.5  # samples 0 and 3 flip
    for whole in ("bs=4", "bs=16"):  # 16 > 4: one batch of the whole split
        assert out[f"acc@{whole}"] == 1.0 and out[f"changed@{whole}"] == 0.5
