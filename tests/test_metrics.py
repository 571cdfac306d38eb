"""Metrics against independent implementations (scikit-learn, scipy, brute force)."""

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr
from sklearn.metrics import f1_score

from mmalign import metrics


def test_classification_matches_sklearn():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    got = metrics.classification(t, p)
    assert got["acc"] == pytest.approx(np.mean(t == p))
    assert got["f1_weighted"] == pytest.approx(f1_score(t, p, average="weighted"))
    assert got["f1_macro"] == pytest.approx(f1_score(t, p, average="macro"))


def test_sentiment_regression_by_hand():
    t = np.array([-3.0, -1.2, 0.0, 0.4, 2.6, 1.0])
    p = np.array([-2.6, 0.3, -0.2, 0.0, 3.4, 1.4])
    got = metrics.sentiment_regression(t, p)
    assert got["mae"] == pytest.approx(np.mean(np.abs(t - p)))
    assert got["corr"] == pytest.approx(pearsonr(t, p)[0])
    # clipped and rounded: t -> [-3,-1,0,0,3,1]; p -> [-3,0,-0,0,3,1]
    assert got["acc7"] == pytest.approx(5 / 6)
    # has0: t>=0 [F,F,T,T,T,T]; p>=0 [F,T,F,T,T,T] -> 4/6
    assert got["acc2_has0"] == pytest.approx(4 / 6)
    has0 = f1_score(t >= 0, p >= 0, average="weighted")
    assert got["f1_has0"] == pytest.approx(has0)
    # non0 drops the zero label: t>0 [F,F,T,T,T]; p>0 [F,T,F,T,T] -> 3/5
    assert got["acc2_non0"] == pytest.approx(3 / 5)
    nz = t != 0
    assert got["f1_non0"] == pytest.approx(f1_score(t[nz] > 0, p[nz] > 0, average="weighted"))


def test_corr_of_a_constant_prediction_is_undefined():
    """MMSA's np.corrcoef gives NaN for a collapsed model; 0.0 would read as a score."""
    t = np.array([-2.0, -0.5, 0.0, 1.5])
    with np.errstate(invalid="ignore", divide="ignore"):
        mmsa = np.corrcoef(np.full(4, 0.3), t)[0, 1]
    assert np.isnan(mmsa)
    got = metrics.sentiment_regression(t, np.full(4, 0.3))
    assert np.isnan(got["corr"])
    assert got["mae"] == pytest.approx(np.mean(np.abs(t - 0.3)))


def _brute_recall(q, g, ql, gl, k, skip):
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gn = g / np.linalg.norm(g, axis=1, keepdims=True)
    hits = 0
    for i in range(len(q)):
        order = [j for j in np.argsort(-(gn @ qn[i]), kind="stable") if j != skip[i]]
        hits += any(gl[j] == ql[i] for j in order[:k])
    return hits / len(q)


def test_retrieval_recall_matches_brute_force():
    rng = np.random.default_rng(1)
    q, g = rng.normal(size=(30, 8)), rng.normal(size=(50, 8))
    ql, gl = rng.integers(0, 6, 30), rng.integers(0, 6, 50)
    got = metrics.retrieval_recall(torch.tensor(q), torch.tensor(g), torch.tensor(ql),
                                   torch.tensor(gl))
    for k in (1, 5, 10):
        assert got[f"r@{k}"] == pytest.approx(_brute_recall(q, g, ql, gl, k, [-1] * 30))


def test_retrieval_known_gallery_and_self_exclusion():
    # Query i is identical to gallery item i; labels make item i's only positive item i+3.
    g = torch.eye(6)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    # without exclusion each query finds itself: perfect r@1
    assert metrics.retrieval_recall(g, g, labels, labels, ks=(1,))["r@1"] == 1.0
    # excluding self every other item is an orthogonal tie; ties go against the query,
    # so the same-class item ranks behind the four other-class ones: r@1 0, r@5 1
    got = metrics.retrieval_recall(g, g, labels, labels, ks=(1, 5), exclude_self=True)
    assert got["r@1"] == 0.0 and got["r@5"] == 1.0
    q = torch.tensor([[1.0, 0.1, 0, 0, 0, 0]])
    got = metrics.retrieval_recall(q, g, torch.tensor([1]), labels, ks=(1, 2))
    assert got == {"r@1": 0.0, "r@2": 1.0}  # nearest is item 0 (label 0), then item 1


def test_retrieval_tables_pairs_and_any():
    emb = {"a": torch.tensor([[1.0, 0.0], [0.0, 1.0]]), "b": torch.tensor([[0.9, 0.1],
                                                                          [0.1, 0.9]])}
    labels = {"a": torch.tensor([0, 1]), "b": torch.tensor([0, 1])}
    got = metrics.retrieval_tables(emb, labels, ks=(1,))
    assert got["a->b/r@1"] == 1.0 and got["b->a/r@1"] == 1.0
    # "any": gallery is all 4 items minus the query; nearest is the other modality's match
    assert got["a->any/r@1"] == 1.0 and got["b->any/r@1"] == 1.0
    assert got["mean_r@1"] == 1.0
    swapped = {"a": emb["a"], "b": emb["b"].flip(0)}
    assert metrics.retrieval_tables(swapped, labels, ks=(1,))["a->b/r@1"] == 0.0
