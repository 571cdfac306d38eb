"""MMSA and CMU-SDK pickles: layouts, padding position, lengths, repairs, errors.

Fixtures are written in the true on-disk formats: MMSA's ``unaligned_50.pkl`` /
``aligned_50.pkl`` (back-padded, lengths recorded or given by the BERT mask) and
the CMU-SDK / MulT ``*_noalign.pkl`` (front-padded, no lengths, GloVe text, labels
[N, 1, 1], byte ids) with MMSA's ``label.csv`` for the words.
"""

from __future__ import annotations

import csv
import logging
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmalign.data.check import check_task
from mmalign.data.mmsa import CMUMOSI, MMSAConfig, URFunny
from mmalign.errors import DataError

TA, DA, TV, DV = 6, 3, 5, 4


def padded(rng: np.random.Generator, lengths: Any, t: int, d: int, front: bool) -> np.ndarray:
    """Non-zero frames, ``lengths[i]`` of them per clip, zero rows elsewhere."""
    out = np.zeros((len(lengths), t, d), dtype=np.float32)
    for i, n in enumerate(lengths):
        n = min(int(n), t)
        frames = rng.uniform(0.5, 1.5, size=(n, d)).astype(np.float32)
        if front:
            out[i, t - n :] = frames
        else:
            out[i, :n] = frames
    return out


def split(n: int, prefix: str, seed: int, front: bool = False) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    a_len, v_len = np.full(n, 4), np.full(n, 3)
    return {
        "raw_text": np.array([f"{prefix} clip {i}" for i in range(n)], dtype=object),
        "audio": padded(rng, a_len, TA, DA, front),
        "vision": padded(rng, v_len, TV, DV, front),
        "text_bert": np.zeros((n, 3, 8), dtype=np.int64),
        "audio_lengths": a_len,
        "vision_lengths": v_len,
        "regression_labels": np.linspace(-2, 2, n).astype(np.float32),
        "id": np.array([f"{prefix}{i}$_$0" for i in range(n)], dtype=object),
    }


def mosi_pickle() -> dict[str, Any]:
    data = {"train": split(4, "tr", 0), "valid": split(2, "va", 1), "test": split(3, "te", 2)}
    data["train"]["audio_lengths"][1] = 0  # no audio
    data["train"]["audio"][1] = 0
    data["train"]["audio"][2, 0, 0] = -np.inf  # COVAREP-style: zeroed, counted
    data["train"]["vision"][2, 1, 1] = np.nan
    data["train"]["raw_text"][3] = "  "
    data["valid"]["vision_lengths"][0] = 9  # recorded before truncation: clamped to 5
    data["test"]["regression_labels"][2] = np.nan
    return data


def write(root: Path, obj: Any, name: str = "unaligned_50.pkl") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / name).open("wb") as fh:
        pickle.dump(obj, fh)
    return root


def test_samples_trimmed_and_problems(tmp_path: Path, caplog: Any) -> None:
    raw = mosi_pickle()
    with caplog.at_level(logging.WARNING, logger="mmalign.data"):
        data = CMUMOSI(data_dir=write(tmp_path / "mosi", raw)).load()
    assert {k: [s.id for s in v] for k, v in data.splits.items()} == {
        "train": ["tr0$_$0", "tr2$_$0"],
        "validation": ["va0$_$0", "va1$_$0"],
        "test": ["te0$_$0", "te1$_$0"],
    }
    first = data.splits["train"][0]
    assert first.inputs["text"] == "tr clip 0"
    assert first.inputs["audio"].dtype == np.float32 and first.inputs["audio"].shape == (4, DA)
    np.testing.assert_array_equal(first.inputs["audio"], raw["train"]["audio"][0, :4])
    assert first.inputs["video"].shape == (3, DV)
    assert first.label == pytest.approx(-2.0)
    repaired = data.splits["train"][1]
    assert np.isfinite(repaired.inputs["audio"]).all() and repaired.inputs["audio"][0, 0] == 0
    clamped = data.splits["validation"][0].inputs["video"]
    np.testing.assert_array_equal(clamped, raw["valid"]["vision"][0])  # all 5 stored steps
    assert data.repaired == {"features_nonfinite_zeroed": 2, "lengths_clamped_to_sequence": 1}
    assert data.problems == [
        {"file": "unaligned_50.pkl", "error": "train[1] id tr1$_$0: audio_lengths 0: no frame"},
        {"file": "unaligned_50.pkl", "error": "train[3] id tr3$_$0: empty raw_text"},
        {"file": "unaligned_50.pkl", "error": "test[2] id te2$_$0: regression_label nan"},
    ]
    warnings = [r.getMessage() for r in caplog.records]
    assert "unaligned_50.pkl: train: dropped 2 of 4 clips" in warnings[0]
    assert "unaligned_50.pkl: valid: 1 recorded lengths exceed the stored sequence" in warnings[1]
    assert "unaligned_50.pkl: test: dropped 1 of 3 clips" in warnings[2]


def test_front_padded_mmsa_file_is_detected_and_read_from_the_end(tmp_path: Path) -> None:
    """A pickle with recorded lengths whose real frames sit at the end (the CMU-SDK
    convention) must not be read as if padded at the back."""
    raw = {
        s: split(n, s, i, front=True)
        for i, (s, n) in enumerate([("train", 4), ("valid", 2), ("test", 3)])
    }
    data = CMUMOSI(data_dir=write(tmp_path / "mosi", raw)).load()
    got = data.splits["train"][0].inputs
    np.testing.assert_array_equal(got["audio"], raw["train"]["audio"][0, TA - 4 :])
    np.testing.assert_array_equal(got["video"], raw["train"]["vision"][0, TV - 3 :])
    assert (got["audio"] != 0).all()  # no padding row among the frames


def test_declared_padding_overrides_detection(tmp_path: Path) -> None:
    raw = {
        s: split(n, s, i, front=True)
        for i, (s, n) in enumerate([("train", 4), ("valid", 2), ("test", 3)])
    }
    task = CMUMOSI(MMSAConfig(padding="back"), data_dir=write(tmp_path / "mosi", raw))
    got = task.load().splits["train"][0].inputs["audio"]
    np.testing.assert_array_equal(got, raw["train"]["audio"][0, :4])  # what was declared


@pytest.mark.parametrize(
    "damage",
    [
        # the padding holds values: neither end is zero
        lambda d: [d[s]["audio"].__setitem__((slice(None), slice(4, None)), 0.7) for s in d],
        # half the clips padded at the front, half at the back
        lambda d: d["train"].update(
            audio=np.concatenate([d["train"]["audio"][:2], d["train"]["audio"][2:, ::-1]], axis=0),
            vision=np.concatenate(
                [d["train"]["vision"][:2], d["train"]["vision"][2:, ::-1]], axis=0
            ),
        ),
    ],
    ids=["padding-not-zero", "mixed-ends"],
)
def test_undeterminable_padding_is_refused(tmp_path: Path, damage: Any) -> None:
    raw = {s: split(n, s, i) for i, (s, n) in enumerate([("train", 4), ("valid", 2), ("test", 3)])}
    damage(raw)
    task = CMUMOSI(data_dir=write(tmp_path / "mosi", raw))
    with pytest.raises(DataError, match=r"unaligned_50.pkl: cannot tell where the padding is"):
        task.load()
    declared = CMUMOSI(MMSAConfig(padding="back"), data_dir=tmp_path / "mosi")
    assert len(declared.load().splits["train"]) == 4


def aligned_split(n: int, prefix: str, seed: int) -> dict[str, Any]:
    """MMSA's aligned_50.pkl: sequences follow the BERT tokens, no length keys."""
    rng = np.random.default_rng(seed)
    tokens = np.array([3, 5, 8, 2][:n] + [4] * max(0, n - 4))
    mask = (np.arange(8)[None, :] < tokens[:, None]).astype(np.int64)
    return {
        "raw_text": np.array([f"{prefix} {i}" for i in range(n)], dtype=object),
        "text_bert": np.stack([mask * 101, mask, np.zeros_like(mask)], axis=1),
        "audio": padded(rng, tokens, 8, DA, front=False),
        "vision": padded(rng, tokens, 8, DV, front=False),
        "regression_labels": rng.uniform(-3, 3, (n, 1)).astype(np.float32),
        "id": np.array([f"{prefix}{i}$_$1" for i in range(n)], dtype=object),
    }


def test_aligned_file_takes_lengths_from_the_bert_mask(tmp_path: Path) -> None:
    raw = {"train": aligned_split(4, "tr", 0), "valid": aligned_split(2, "va", 1)}
    raw["test"] = aligned_split(2, "te", 2)
    task = CMUMOSI(
        MMSAConfig(file="aligned_50.pkl"), data_dir=write(tmp_path, raw, "aligned_50.pkl")
    )
    train = task.load().splits["train"]
    assert [s.inputs["audio"].shape[0] for s in train] == [3, 5, 8, 2]
    assert [s.inputs["video"].shape[0] for s in train] == [3, 5, 8, 2]
    assert train[0].label == pytest.approx(float(raw["train"]["regression_labels"][0, 0]))


def sdk_split(ids: list[str], seed: int, t: int = 7) -> dict[str, Any]:
    """A MulT / CMU-SDK noalign split: front padding, GloVe text, labels [N, 1, 1]."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    a_len, v_len = rng.integers(1, t + 1, n), rng.integers(1, t + 1, n)
    return {
        "audio": padded(rng, a_len, t, DA, front=True),
        "vision": padded(rng, v_len, t, DV, front=True),
        "text": rng.normal(size=(n, 5, 300)).astype(np.float32),
        "labels": rng.uniform(-3, 3, (n, 1, 1)).astype(np.float32),
        "id": np.array([[i.encode(), b"0"] for i in ids], dtype="S16"),
        "_lengths": (a_len, v_len),  # the fixture's truth, not part of the format
    }


def write_sdk(root: Path, with_csv: bool = True) -> dict[str, Any]:
    ids = {"train": ["abc_1", "abc_2", "xyz_1"], "valid": ["qq_3"], "test": ["rr_1", "rr_10"]}
    raw = {s: sdk_split(v, i) for i, (s, v) in enumerate(ids.items())}
    truth = {s: raw[s].pop("_lengths") for s in raw}
    write(root, raw, "mosi_data_noalign.pkl")
    if with_csv:
        with (root / "label.csv").open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(["video_id", "clip_id", "text", "label", "annotation", "mode"])
            for sid in [i for v in ids.values() for i in v if i != "rr_10"]:
                vid, clip = sid.rsplit("_", 1)
                out.writerow([vid, clip, f"words of {sid}", 0.0, "Neutral", "train"])
    return {"raw": raw, "truth": truth}


def test_cmu_sdk_noalign_file(tmp_path: Path) -> None:
    made = write_sdk(tmp_path)
    raw, truth = made["raw"], made["truth"]
    task = CMUMOSI(MMSAConfig(file="mosi_data_noalign.pkl"), data_dir=tmp_path)
    data = task.load()
    train = data.splits["train"]
    assert [s.id for s in train] == ["abc_1", "abc_2", "xyz_1"]
    assert train[1].inputs["text"] == "words of abc_2"
    for i, s in enumerate(train):
        a, v = int(truth["train"][0][i]), int(truth["train"][1][i])
        np.testing.assert_array_equal(s.inputs["audio"], raw["train"]["audio"][i, 7 - a :])
        assert s.inputs["video"].shape == (v, DV)
        assert s.label == pytest.approx(float(raw["train"]["labels"][i, 0, 0]))
    assert [s.id for s in data.splits["test"]] == ["rr_1"]
    assert data.problems == [
        {
            "file": "mosi_data_noalign.pkl",
            "error": "test[1] id rr_10: no text row in the text file",
        }
    ]


def test_ids_that_name_only_the_video_are_refused_not_mostly_dropped(tmp_path: Path) -> None:
    write_sdk(tmp_path)  # label.csv keyed by video_clip
    raw = {s: sdk_split(["abc", "abc", "xyz"], i) for i, s in enumerate(("train", "valid", "test"))}
    for split in raw.values():  # MulT's MOSEI ids: (video, start, end)
        split.pop("_lengths")
        split["id"] = np.array([[b"abc", b"82.753", b"100.555"], [b"abc", b"100.6", b"110.2"],
                                [b"xyz", b"1.0", b"9.5"]], dtype="S16")
    write(tmp_path, raw, "mosei_senti_data_noalign.pkl")
    task = CMUMOSI(MMSAConfig(file="mosei_senti_data_noalign.pkl"), data_dir=tmp_path)
    with pytest.raises(DataError, match=r"mosei_senti_data_noalign.pkl: 9 of 9 clip ids have "
                       r"no row in label.csv \(e.g. 'abc'\).*text_match=order"):
        task.load()


def test_order_matching_pairs_each_split_with_its_rows_of_the_text_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    raw, rows = {}, []
    for i, split in enumerate(("train", "valid", "test")):
        raw[split] = sdk_split(["v"] * 3, i)
        raw[split].pop("_lengths")
        starts = rng.uniform(0, 100, 3).round(3)
        raw[split]["id"] = np.array([[b"v", str(t).encode(), str(t + 5).encode()]
                                     for t in starts], dtype="S16")
        rows += [[f"c{j}", f"{split} words {j}", split] for j in range(3)]
    write(tmp_path, raw, "mosei_senti_data_noalign.pkl")
    with (tmp_path / "label.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["video_id", "clip_id", "text", "mode"])
        out.writerows([["v", c, t, m] for c, t, m in rows])
    cfg = MMSAConfig(file="mosei_senti_data_noalign.pkl", text_match="order")
    data = CMUMOSI(cfg, data_dir=tmp_path).load()
    test = data.splits["test"]
    assert [s.inputs["text"] for s in test] == [f"test words {j}" for j in range(3)]
    ids = raw["test"]["id"]
    assert [s.id for s in test] == [b"_".join(r).decode() for r in ids]  # unique per clip
    assert [s.label for s in test] == pytest.approx(raw["test"]["labels"][:, 0, 0].tolist())
    with (tmp_path / "label.csv").open("a", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerow(["v", "extra", "one row too many", "valid"])
    with pytest.raises(DataError, match=r"label.csv: 4 rows of mode 'valid', but the "
                       r"pickle's valid split has 3 clips"):
        CMUMOSI(cfg, data_dir=tmp_path).load()


def test_cmu_sdk_without_words_names_the_text_file(tmp_path: Path) -> None:
    write_sdk(tmp_path, with_csv=False)
    task = CMUMOSI(MMSAConfig(file="mosi_data_noalign.pkl"), data_dir=tmp_path)
    with pytest.raises(DataError, match=r"label.csv: CMU-SDK pickles hold GloVe vectors"):
        task.load()


def test_unknown_layout_lists_the_keys(tmp_path: Path) -> None:
    raw = {s: {"feat": np.zeros((2, 3, 4))} for s in ("train", "valid", "test")}
    with pytest.raises(DataError, match=r"neither the MMSA layout .* keys: feat"):
        CMUMOSI(data_dir=write(tmp_path, raw)).load()


def test_check_counts_rounded_scores(tmp_path: Path) -> None:
    report = check_task(CMUMOSI(data_dir=write(tmp_path / "mosi", mosi_pickle())))
    assert report["samples"] == 6
    assert report["splits"] == {"train": 2, "validation": 2, "test": 2}
    # kept scores: train -2, 0.67; valid -2, 2; test -2, 0 (rounded as Acc-7 does)
    assert report["labels"] == {"-2": 3, "0": 1, "1": 1, "2": 1}
    assert len(report["problems"]) == 3


def test_ur_funny_binary_labels(tmp_path: Path) -> None:
    raw = {"train": split(4, "tr", 0), "valid": split(2, "va", 1), "test": split(3, "te", 2)}
    for part in raw.values():
        part["regression_labels"] = (np.arange(len(part["id"])) % 2).astype(np.float32)
    data = URFunny(data_dir=write(tmp_path / "urf", raw)).load()
    assert [s.label for s in data.splits["train"]] == [0, 1, 0, 1]
    assert URFunny.metrics[0] == "acc2" and URFunny.label_type == "classification"


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (lambda d: d["test"].pop("vision_lengths"), "test: missing key(s) vision_lengths"),
        (
            lambda d: d["train"].update(audio=np.zeros((4, 6), np.float32)),
            "train/audio: expected numeric [N, T, Da] with N=4, got float32 [4, 6]",
        ),
        (
            lambda d: d["valid"].update(vision=np.zeros((3, 5, 4), np.float32)),
            "valid/vision: expected numeric [N, T, Dv] with N=2, got float32 [3, 5, 4]",
        ),
        (
            lambda d: d["train"].update(text_bert=np.zeros((4, 2, 8))),
            "train/text_bert: expected [N=4, 3, L], got [4, 2, 8]",
        ),
        (
            lambda d: d["train"].update(audio_lengths=np.zeros(3)),
            "train/audio_lengths: expected shape [N=4], got [3]",
        ),
        (lambda d: d.pop("valid"), "missing split(s) valid"),
    ],
)
def test_structural_errors_name_the_file(tmp_path: Path, damage: Any, error: str) -> None:
    raw = mosi_pickle()
    damage(raw)
    task = CMUMOSI(data_dir=write(tmp_path / "mosi", raw))
    with pytest.raises(DataError, match=re.escape(f"unaligned_50.pkl: {error}")):
        task.load()
    report = check_task(task)
    assert report["samples"] == 0
    assert report["problems"] == [{"file": "unaligned_50.pkl", "error": error}]


def test_not_a_pickle(tmp_path: Path) -> None:
    (tmp_path / "mosi").mkdir()
    (tmp_path / "mosi" / "unaligned_50.pkl").write_bytes(b"\x80\x04garbage")
    report = check_task(CMUMOSI(data_dir=tmp_path / "mosi"))
    assert report["problems"][0]["file"] == "unaligned_50.pkl"
    assert report["problems"][0]["error"].startswith("cannot unpickle")
