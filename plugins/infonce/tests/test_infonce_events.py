"""Event tuples: every batch row is one event in every modality (synth-events' premise)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath

import pytest
import torch
from mmalign_infonce.sampling import RoundRobin, make_loader

from mmalign.data.synth.events import SynthEvents, SynthEventsConfig
from mmalign.errors import MMAlignError
from mmalign.features import FeatureSet, ModalityData
from mmalign.interfaces import INSTANCE, Sample

MODS = ("text", "image", "audio", "video")
CLASSES, EVENTS = 6, 5
#: events (of each category) a modality has a view of: audio and video lack some
HAS = {"text": range(5), "image": range(5), "audio": range(3), "video": range(2)}


def event_feature_set(has=None, instances=True) -> FeatureSet:
    """One sample per view, one modality per sample; feature 0 is the sample position,
    the instance id is ``"{category}_{event}"``."""
    has = HAS if has is None else has
    ids, labels, events, modalities = [], [], [], {}
    for m in MODS:
        rows = []
        for c in range(CLASSES):
            for e in has[m]:
                rows.append(len(ids))
                ids.append(f"{m}/{c:03d}_{e:03d}")
                labels.append(c)
                events.append(f"{c:03d}_{e:03d}")
        pooled = torch.tensor(rows, dtype=torch.float32)[:, None].repeat(1, 3)
        modalities[m] = ModalityData(rows=torch.tensor(rows), features={"pooled": pooled})
    return FeatureSet("train", ids, torch.tensor(labels), modalities, {},
                      instances=events if instances else None)


def positions(batch, m) -> list[int]:
    return batch[m]["pooled"][:, 0].long().tolist()


def run(fs, strategy="joint", tuples="event", batch_size=4, seed=0, train=True, **kw):
    loader = make_loader(strategy, MODS, None, tuples)
    return list(loader(fs, batch_size, torch.Generator().manual_seed(seed), 0, train, **kw))


def test_every_row_of_a_joint_batch_is_one_event_in_all_four_modalities():
    fs = event_feature_set()
    assert fs.instances is not None
    batches = run(fs)
    # two events per category have all four views: 12 rows of video, 3 batches of 4
    assert len(batches) == 3
    seen = set()
    for b in batches:
        rows = {m: positions(b, m) for m in MODS}
        for i in range(4):
            views = {fs.instances[rows[m][i]] for m in MODS}
            assert len(views) == 1  # the same event in text, image, audio and video
            event = views.pop()
            assert int(event[:3]) == int(b["label"][i])  # the label is its category
            assert int(event[-3:]) < 2  # only events that every modality has
            seen.add(event)
        assert len(b["label"].unique()) == 4  # B <= C: events of distinct categories
    assert len(seen) == 12  # every complete event is used in the epoch


def test_round_robin_pairs_use_every_event_both_modalities_have():
    fs = event_feature_set()
    loader = make_loader("round-robin", MODS, None, "event")
    events_of: dict[tuple[str, ...], set[str]] = {}
    for b in loader(fs, 6, torch.Generator().manual_seed(1), 0, False):
        pair = tuple(m for m in MODS if m in b)
        assert len(pair) == 2
        a, c = (positions(b, m) for m in pair)
        assert [fs.instances[x] for x in a] == [fs.instances[y] for y in c]
        events_of.setdefault(pair, set()).update(fs.instances[x] for x in a)
    # validation walks every pair once: text-image has all 30 events, audio-video 12
    assert len(events_of[("text", "image")]) == 30
    assert len(events_of[("audio", "video")]) == 12
    assert len(events_of[("text", "audio")]) == 18


def test_joint_and_round_robin_take_equal_steps_in_both_tuple_modes():
    """With every event in every modality an epoch has the same step count whether
    tuples are drawn by category or by event, joint or round-robin."""
    fs = event_feature_set(has=dict.fromkeys(MODS, range(EVENTS)))
    counts = {(s, t): len(run(fs, s, t, seed=3)) for s in ("joint", "round-robin")
              for t in ("category", "event")}
    assert set(counts.values()) == {-(-CLASSES * EVENTS // 4)}  # ceil(30 / 4) = 8
    pairs = Counter(tuple(m for m in MODS if m in b) for b in run(fs, "round-robin", seed=3))
    assert len(pairs) == 6 and sorted(pairs.values()) == [1, 1, 1, 1, 2, 2]


@pytest.mark.parametrize(
    ("strategy", "pairs", "tuples", "expected"),
    [
        ("joint", False, "category", 8),  # ceil(30 texts / 4)
        ("joint", False, "event", 3),  # ceil(12 complete events / 4)
        ("round-robin", False, "category", 8),  # the joint step count
        ("round-robin", False, "event", 3),
        ("round-robin", True, "category", 8 * 5 + 5),  # audio-video: ceil(18 / 4)
        ("round-robin", True, "event", 8 + 5 + 3 + 5 + 3 + 3),  # events per pair: 30 18 12 ...
    ],
)
def test_the_loader_tells_the_runner_its_epoch_length(strategy, pairs, tuples, expected):
    fs = event_feature_set()
    rr = RoundRobin(steps="pairs", weights="proportional") if pairs else None
    loader = make_loader(strategy, MODS, rr, tuples)
    batches = list(loader(fs, 4, torch.Generator().manual_seed(0), 0, True))
    assert loader.batches_per_epoch(fs, 4, False) == len(batches) == expected


def test_the_tuple_id_is_the_event_and_repeats_only_with_it():
    fs = event_feature_set()
    for b in run(fs, batch_size=14):  # B > C: categories (and events) repeat
        text = positions(b, "text")
        for i in range(14):
            for j in range(14):
                same_event = fs.instances[text[i]] == fs.instances[text[j]]
                assert same_event == bool(b["index"][i] == b["index"][j])


def test_each_process_takes_its_slice_of_the_same_event_batch():
    fs = event_feature_set()
    whole = run(fs, batch_size=4)
    halves = [run(fs, batch_size=4, rank=r, world=2) for r in (0, 1)]
    for w, h0, h1 in zip(whole, *halves, strict=True):
        for m in MODS:
            assert positions(h0, m) + positions(h1, m) == positions(w, m)


def test_a_split_without_instance_ids_is_refused_by_name():
    with pytest.raises(MMAlignError, match="split 'train' has no instance ids"):
        run(event_feature_set(instances=False))
    fs = event_feature_set()
    assert fs.instances is not None
    fs.instances[fs.modalities["audio"].rows[0]] = None
    with pytest.raises(MMAlignError, match="1 'audio' rows have no instance id"):
        run(fs)


def test_views_of_one_event_with_different_categories_are_refused():
    fs = event_feature_set()
    assert fs.labels is not None
    fs.labels[int(fs.modalities["video"].rows[0])] = 5
    with pytest.raises(MMAlignError, match="event '000_000' have different categories"):
        run(fs)


@pytest.fixture(scope="module")
def tiny_events(tmp_path_factory) -> SynthEvents:
    task = SynthEvents(SynthEventsConfig(train_events=1, valid_events=1, test_events=1),
                       tmp_path_factory.mktemp("events"))
    task.prepare()
    return task


def samples_feature_set(split: str, samples: list[Sample]) -> FeatureSet:
    """The split's samples as the runner lays them out; feature 0 is the position."""
    modalities = {}
    for m in MODS:
        rows = [p for p, s in enumerate(samples) if m in s.inputs]
        pooled = torch.tensor(rows, dtype=torch.float32)[:, None].repeat(1, 2)
        modalities[m] = ModalityData(rows=torch.tensor(rows), features={"pooled": pooled})
    return FeatureSet(split, [s.id for s in samples], torch.tensor([s.label for s in samples]),
                      modalities, {}, instances=[s.meta.get(INSTANCE) for s in samples])


def test_synth_events_files_of_one_event_are_drawn_as_one_tuple(tiny_events):
    assert tiny_events.instances == "event"
    data = tiny_events.load()
    train = data.splits["train"]
    # the reader names each sample's event after its file, shared by its four views
    views = Counter(s.meta[INSTANCE] for s in train)
    assert len(views) == 100 and set(views.values()) == {4}
    for s in train:
        assert s.meta[INSTANCE] == PurePosixPath(s.id).stem
        assert int(s.meta[INSTANCE][:3]) == s.label
    fs = samples_feature_set("train", train)
    batches = run(fs, batch_size=64)
    assert len(batches) == 2  # ceil(100 events / 64), as a category epoch
    for b in batches:
        paths = {m: [train[p].id for p in positions(b, m)] for m in MODS}
        for i in range(64):
            names = {Path(paths[m][i]).stem for m in MODS}
            assert len(names) == 1  # text/x.txt, image/x.jpg, audio/x.wav, video/x.mp4
        assert len(b["label"].unique()) == 64


def test_category_tuples_on_synth_events_mix_events(tiny_events):
    """The ablation: category tuples take each modality's item independently, so with
    one event per category in train the views still agree, but in a split of several
    events per category (validation + test together) they mostly do not."""
    data = tiny_events.load()
    both = data.splits["validation"] + data.splits["test"]
    fs = samples_feature_set("both", both)
    assert fs.instances is not None
    same = [
        len({fs.instances[positions(b, m)[i]] for m in MODS}) == 1
        for b in run(fs, tuples="category", batch_size=50)
        for i in range(50)
    ]
    assert sum(same) / len(same) < 0.5  # 1/8 expected: each of 3 views matches w.p. 1/2
    assert all(
        len({fs.instances[positions(b, m)[i]] for m in MODS}) == 1
        for b in run(fs, tuples="event", batch_size=50)
        for i in range(50)
    )


def test_feature_sets_keep_each_kept_samples_instance_id():
    from mmalign.features import build_feature_set
    from mmalign.toys import ToyVectorEncoder

    good = [0.1] * 8
    samples = [
        Sample("t0", {"text": good}, 0, {INSTANCE: "e0"}),
        Sample("t1", {"text": [float("nan")] * 8}, 0, {INSTANCE: "e1"}),  # skipped
        Sample("i0", {"image": good}, 0, {INSTANCE: "e0"}),
        Sample("i2", {"image": good}, 1, {INSTANCE: "e2"}),
    ]
    enc = {m: ToyVectorEncoder() for m in ("text", "image")}
    fs = build_feature_set("train", samples, enc, dict.fromkeys(enc, True), "k", use_cache=False)
    assert fs.sample_ids == ["t0", "i0", "i2"] and fs.instances == ["e0", "e0", "e2"]
    plain = [Sample(s.id, s.inputs, s.label) for s in samples]
    fs = build_feature_set("train", plain, enc, dict.fromkeys(enc, True), "k", use_cache=False)
    assert fs.instances is None


def test_disjoint_round_robin_deals_every_event_to_one_pair():
    fs = event_feature_set(has=dict.fromkeys(MODS, range(EVENTS)))
    disjoint = make_loader("round-robin", MODS, RoundRobin(events="disjoint"), "event")
    shared = make_loader("round-robin", MODS, None, "event")
    pairs_of: dict[str, set[tuple[str, ...]]] = {}
    for epoch in range(6):
        g = torch.Generator().manual_seed(epoch)
        batches = list(disjoint(fs, 4, g, epoch, True))
        assert len(batches) == disjoint.batches_per_epoch(fs, 4) == 8  # the joint count
        for b in batches:
            pair = tuple(m for m in MODS if m in b)
            a, c = (positions(b, m) for m in pair)
            assert [fs.instances[x] for x in a] == [fs.instances[y] for y in c]
            for x in a:
                pairs_of.setdefault(fs.instances[x], set()).add(pair)
    assert set(map(len, pairs_of.values())) == {1}  # each event only ever in one pair
    share = Counter(next(iter(p)) for p in pairs_of.values())
    assert len(share) == 6 and set(share.values()) == {5}  # 30 events, 5 per pair
    seen: dict[str, set[tuple[str, ...]]] = {}
    for epoch in range(6):
        for b in shared(fs, 4, torch.Generator().manual_seed(epoch), epoch, True):
            pair = tuple(m for m in MODS if m in b)
            for x in positions(b, pair[0]):
                seen.setdefault(fs.instances[x], set()).add(pair)
    assert max(map(len, seen.values())) > 1  # shared: an event is drawn by several pairs
    # validation walks every pair over all events, dealt or not
    val = list(disjoint(fs, 6, torch.Generator().manual_seed(0), 0, False))
    text_image = {fs.instances[x] for b in val if "text" in b and "image" in b
                  for x in positions(b, "text")}
    assert len(text_image) == 30
