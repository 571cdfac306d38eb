"""MMSA pickles: field handling, trimming to lengths, repairs and structural errors."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmalign.data.check import check_task
from mmalign.data.mmsa import CMUMOSI, URFunny
from mmalign.errors import DataError

TA, DA, TV, DV = 6, 3, 5, 4


def split(n: int, prefix: str, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "raw_text": np.array([f"{prefix} clip {i}" for i in range(n)], dtype=object),
        "audio": rng.normal(size=(n, TA, DA)).astype(np.float32),
        "vision": rng.normal(size=(n, TV, DV)).astype(np.float32),
        "text_bert": np.zeros((n, 3, 8), dtype=np.int64),
        "audio_lengths": np.full(n, 4),
        "vision_lengths": np.full(n, 5),
        "regression_labels": np.linspace(-2, 2, n).astype(np.float32),
        "id": np.array([f"{prefix}{i}$_$0" for i in range(n)], dtype=object),
    }


def mosi_pickle() -> dict[str, Any]:
    data = {"train": split(4, "tr", 0), "valid": split(2, "va", 1), "test": split(3, "te", 2)}
    data["train"]["audio_lengths"][1] = 0  # no audio
    data["train"]["audio"][2, 0, 0] = -np.inf  # COVAREP-style: zeroed, counted
    data["train"]["vision"][2, 1, 1] = np.nan
    data["train"]["raw_text"][3] = "  "
    data["valid"]["vision_lengths"][0] = 9  # longer than the padded sequence
    data["test"]["regression_labels"][2] = np.nan
    return data


def write(root: Path, obj: Any) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "unaligned_50.pkl").open("wb") as fh:
        pickle.dump(obj, fh)
    return root


def test_samples_trimmed_and_problems(tmp_path: Path) -> None:
    raw = mosi_pickle()
    data = CMUMOSI(data_dir=write(tmp_path / "mosi", raw)).load()
    assert {k: [s.id for s in v] for k, v in data.splits.items()} == {
        "train": ["tr0$_$0", "tr2$_$0"],
        "validation": ["va1$_$0"],
        "test": ["te0$_$0", "te1$_$0"],
    }
    first = data.splits["train"][0]
    assert first.inputs["text"] == "tr clip 0"
    assert first.inputs["audio"].dtype == np.float32 and first.inputs["audio"].shape == (4, DA)
    np.testing.assert_array_equal(first.inputs["audio"], raw["train"]["audio"][0, :4])
    assert first.inputs["video"].shape == (5, DV)
    assert first.label == pytest.approx(-2.0)
    repaired = data.splits["train"][1]
    assert np.isfinite(repaired.inputs["audio"]).all() and repaired.inputs["audio"][0, 0] == 0
    assert data.repaired == {"features_nonfinite_zeroed": 2}
    assert data.problems == [
        {"file": "unaligned_50.pkl", "error": "train[1] id tr1$_$0: audio_lengths 0 outside 1..6"},
        {"file": "unaligned_50.pkl", "error": "train[3] id tr3$_$0: empty raw_text"},
        {"file": "unaligned_50.pkl", "error": "valid[0] id va0$_$0: vision_lengths 9 outside 1..5"},
        {"file": "unaligned_50.pkl", "error": "test[2] id te2$_$0: regression_label nan"},
    ]


def test_check_counts_rounded_scores(tmp_path: Path) -> None:
    report = check_task(CMUMOSI(data_dir=write(tmp_path / "mosi", mosi_pickle())))
    assert report["samples"] == 5
    assert report["splits"] == {"train": 2, "validation": 1, "test": 2}
    # kept scores: train -2, 0.67; valid 2; test -2, 0 (rounded as Acc-7 does)
    assert report["labels"] == {"-2": 2, "0": 1, "1": 1, "2": 1}
    assert len(report["problems"]) == 4


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
