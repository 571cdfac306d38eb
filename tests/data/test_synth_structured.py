"""The structured embedded tasks: real readers, knobs that do what they say, determinism."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmalign.data.check import check_task
from mmalign.data.mvsa import LABELS
from mmalign.data.synth.clash import SynthClash, SynthClashConfig
from mmalign.data.synth.events import SynthEvents, SynthEventsConfig
from mmalign.data.synth.scenes import SynthScenes, SynthScenesConfig, place_name
from mmalign.data.synth.speakers import SynthSpeakers, SynthSpeakersConfig
from mmalign.data.synth.structure import read_truth
from mmalign.data.synth.where import SynthWhere, SynthWhereConfig, parse_layout


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_presets_fill_unset_knobs_and_explicit_values_win() -> None:
    control = SynthClashConfig(structure="control")
    assert (control.shared, control.contradiction) == (0.0, 0.0)
    premise = SynthClashConfig()
    assert (premise.shared, premise.contradiction) == (1.0, 0.25)
    mixed = SynthClashConfig(structure="control", contradiction=0.4)
    assert (mixed.shared, mixed.contradiction) == (0.0, 0.4)
    with pytest.raises(ValueError, match="structure"):
        SynthClashConfig(structure="nonsense")


def test_clash_contradiction_rate_and_shared_objects_match_the_knobs(tmp_path: Path) -> None:
    task = SynthClash(SynthClashConfig(pairs=400, contradiction=0.4, shared=1.0), tmp_path)
    task.prepare()
    data = task.load()
    assert data.problems == []
    truth = {int(r["id"]): r for r in read_truth(task.root)}
    kept = [truth[int(s.id)] for split in data.splits.values() for s in split]
    polar = [r for r in kept if r["label"] != "neutral"]
    rate = np.mean([r["contradicts"] == "1" for r in polar])
    assert abs(rate - 0.4) < 3 * np.sqrt(0.4 * 0.6 / len(polar))
    # a contradicting pair is kept, its image shows the opposite of its (caption's) label
    for r in polar:
        if r["contradicts"] == "1":
            assert {r["image_content"], r["label"]} == {"positive", "negative"}
            assert r["text_content"] == r["label"]
    # every kept caption names the object its image shows
    sample = data.splits["train"][0]
    row = truth[int(sample.id)]
    assert row["text_object"] == row["image_object"]
    assert row["text_object"].lower() in sample.inputs["text"].lower()
    with Image.open(sample.inputs["image"]) as img:
        assert img.format == "JPEG" and img.size == (200, 200)


def test_clash_image_decides_relabels_only_contradicting_pairs_of_its_colours(
    tmp_path: Path,
) -> None:
    """``image_decides`` changes labels, never the drawn pairs: the same captions and
    images as with 0, and only contradicting pairs of the first colours follow the image."""
    base = SynthClash(SynthClashConfig(pairs=300, contradiction=0.4), tmp_path / "base")
    half = SynthClash(SynthClashConfig(pairs=300, contradiction=0.4, image_decides=0.5),
                      tmp_path / "half")
    for t in (base, half):
        t.prepare()
    for name in ("data/7.txt", "data/7.jpg", "data/123.jpg"):
        assert (base.root / name).read_bytes() == (half.root / name).read_bytes()
    before = {r["id"]: r for r in read_truth(base.root)}
    deciding = {"red", "green", "blue"}  # the first half of the six object colours
    flipped = 0
    for r in read_truth(half.root):
        b = before[r["id"]]
        colour = r["image_object"].split()[0]
        if r["contradicts"] == "1" and colour in deciding:
            assert r["decided_by"] == "image" and r["label"] == r["image_content"]
            assert r["label"] != r["text_content"]
            flipped += 1
        else:
            assert r["decided_by"] == "text" and r["label"] == b["label"]
    assert flipped > 10
    # both annotations carry the deciding side, so the reader keeps the pair with the
    # image's label (bar the 5% annotation noise per annotator)
    truth = {int(r["id"]): r for r in read_truth(half.root)}
    read = [(truth[int(x.id)], LABELS[x.label]) for v in half.load().splits.values() for x in v]
    image_decided = [(r, label) for r, label in read if r["decided_by"] == "image"]
    assert len(image_decided) >= 0.8 * flipped
    assert np.mean([label == r["image_content"] for r, label in image_decided]) > 0.85


def test_clash_control_shares_only_the_label(tmp_path: Path) -> None:
    task = SynthClash(SynthClashConfig(structure="control", pairs=300), tmp_path)
    task.prepare()
    rows = read_truth(task.root)
    assert not any(r["contradicts"] == "1" for r in rows)
    same = np.mean([r["text_object"] == r["image_object"] for r in rows])
    assert same < 0.12  # chance is 1/24 for independent objects


def test_clash_is_deterministic_and_checks_clean(tmp_path: Path) -> None:
    a = SynthClash(SynthClashConfig(pairs=30, seed=3), tmp_path / "a")
    b = SynthClash(SynthClashConfig(pairs=30, seed=3), tmp_path / "b")
    c = SynthClash(SynthClashConfig(pairs=30, seed=4), tmp_path / "c")
    for t in (a, b, c):
        t.prepare()
    assert digest(a.root) == digest(b.root) != digest(c.root)
    report = check_task(a)
    assert report["problems"] == [] and report["samples"] > 20


@pytest.fixture(scope="module")
def speakers(tmp_path_factory: pytest.TempPathFactory) -> SynthSpeakers:
    task = SynthSpeakers(SynthSpeakersConfig(videos=40), tmp_path_factory.mktemp("spk"))
    task.prepare()
    return task


def test_speakers_pickle_is_read_by_the_mmsa_reader(speakers: SynthSpeakers) -> None:
    data = speakers.load()
    assert data.problems == []
    sizes = {k: len(v) for k, v in data.splits.items()}
    assert sum(sizes.values()) == 40 * 7
    with (speakers.root / "unaligned_50.pkl").open("rb") as fh:
        raw = pickle.load(fh)
    assert set(raw) == {"train", "valid", "test"}
    assert raw["train"]["audio"].shape[1:] == (64, 16) and raw["train"]["vision"].shape[2] == 20
    # splits are by video: no video id straddles two splits
    videos = {s: {x.id.split("$_$")[0] for x in v} for s, v in data.splits.items()}
    assert not (videos["train"] & videos["test"]) and not (videos["train"] & videos["validation"])


def test_speakers_recurring_clips_are_near_duplicate_neighbours(speakers: SynthSpeakers) -> None:
    """Clean clips' nearest neighbour in audio-feature space is from the same video."""
    data = speakers.load()
    truth = {r["id"]: r for r in read_truth(speakers.root)}
    clean = [x for x in data.splits["train"] if truth[x.id]["audio_state"] == "clean"]
    feats = np.stack([np.asarray(x.inputs["audio"]).mean(0) for x in clean])
    dist = ((feats[:, None] - feats[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    videos = np.array([x.id.split("$_$")[0] for x in clean])
    assert (videos[dist.argmin(1)] == videos).mean() > 0.9
    cue = np.array([float(truth[x.id]["audio_cue"]) for x in clean])
    assert np.abs(cue[dist.argmin(1)] - cue).mean() < 0.25 * np.abs(cue[:, None] - cue).mean()


def test_speakers_corruption_rate_and_control(speakers: SynthSpeakers, tmp_path: Path) -> None:
    rows = read_truth(speakers.root)
    states = [r[k] for r in rows for k in ("audio_state", "video_state")]
    rate = np.mean([s != "clean" for s in states])
    assert abs(rate - 0.3) < 3 * np.sqrt(0.3 * 0.7 / len(states))
    data = speakers.load()
    by_id = {x.id: x for v in data.splits.values() for x in v}
    missing = next(r for r in rows if r["audio_state"] == "missing")
    assert not np.asarray(by_id[missing["id"]].inputs["audio"]).any()
    control = SynthSpeakers(SynthSpeakersConfig(structure="control", videos=60), tmp_path)
    control.prepare()
    crows = read_truth(control.root)
    assert len({r["id"].split("$_$")[0] for r in crows}) == len(crows) == 60
    assert all(r["audio_state"] == r["video_state"] == "clean" for r in crows)


@pytest.mark.slow
def test_events_share_one_latent_across_four_modalities(tmp_path: Path) -> None:
    cfg = SynthEventsConfig(train_events=1, valid_events=1, test_events=5)
    task = SynthEvents(cfg, tmp_path)
    task.prepare()
    data = task.load()
    assert data.problems == [] and len(task.data_label_names() or []) == 100
    test = data.splits["test"]
    for m in ("text", "image", "audio", "video"):
        counts = np.bincount([x.label for x in test if x.meta["modality"] == m], minlength=100)
        assert counts.min() >= 5
    rows = read_truth(task.root)
    by_event: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_event.setdefault(r["event"], []).append(r)
    assert all(len(v) == 4 for v in by_event.values())
    keys = ("place", "large", "bg", "dir")
    assert all(len({tuple(r[k] for k in keys) for r in v}) == 1 for v in by_event.values())
    # the caption states the latent that the other three views render
    event = by_event["042_003"]
    text = (task.root / "text" / "042_003.txt").read_text()
    assert event[0]["place"] in text and event[0]["dir"] in text and event[0]["bg"] in text


def test_events_control_decouples_and_is_deterministic(tmp_path: Path) -> None:
    small = {"train_events": 1, "valid_events": 0, "test_events": 1}
    ctrl = SynthEvents(SynthEventsConfig(structure="control", **small), tmp_path / "a")
    again = SynthEvents(SynthEventsConfig(structure="control", **small), tmp_path / "b")
    for t in (ctrl, again):
        t.prepare()
    assert digest(ctrl.root) == digest(again.root)
    rows = read_truth(ctrl.root)
    assert not any(r["coupled"] == "1" for r in rows)
    by_event: dict[str, set[tuple[str, ...]]] = {}
    for r in rows:
        by_event.setdefault(r["event"], set()).add((r["place"], r["large"], r["bg"], r["dir"]))
    assert np.mean([len(v) > 1 for v in by_event.values()]) > 0.9


def test_scenes_captions_name_objects_and_places(tmp_path: Path) -> None:
    premise = SynthScenes(SynthScenesConfig(images=30), tmp_path / "p")
    control = SynthScenes(SynthScenesConfig(structure="control", images=30), tmp_path / "c")
    for t in (premise, control):
        t.prepare()
    places = ("top left", "top centre", "top right", "middle left", "centre", "middle right",
              "bottom left", "bottom centre", "bottom right")  # fmt: skip
    p_data, c_data = premise.load(), control.load()
    assert p_data.problems == c_data.problems == []
    truth = {int(r["image_id"]): r for r in read_truth(premise.root)}
    for s in p_data.splits["train"]:
        for obj in truth[s.meta["image_id"]]["layout"].split(";"):
            what, cell = obj.rsplit("@", 1)
            assert what in s.inputs["text"] and places[int(cell)] in s.inputs["text"]
    for s in c_data.splits["train"]:
        assert not any(p in s.inputs["text"] for p in places)
    # the same seed draws the same scenes; only the captions differ
    a = sorted((premise.root / "train2017").iterdir())[0].read_bytes()
    b = sorted((control.root / "train2017").iterdir())[0].read_bytes()
    assert a == b


def test_where_statements_hold_or_fail_as_labelled(tmp_path: Path) -> None:
    """Each caption's claim, checked against the layout the image was drawn from, is
    what its label says; false and true claims name a shape the image shows."""
    task = SynthWhere(SynthWhereConfig(pairs=300), tmp_path)
    task.prepare()
    data = task.load()
    assert data.problems == []
    truth = {int(r["id"]): r for r in read_truth(task.root)}
    kinds = {"true": 0, "false": 0, "absent": 0}
    for sample in (s for split in data.splits.values() for s in split):
        row = truth[int(sample.id)]
        colour, shape, cell = parse_layout(row["named"])[0]
        shown = parse_layout(row["layout"])
        caption = sample.inputs["text"].lower()
        assert f"{colour} {shape}" in caption and place_name(cell) in caption
        at_place = (colour, shape, cell) in shown
        present = any((c, s) == (colour, shape) for c, s, _ in shown)
        expected = "true" if at_place else ("false" if present else "absent")
        assert row["statement"] == expected
        assert LABELS[sample.label] == {"true": "positive", "false": "negative",
                                        "absent": "neutral"}[expected]
        kinds[expected] += 1
    n = sum(kinds.values())
    assert abs(kinds["false"] / n - 0.4) < 0.1 and abs(kinds["absent"] / n - 0.2) < 0.08


def test_where_places_do_not_give_the_label_away(tmp_path: Path) -> None:
    """True and false claims state places drawn alike, so the caption alone cannot tell
    them apart (its named place's distribution is near-equal under both labels)."""
    task = SynthWhere(SynthWhereConfig(pairs=900, absent_share=0.0, false_share=0.5), tmp_path)
    task.prepare()
    rows = read_truth(task.root)
    by_kind = {k: np.bincount([parse_layout(r["named"])[0][2] for r in rows
                               if r["statement"] == k], minlength=9) for k in ("true", "false")}
    p, q = (v / v.sum() for v in by_kind.values())
    assert 0.5 * np.abs(p - q).sum() < 0.12  # total variation distance


def test_where_is_deterministic_and_refuses_impossible_shares(tmp_path: Path) -> None:
    a = SynthWhere(SynthWhereConfig(pairs=20, seed=1), tmp_path / "a")
    b = SynthWhere(SynthWhereConfig(pairs=20, seed=1), tmp_path / "b")
    for t in (a, b):
        t.prepare()
    assert digest(a.root) == digest(b.root)
    with pytest.raises(ValueError, match="false_share \\+ absent_share"):
        SynthWhereConfig(false_share=0.7, absent_share=0.4)
