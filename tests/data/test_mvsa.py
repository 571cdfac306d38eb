"""MVSA readers: the TI-JEPA label rules, exact counts, problems and CLMLF splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmalign.data.check import check_task
from mmalign.data.mvsa import MVSAConfig, MVSAMulti, MVSASingle, combine, majority
from mmalign.errors import DataError
from tests.data.fixtures import write_jpeg, write_mvsa_multi, write_mvsa_single

SINGLE_LABEL_PROBLEMS = [
    {
        "file": "labelResultAll.txt",
        "error": "line 9: bad annotation 'positive' (expected text,image with labels "
        "positive, neutral or negative)",
    },
    {
        "file": "labelResultAll.txt",
        "error": "line 10: bad annotation 'happy,positive' (expected text,image with labels "
        "positive, neutral or negative)",
    },
    {"file": "labelResultAll.txt", "error": "line 17: duplicate id 2 (first on line 3)"},
]
SINGLE_SAMPLE_PROBLEMS = [
    {"file": "data/10.txt", "error": "missing text file"},
    {"file": "data/11.jpg", "error": "missing image file"},
    {"file": "data/13.txt", "error": "empty text"},
    {
        "file": "data/15.txt",
        "error": "text is neither UTF-8 nor cp1252; undecodable bytes replaced",
    },
]


@pytest.mark.parametrize(
    ("text", "image", "expected"),
    [
        ("positive", "positive", "positive"),
        ("neutral", "neutral", "neutral"),
        ("neutral", "negative", "negative"),
        ("positive", "neutral", "positive"),
        ("positive", "negative", None),
        ("negative", "positive", None),
    ],
)
def test_combine(text: str, image: str, expected: str | None) -> None:
    assert combine(text, image) == expected


def test_majority() -> None:
    assert majority(["positive", "neutral", "positive"]) == "positive"
    assert majority(["neutral", "neutral", "neutral"]) == "neutral"
    assert majority(["positive", "neutral", "negative"]) is None
    assert majority(["negative"]) == "negative"


def test_single_counts_after_rules(tmp_path: Path) -> None:
    write_mvsa_single(tmp_path / "mvsa")
    data = MVSASingle(data_dir=tmp_path / "mvsa").load()
    samples = [s for split in data.splits.values() for s in split]
    assert sorted(s.id for s in samples) == sorted(["1", "2", "3", "4", "5", "12", "14", "15"])
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 6, "validation": 1, "test": 1}
    labels = {s.id: data.label_names[s.label] for s in samples}
    assert labels == {
        "1": "positive", "2": "negative", "3": "neutral", "4": "positive",
        "5": "negative", "12": "positive", "14": "positive", "15": "neutral",
    }  # fmt: skip
    assert data.problems == SINGLE_LABEL_PROBLEMS + SINGLE_SAMPLE_PROBLEMS
    assert data.repaired == {"text_decoded_cp1252": 1, "text_bytes_replaced": 1}
    assert "dropped 2 (positive/negative conflict)" in data.source
    by_id = {s.id: s for s in samples}
    assert by_id["12"].inputs["text"] == "café au lait “good”"
    assert by_id["4"].meta == {"text_label": "positive", "image_label": "neutral"}
    assert by_id["1"].inputs["image"] == tmp_path / "mvsa" / "data" / "1.jpg"


def test_single_split_is_seeded(tmp_path: Path) -> None:
    write_mvsa_single(tmp_path / "mvsa")

    def train_ids(seed: int) -> list[str]:
        task = MVSASingle(MVSAConfig(split_seed=seed), tmp_path / "mvsa")
        return [s.id for s in task.load().splits["train"]]

    assert train_ids(0) == train_ids(0)
    assert train_ids(0) != train_ids(1)


def test_single_check_reports_truncated_image(tmp_path: Path) -> None:
    write_mvsa_single(tmp_path / "mvsa")
    report = check_task(MVSASingle(data_dir=tmp_path / "mvsa"))
    assert report["samples"] == 7
    assert report["labels"] == {"positive": 3, "neutral": 2, "negative": 2}
    assert report["dropped"] == {"positive/negative conflict": 2}
    problems = report["problems"]
    assert problems[:6] == SINGLE_LABEL_PROBLEMS + SINGLE_SAMPLE_PROBLEMS[:3]
    assert problems[6]["file"] == "data/14.jpg"
    assert problems[6]["error"].startswith("corrupt or truncated image")
    assert problems[7:] == SINGLE_SAMPLE_PROBLEMS[3:]


def test_multi_majority_vote_counts(tmp_path: Path) -> None:
    write_mvsa_multi(tmp_path / "multi")
    data = MVSAMulti(data_dir=tmp_path / "multi").load()
    labels = {s.id: data.label_names[s.label] for v in data.splits.values() for s in v}
    assert labels == {"1": "positive", "2": "negative", "5": "positive", "7": "neutral"}
    assert data.problems == [
        {
            "file": "labelResultAll.txt",
            "error": "line 9: expected 3 'text,image' annotations after the id, found 2",
        }
    ]
    assert "dropped 1 (positive/negative conflict), dropped 2 (split vote)" in data.source


def test_single_reader_refuses_multi_lines(tmp_path: Path) -> None:
    write_mvsa_multi(tmp_path / "multi")
    with pytest.raises(DataError, match="found no usable training samples") as err:
        MVSASingle(data_dir=tmp_path / "multi").load()
    assert "line 2: expected 1 'text,image' annotation after the id, found 3" in str(err.value)


def test_empty_label_file(tmp_path: Path) -> None:
    write_mvsa_single(tmp_path / "mvsa")
    (tmp_path / "mvsa" / "labelResultAll.txt").write_text("ID\ttext,image\n")
    report = check_task(MVSASingle(data_dir=tmp_path / "mvsa"))
    assert report["samples"] == 0
    assert report["problems"] == [{"file": "labelResultAll.txt", "error": "no annotation lines"}]


def test_clmlf_splits(tmp_path: Path) -> None:
    root = tmp_path / "mvsa"
    write_mvsa_single(root)
    split_dir = root / "10-flod-1"
    split_dir.mkdir()
    entries = {
        "train.json": [
            {"id": "1", "text": "good day", "emotion_label": 0},
            {"id": "3", "text": "a bus", "emotion_label": 1},
            {"id": "11", "text": "image is missing", "emotion_label": 0},
            {"id": "5", "text": "bad", "emotion_label": 7},
            {"id": "4", "emotion_label": 0},
        ],
        "dev.json": [{"id": "2", "text": "sad", "emotion_label": 2}],
        "test.json": [{"id": 12, "text": "café", "emotion_label": 0}],
    }
    for name, rows in entries.items():
        (split_dir / name).write_text(json.dumps(rows))
    data = MVSASingle(MVSAConfig(split="clmlf"), root).load()
    assert {k: [s.id for s in v] for k, v in data.splits.items()} == {
        "train": ["1", "3"],
        "validation": ["2"],
        "test": ["12"],
    }
    assert data.splits["train"][1].inputs["text"] == "a bus"
    assert data.splits["test"][0].label == 0
    assert data.problems == [
        {"file": "data/11.jpg", "error": "missing image file"},
        {
            "file": "10-flod-1/train.json",
            "error": "entry 3 (id 5): emotion_label 7 is not 0, 1 or 2",
        },
        {"file": "10-flod-1/train.json", "error": "entry 4: expected keys id, text, emotion_label"},
    ]


def test_clmlf_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    write_mvsa_single(tmp_path / "mvsa")
    with pytest.raises(DataError, match=r"10-flod-1/train.json: missing CLMLF split file"):
        MVSASingle(MVSAConfig(split="clmlf"), tmp_path / "mvsa").load()


def test_missing_data_message(tmp_path: Path) -> None:
    task = MVSASingle(data_dir=tmp_path / "absent")
    assert not task.is_present()
    with pytest.raises(DataError) as err:
        task.load()
    message = str(err.value)
    assert str(tmp_path / "absent") in message
    assert "mmalign data fetch mvsa-single" in message
    assert "mcrlab.net" in message  # where to request it: no public archive URL
    assert "--task synth-sentiment" in message


def test_missing_label_file_named(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "mvsa" / "data" / "1.jpg")
    with pytest.raises(DataError, match=r"\(missing labelResultAll.txt\)"):
        MVSASingle(data_dir=tmp_path / "mvsa").load()


def test_default_data_dir_comes_from_mmalign_data(isolated_home: Path) -> None:
    assert MVSAMulti().data_dir == isolated_home / "datasets" / "mvsa-multi"
