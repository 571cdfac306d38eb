"""Recall@k on galleries whose answers are known, the "any" gallery included."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mmalign_infonce.evaluation import format_tables, pair_mean, recall_tables

from mmalign.metrics import retrieval_recall, retrieval_tables

KS = (1, 2, 3)


def at(*degrees: float) -> torch.Tensor:
    """Unit vectors at the given angles: cosine ranking is the angular distance."""
    rad = torch.tensor(degrees) * math.pi / 180
    return torch.stack([rad.cos(), rad.sin()], dim=1)


def test_recall_at_k_counts_a_query_once_its_first_relevant_item_is_in_the_top_k():
    query, qlab = at(0, 180), torch.tensor([0, 1])
    gallery, glab = at(10, 20, 30, 90, 175), torch.tensor([1, 1, 0, 0, 1])
    # query 0: label-1, label-1, then label-0 at rank 3; query 1: a hit at rank 1
    expected = {"r@1": 0.5, "r@2": 0.5, "r@3": 1.0}
    assert retrieval_recall(query, gallery, qlab, glab, KS) == expected
    assert retrieval_recall(query, gallery, qlab, glab, KS, chunk=1) == expected
    assert retrieval_recall(query * 3, gallery * 0.5, qlab, glab, KS) == expected  # cosine


# modality A: a0 (0 deg, class 0), a1 (5 deg, class 1), a2 (180 deg, class 1)
# modality B: b0 (100 deg, class 0), b1 (175 deg, class 1)
EMB = {"A": at(0, 5, 180), "B": at(100, 175)}
LAB = {"A": torch.tensor([0, 1, 1]), "B": torch.tensor([0, 1])}


def test_pair_tables_rank_only_the_target_modality():
    out = retrieval_tables(EMB, LAB, KS)
    # A->B: a0 hits b0 first; a1 sees b0 (miss) then b1; a2 hits b1 first
    assert out["A->B/r@1"] == pytest.approx(2 / 3)
    assert out["A->B/r@2"] == out["A->B/r@3"] == 1.0
    # B->A: b0 ranks a2, a1, a0 (hit at 3); b1 hits a2 first
    assert (out["B->A/r@1"], out["B->A/r@2"], out["B->A/r@3"]) == (0.5, 0.5, 1.0)
    assert out["mean_r@1"] == pytest.approx((2 / 3 + 0.5) / 2)


def test_any_tables_rank_every_item_but_the_query_itself():
    out = retrieval_tables(EMB, LAB, KS)
    # a0: a1 (same modality, miss) before b0 (hit at 2) -- and a0 itself does not count;
    # a1: a0, b0, then b1 (hit at 3); a2: b1 (hit at 1)
    assert out["A->any/r@1"] == pytest.approx(1 / 3)
    assert out["A->any/r@2"] == pytest.approx(2 / 3)
    assert out["A->any/r@3"] == 1.0
    # b0: b1, a2, a1 are all class 1 (its hit a0 is 4th); b1: a2 at rank 1
    assert (out["B->any/r@1"], out["B->any/r@3"]) == (0.5, 0.5)


def test_recall_tables_add_the_mean_rows_of_the_any_tables():
    out = recall_tables(EMB, LAB, KS)
    assert out["mean_any_r@1"] == pytest.approx((1 / 3 + 0.5) / 2)
    assert out["mean_any_r@3"] == pytest.approx((1.0 + 0.5) / 2)
    assert pair_mean(out, ["A", "B"], k=1) == pytest.approx(out["mean_r@1"])


def test_tables_are_printed_in_the_papers_shape():
    out = recall_tables(EMB, LAB, KS)
    text = format_tables({"test": out, "train": out}, ["A", "B"], KS)
    assert "| A → B | 0.67 | 1.00 | 1.00 | 0.67 | 1.00 | 1.00 |" in text
    assert "| B → any | 0.50 | 0.50 | 0.50 | 0.50 | 0.50 | 0.50 |" in text
    assert text.count("**Mean**") == 3


def test_any_tuple_gallery_holds_one_item_per_category_and_modality():
    """Two A items per class sit together, far from B (a modality gap). In the full
    gallery an A query's neighbour is its same-class twin (a hit); in a gallery of
    one item per class per modality every same-modality neighbour is of the other
    class, so the first hit is cross-modal. Both readings, exact for every draw."""
    emb = {"A": at(0, 2, 10, 12), "B": at(90, 100)}
    lab = {"A": torch.tensor([0, 0, 1, 1]), "B": torch.tensor([0, 1])}
    out = recall_tables(emb, lab, KS)
    assert out["A->any/r@1"] == 1.0
    # a0/a2 (class 0): the class-1 A item (miss), then b90 (hit at 2); a10/a12
    # (class 1): the class-0 A item, b90 (misses), b100 (hit at 3)
    assert out["A->any-tuple/r@1"] == 0.0
    assert out["A->any-tuple/r@2"] == pytest.approx(0.5)
    assert out["A->any-tuple/r@3"] == pytest.approx(1.0)
    # b90: b100 (miss), the class-1 A item (miss), the class-0 A item (hit at 3);
    # b100: b90 (miss), the class-1 A item (hit at 2)
    assert out["B->any-tuple/r@1"] == 0.0
    assert out["B->any-tuple/r@2"] == pytest.approx(0.5)
    assert out["B->any-tuple/r@3"] == pytest.approx(1.0)
    assert out["mean_any-tuple_r@2"] == pytest.approx(0.5)
    text = format_tables({"test": out}, ["A", "B"], KS)
    assert "one item per category and modality" in text and text.count("**Mean**") == 3


def test_event_recall_counts_only_the_querys_own_event():
    from mmalign_infonce.evaluation import event_recall

    # A: a0 (0 deg, event x), a1 (170 deg, event y); B: b_y (10 deg), b_x (20 deg), b_z (160)
    emb = {"A": at(0, 170), "B": at(10, 20, 160)}
    events = {"A": ["x", "y"], "B": ["y", "x", "z"]}
    out = event_recall(emb, events, KS)
    # a0: b_y, b_x -> its own event at rank 2; a1: b_z, b_x, b_y -> rank 3
    assert (out["A->B/event_r@1"], out["A->B/event_r@2"], out["A->B/event_r@3"]) == (0, 0.5, 1)
    # b_y -> a0 (x), a1 (y): rank 2; b_x -> a0: rank 1; b_z has no view in A: never a hit
    assert out["B->A/event_r@1"] == pytest.approx(1 / 3)
    assert out["B->A/event_r@2"] == pytest.approx(2 / 3)
    assert out["mean_event_r@2"] == pytest.approx((0.5 + 2 / 3) / 2)


def brute_force_recall(
    query: np.ndarray, gallery: np.ndarray, qlab: np.ndarray, glab: np.ndarray, k: int,
    skip: np.ndarray | None = None,
) -> float:
    """Recall@k written from its definition: sort the gallery (query ``i`` without item
    ``skip[i]``) by cosine, equal similarities with the other-category items first, and
    count the queries with an item of their category among the first k."""
    qn = query / np.linalg.norm(query, axis=1, keepdims=True)
    gn = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    hits = 0
    for i in range(len(query)):
        keep = np.array([j for j in range(len(gallery)) if skip is None or j != skip[i]])
        sims, relevant = gn[keep] @ qn[i], glab[keep] == qlab[i]
        order = np.lexsort((relevant, -sims))  # by similarity, then misses first
        hits += bool(relevant[order[:k]].any())
    return hits / len(query)


def brute_force_tables(emb: dict[str, np.ndarray], lab: dict[str, np.ndarray], ks) -> dict:
    """Every ordered pair, every modality against "any" (itself excluded), Mean rows."""
    names = list(emb)
    everything, every_label = np.concatenate(list(emb.values())), np.concatenate(list(lab.values()))
    out = {}
    for k in ks:
        for a in names:
            for b in names:
                if a != b:
                    out[f"{a}->{b}/r@{k}"] = brute_force_recall(emb[a], emb[b], lab[a], lab[b], k)
            offset = sum(len(emb[m]) for m in names[: names.index(a)])
            skip = np.arange(len(emb[a])) + offset
            out[f"{a}->any/r@{k}"] = brute_force_recall(emb[a], everything, lab[a], every_label,
                                                       k, skip)
        out[f"mean_r@{k}"] = np.mean([out[f"{a}->{b}/r@{k}"] for a in names for b in names
                                      if a != b])
        out[f"mean_any_r@{k}"] = np.mean([out[f"{a}->any/r@{k}"] for a in names])
    return out


@pytest.mark.parametrize("tied", [False, True])
def test_recall_tables_equal_a_brute_force_on_random_galleries(tied):
    """Four modalities of unequal sizes (one smaller than k = 10), a category that one
    gallery lacks, and, ``tied``, galleries of signed axis vectors: every similarity to
    one is exactly a query component or 0, so exact ties are everywhere."""
    rng = np.random.default_rng(7)
    for _ in range(4):
        sizes, dim = {"A": 23, "B": 17, "C": 9, "D": 6}, 4
        emb, lab = {}, {}
        for m, n in sizes.items():
            if tied:
                axes = np.eye(dim)[rng.integers(0, dim, n)] * rng.choice([-1.0, 1.0], (n, 1))
                emb[m] = axes if m != "A" else rng.normal(size=(n, dim))
            else:
                emb[m] = rng.normal(size=(n, dim))
            lab[m] = rng.integers(0, 5 if m != "C" else 4, n)  # C never shows category 4
        ks = (1, 3, 5, 10)
        got = recall_tables({m: torch.tensor(e, dtype=torch.float32) for m, e in emb.items()},
                            {m: torch.tensor(v) for m, v in lab.items()}, ks)
        expected = brute_force_tables(emb, lab, ks)
        assert {key: got[key] for key in expected} == pytest.approx(expected, abs=1e-12)


def test_a_query_whose_category_the_gallery_lacks_is_never_a_hit():
    query, qlab = at(0, 0), torch.tensor([0, 9])
    gallery, glab = at(10, 20, 30), torch.tensor([0, 1, 2])
    # k beyond the gallery: the category-0 query always finds its item, category 9 never
    assert retrieval_recall(query, gallery, qlab, glab, (1, 3, 10)) == {
        "r@1": 0.5, "r@3": 0.5, "r@10": 0.5,
    }


def test_ties_are_broken_against_the_query():
    """Equally similar items of another category rank before the query's own, so a tie
    never helps: the rule is pessimistic and independent of the gallery's order, and a
    collapsed model (every embedding the same) recalls nothing while other-category
    items fill the k places."""
    query, qlab = at(0), torch.tensor([0])
    hit, miss, far = at(0), at(0), at(90)
    for gallery, glab in (
        (torch.cat([hit, miss, far]), torch.tensor([0, 1, 1])),
        (torch.cat([miss, hit, far]), torch.tensor([1, 0, 1])),
    ):
        assert retrieval_recall(query, gallery, qlab, glab, (1, 2)) == {"r@1": 0.0, "r@2": 1.0}
    # two tied hits and two tied misses: the first hit is third
    got = retrieval_recall(query, at(0, 0, 0, 0), qlab, torch.tensor([0, 1, 0, 1]), KS)
    assert got == {"r@1": 0.0, "r@2": 0.0, "r@3": 1.0}
    collapsed = torch.ones(2000, 2)  # large enough for topk's other algorithm
    labels = torch.arange(2000) % 10
    assert retrieval_recall(collapsed[:20], collapsed, labels[:20], labels, (1, 5, 9, 10)) == {
        "r@1": 0.0, "r@5": 0.0, "r@9": 0.0, "r@10": 0.0,
    }
    diverged = torch.full((1, 2), float("nan"))  # NaN ranks last: no hit before the rest
    assert retrieval_recall(diverged, at(0, 90), qlab, torch.tensor([0, 1]), (1, 2)) == {
        "r@1": 0.0, "r@2": 1.0,
    }
