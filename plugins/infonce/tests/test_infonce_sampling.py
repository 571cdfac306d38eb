"""Category-aligned tuple batches: alignment, over-sampling, schedules, DDP slices."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest
import torch
from mmalign_infonce.sampling import RoundRobin, apportion, make_loader, round_robin_schedule

from mmalign.data.xmedianet import XMediaNetTask
from mmalign.errors import MMAlignError
from mmalign.features import FeatureSet, ModalityData

MODS = ("text", "image", "audio", "video")
COUNTS = {"text": 5, "image": 4, "audio": 2, "video": 1}  # items per category
CLASSES = 6


def feature_set(absent: dict[str, set[int]] | None = None) -> FeatureSet:
    """One sample per item, one modality per sample; feature 0 stores the item's id.
    ``absent`` names, per modality, categories it has no item of (link rot)."""
    labels, modalities, pos = [], {}, 0
    for m in MODS:
        rows, ids = [], []
        for c in range(CLASSES):
            if c in (absent or {}).get(m, ()):
                continue
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


def test_joint_tuples_use_only_the_categories_every_modality_has():
    """Video has no item of category 5: joint tuples never draw it, in any modality, and
    the joint epoch walks the 25 texts of the other five; round-robin pairs without
    video still draw it (the scenario asymmetry the README documents)."""
    fs = feature_set(absent={"video": {5}})
    joint = run("joint", fs, batch_size=5)
    assert len(joint) == 5
    for b in joint:
        assert sorted(b["label"].tolist()) == [0, 1, 2, 3, 4]  # B = C: each once
        for m in MODS:
            assert torch.equal(fs.labels[sample_of(b, m)], b["label"])
    seen: dict[tuple[str, ...], set[int]] = {}
    for b in run("round-robin", fs, batch_size=5, rr=RoundRobin(steps="pairs")):
        pair = tuple(sorted(k for k in b if k in MODS))
        seen.setdefault(pair, set()).update(b["label"].tolist())
    assert all((5 in cats) == ("video" not in pair) for pair, cats in seen.items())
    assert len(seen) == 6


def test_release_lists_with_one_based_labels_reach_the_tuples_zero_based(tmp_path: Path):
    """The PKU release's flat lists number categories from 1: the reader's labels, and
    so the tuples', are 0-based, and the release's last category (3 of 3) is drawn."""
    root = tmp_path / "x"
    for d in ("list", "text", "image"):
        (root / d).mkdir(parents=True)
    (root / "list" / "categories.txt").write_text("cat\ndog\nbird\n", encoding="utf-8")
    lines: dict[str, list[str]] = {"txt": [], "img": []}
    for c in range(3):
        for i in range(2):
            (root / "text" / f"t{c}{i}.txt").write_text(f"text {c} {i}", encoding="utf-8")
            (root / "image" / f"i{c}{i}.jpg").write_bytes(b"not decoded")
            lines["txt"].append(f"text/t{c}{i}.txt {c + 1}")
            lines["img"].append(f"image/i{c}{i}.jpg {c + 1}")
    for prefix, rows in lines.items():
        (root / "list" / f"{prefix}_train_list.txt").write_text("\n".join(rows) + "\n")
    task = XMediaNetTask(XMediaNetTask.Config(lists="release", valid_fraction=0.0), root)
    data = task.load()
    samples = data.splits["train"]
    assert data.problems == [] and len(samples) == 12
    modalities = {}
    for m in ("text", "image"):
        rows = [p for p, s in enumerate(samples) if m in s.inputs]
        pooled = torch.tensor(rows, dtype=torch.float32)[:, None]
        modalities[m] = ModalityData(rows=torch.tensor(rows), features={"pooled": pooled})
    fs = FeatureSet("train", [s.id for s in samples], torch.tensor([s.label for s in samples]),
                    modalities, {})
    loader = make_loader("joint", ("text", "image"))
    for b in loader(fs, 3, torch.Generator().manual_seed(0), 0, True):
        assert sorted(b["label"].tolist()) == [0, 1, 2]
        for m in ("text", "image"):
            ids = [samples[int(p)].id for p in b[m]["pooled"][:, 0]]
            # t20.txt / i21.jpg are listed with label 3: category index 2
            assert [int(Path(i).stem[1]) for i in ids] == b["label"].tolist()


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


def first_seen(seq: list) -> list:
    """The epoch's pair order: each pair where it first appears."""
    return list(dict.fromkeys(seq))


TEXT_PAIRS = [("image", "text"), ("audio", "text"), ("text", "video")]
#: batches per pair when its larger modality is walked once (B = 4): 30 texts, 24
#: images, 12 audio clips
PAIR_STEPS = {**dict.fromkeys(TEXT_PAIRS, 8), ("audio", "image"): 6, ("image", "video"): 6,
              ("audio", "video"): 3}


def test_round_robin_epoch_has_the_joint_step_count_shared_equally():
    """Default: as many batches as a joint epoch (30 texts / 4 -> 8), shared equally
    by the six pairs (eq. 2's uniform mean): one each in the epoch's shuffled order,
    then the two left over to the first two pairs of that order."""
    fs = feature_set()
    joint = run("joint", fs)
    loader = make_loader("round-robin", MODS)
    orders = set()
    for seed in range(4):
        seq = pairs_of(run("round-robin", fs, seed=seed))
        order = first_seen(seq)
        assert len(joint) == loader.batches_per_epoch(fs, 4) == 8
        assert len(order) == 6 and seq == order + order[:2]
        orders.add(tuple(order))
    assert len(orders) > 1  # the order is reshuffled every epoch


def test_round_robin_pairs_epoch_and_proportional_weights():
    """``steps=pairs, weights=proportional`` (the earlier behaviour): every pair's
    larger modality walked once, so audio-video gets ceil(12/4)=3 batches, text pairs 8;
    ``steps=pairs`` alone shares those 39 batches equally (7 to the first three pairs
    of the order, 6 to the rest)."""
    fs = feature_set()
    old = RoundRobin(steps="pairs", weights="proportional")
    assert Counter(pairs_of(run("round-robin", fs, rr=old))) == PAIR_STEPS
    assert make_loader("round-robin", MODS, old).batches_per_epoch(fs, 4) == 39
    seq = pairs_of(run("round-robin", fs, rr=RoundRobin(steps="pairs")))
    order = first_seen(seq)
    assert [Counter(seq)[p] for p in order] == [7, 7, 7, 6, 6, 6]


def test_proportional_weights_at_the_joint_step_count_use_largest_remainders():
    """8 batches in proportion to 8:8:8:6:6:3 (of 39): floors 1,1,1,1,1,0 and the three
    largest remainders (8*8/39 = 1.64 beats 8*3/39 = 0.62) to the text pairs, so a
    short proportional epoch can leave audio-video out."""
    fs = feature_set()
    for seed, schedule in itertools.product(range(3), ("interleaved", "block")):
        rr = RoundRobin(weights="proportional", schedule=schedule)
        counts = Counter(pairs_of(run("round-robin", fs, seed=seed, rr=rr)))
        assert counts == {**dict.fromkeys(TEXT_PAIRS, 2), ("audio", "image"): 1,
                          ("image", "video"): 1}


def test_block_schedule_trains_one_pair_after_the_other():
    """The block-wise reading of the paper's round-robin: each pair's batches in one
    contiguous block, the blocks in the epoch's order, each as long as interleaving
    would give that pair."""
    fs = feature_set()
    for seed in range(3):
        seq = pairs_of(run("round-robin", fs, seed=seed, rr=RoundRobin(schedule="block")))
        order = first_seen(seq)
        assert seq == [p for p, n in zip(order, [2, 2, 1, 1, 1, 1], strict=True)
                       for _ in range(n)]
        rr = RoundRobin(steps="pairs", weights="proportional", schedule="block")
        seq = pairs_of(run("round-robin", fs, seed=seed, rr=rr))
        assert seq == [p for p in first_seen(seq) for _ in range(PAIR_STEPS[p])]


def test_apportion_is_exact_and_prefers_earlier_groups_on_ties():
    order = [("a",), ("b",), ("c",)]
    assert apportion(8, dict.fromkeys(order, 1.0), order) == {("a",): 3, ("b",): 3, ("c",): 2}
    assert apportion(10, {("a",): 3.0, ("b",): 1.0, ("c",): 1.0}, order) == {
        ("a",): 6,
        ("b",): 2,
        ("c",): 2,
    }


def test_round_robin_validation_walks_every_pair():
    """Validation walks every pair's larger modality once, whatever the training
    schedule: the same 39 batches each time."""
    fs = feature_set()
    for rr in (None, RoundRobin(weights="proportional", schedule="block")):
        assert Counter(pairs_of(run("round-robin", fs, train=False, rr=rr))) == PAIR_STEPS


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
