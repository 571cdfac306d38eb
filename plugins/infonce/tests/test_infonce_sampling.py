"""Category-aligned tuple batches: alignment, over-sampling, schedules, DDP slices."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from mmalign_infonce.sampling import RoundRobin, apportion, make_loader, round_robin_schedule

from mmalign.errors import MMAlignError
from mmalign.features import FeatureSet, ModalityData

MODS = ("text", "image", "audio", "video")
COUNTS = {"text": 5, "image": 4, "audio": 2, "video": 1}  # items per category
CLASSES = 6


def feature_set() -> FeatureSet:
    """One sample per item, one modality per sample; feature 0 stores the item's id."""
    labels, modalities, pos = [], {}, 0
    for m in MODS:
        rows, ids = [], []
        for c in range(CLASSES):
            for _ in range(COUNTS[m]):
                rows.append(pos)
                ids.append(float(pos))
                labels.append(c)
                pos += 1
        pooled = torch.tensor(ids)[:, None].repeat(1, 3)
        modalities[m] = ModalityData(rows=torch.tensor(rows), features={"pooled": pooled})
    return FeatureSet("train", [str(i) for i in range(pos)], torch.tensor(labels), modalities, {})


def sample_of(batch, m) -> torch.Tensor:
    return batch[m]["pooled"][:, 0].long()


def run(strategy, fs, batch_size=4, seed=0, train=True, rr=None, **kw):
    loader = make_loader(strategy, MODS, rr)
    return list(loader(fs, batch_size, torch.Generator().manual_seed(seed), 0, train, **kw))


def test_joint_batches_hold_aligned_tuples_of_every_modality():
    fs = feature_set()
    batches = run("joint", fs)
    assert len(batches) == -(-COUNTS["text"] * CLASSES // 4)  # one pass over the largest
    for b in batches:
        assert set(MODS) <= set(b)
        assert len(b["label"].unique()) == 4  # B <= C: distinct categories, one positive
        for m in MODS:
            assert torch.equal(fs.labels[sample_of(b, m)], b["label"])


def test_small_modalities_are_over_sampled_evenly():
    fs = feature_set()
    used = Counter(int(i) for b in run("joint", fs) for i in sample_of(b, "video"))
    assert len(used) == CLASSES  # every video item is used ...
    assert max(used.values()) - min(used.values()) <= 2  # ... about equally often
    texts = [int(i) for b in run("joint", fs, batch_size=6) for i in sample_of(b, "text")]
    assert len(texts) == len(set(texts)) == COUNTS["text"] * CLASSES  # largest: each once
    texts = {int(i) for b in run("joint", fs, batch_size=4) for i in sample_of(b, "text")}
    assert len(texts) == COUNTS["text"] * CLASSES  # every item seen even when B < C


def test_round_robin_cycles_through_every_pair_each_epoch():
    fs = feature_set()
    for epoch_seed in range(3):
        batches = run("round-robin", fs, seed=epoch_seed)
        pairs = [frozenset(k for k in b if k in MODS) for b in batches]
        assert all(len(p) == 2 for p in pairs)
        everyone = {frozenset(p) for p in [(a, b) for a in MODS for b in MODS if a != b]}
        assert set(pairs) == everyone
        assert set(pairs[:6]) == everyone  # a full cycle before any pair repeats
        for b in batches:
            for m in MODS:
                if m in b:
                    assert torch.equal(fs.labels[sample_of(b, m)], b["label"])


def test_round_robin_schedule_skips_exhausted_groups():
    steps = {("a", "b"): 3, ("a", "c"): 1, ("b", "c"): 2}
    order = [("a", "c"), ("a", "b"), ("b", "c")]
    assert round_robin_schedule(steps, order) == [
        ("a", "c"),
        ("a", "b"),
        ("b", "c"),
        ("a", "b"),
        ("b", "c"),
        ("a", "b"),
    ]


def pairs_of(batches):
    return [tuple(sorted(k for k in b if k in MODS)) for b in batches]


def test_round_robin_epoch_has_the_joint_step_count_shared_equally():
    """Default: as many batches as a joint epoch (30 texts / 4 -> 8), spread over the
    six pairs as evenly as possible (equal weights in eq. 2's mean)."""
    fs = feature_set()
    joint = run("joint", fs)
    for seed in range(4):
        batches = run("round-robin", fs, seed=seed)
        assert len(batches) == len(joint) == 8
        counts = Counter(pairs_of(batches))
        assert len(counts) == 6 and sorted(counts.values()) == [1, 1, 1, 1, 2, 2]


def test_round_robin_pairs_epoch_and_proportional_weights():
    """``steps=pairs, weights=proportional`` (the earlier behaviour): every pair's
    larger modality walked once, so audio-video gets ceil(12/4)=3 batches, text pairs 8."""
    fs = feature_set()
    old = RoundRobin(steps="pairs", weights="proportional")
    counts = Counter(pairs_of(run("round-robin", fs, rr=old)))
    assert counts[("audio", "video")] == 3 and counts[("image", "text")] == 8
    assert sum(counts.values()) == 8 + 8 + 8 + 6 + 6 + 3
    uniform = Counter(pairs_of(run("round-robin", fs, rr=RoundRobin(steps="pairs"))))
    assert sum(uniform.values()) == 39 and set(uniform.values()) <= {6, 7}


def test_block_schedule_trains_one_pair_after_the_other():
    fs = feature_set()
    rr = RoundRobin(steps="pairs", schedule="block")
    seq = pairs_of(run("round-robin", fs, rr=rr))
    changes = sum(a != b for a, b in zip(seq, seq[1:], strict=False))
    assert changes == 5  # six contiguous blocks
    assert len(seq) == 39


def test_apportion_is_exact_and_prefers_earlier_groups_on_ties():
    order = [("a",), ("b",), ("c",)]
    assert apportion(8, dict.fromkeys(order, 1.0), order) == {("a",): 3, ("b",): 3, ("c",): 2}
    assert apportion(10, {("a",): 3.0, ("b",): 1.0, ("c",): 1.0}, order) == {
        ("a",): 6,
        ("b",): 2,
        ("c",): 2,
    }


def test_round_robin_validation_walks_every_pair():
    fs = feature_set()
    counts = Counter(pairs_of(run("round-robin", fs, train=False)))
    assert len(counts) == 6 and counts[("audio", "video")] == 3


def test_batches_larger_than_the_category_count_repeat_categories_evenly():
    b = run("joint", feature_set(), batch_size=14)[0]
    counts = Counter(b["label"].tolist())
    assert len(counts) == CLASSES and set(counts.values()) <= {2, 3}


def test_each_process_takes_its_slice_of_the_same_global_batch():
    fs = feature_set()
    whole = run("round-robin", fs, batch_size=6)
    halves = [run("round-robin", fs, batch_size=6, rank=r, world=2) for r in (0, 1)]
    assert len(halves[0]) == len(halves[1]) == len(whole)
    for w, h0, h1 in zip(whole, halves[0], halves[1], strict=True):
        assert torch.equal(torch.cat([h0["index"], h1["index"]]), w["index"])
        for m in (k for k in w if k in MODS):
            assert torch.equal(torch.cat([sample_of(h0, m), sample_of(h1, m)]), sample_of(w, m))


def test_validation_batches_are_the_same_every_time():
    fs = feature_set()
    first, second = run("joint", fs, train=False), run("joint", fs, train=False)
    assert all(
        torch.equal(a["text"]["pooled"], b["text"]["pooled"])
        for a, b in zip(first, second, strict=True)
    )


def test_a_split_without_labels_is_refused():
    fs = feature_set()
    fs.labels = None
    with pytest.raises(MMAlignError, match="no labels"):
        run("joint", fs)


def test_a_batch_that_does_not_split_evenly_over_processes_is_refused():
    with pytest.raises(MMAlignError, match="not a multiple of the 4 processes"):
        run("joint", feature_set(), batch_size=6, rank=0, world=4)
