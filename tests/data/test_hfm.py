"""HFM reader: Python-literal lines, human labels, the authors' keyword filter, problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmalign.data.check import check_task
from mmalign.data.hfm import HFMConfig, HFMTask
from mmalign.errors import DataError
from tests.data.fixtures import write_hfm

LOAD_PROBLEMS = [
    {"file": "text/train.txt", "error": "line 4: not a Python list literal"},
    {"file": "text/train.txt", "error": "line 5: expected [id, text, label]"},
    {"file": "text/train.txt", "error": "line 6: label 2 is not 0 or 1"},
    {"file": "dataset_image/106.jpg", "error": "missing image file"},
    {"file": "text/train.txt", "error": "line 8: empty text"},
]
VALID_PROBLEMS = [
    {
        "file": "text/valid2.txt",
        "error": "line 3: duplicate id 100 (first in text/train.txt line 1)",
    },
    {
        "file": "text/valid2.txt",
        "error": "line 4: expected [id, text, hashtag_label, human_label]",
    },
]


def test_counts_labels_and_problems(tmp_path: Path) -> None:
    write_hfm(tmp_path / "hfm")
    data = HFMTask(data_dir=tmp_path / "hfm").load()
    ids = {k: [s.id for s in v] for k, v in data.splits.items()}
    assert ids == {
        "train": ["100", "102", "108", "109"],
        "validation": ["200", "201"],
        "test": ["301", "303"],
    }
    labels = {s.id: s.label for v in data.splits.values() for s in v}
    assert labels == {
        "100": 0,
        "102": 1,
        "108": 0,
        "109": 1,
        "200": 1,
        "201": 0,
        "301": 0,
        "303": 1,
    }
    assert data.splits["validation"][1].meta == {"hashtag_label": 1}
    assert data.splits["train"][2].inputs["text"] == "café time"
    assert data.problems == LOAD_PROBLEMS + VALID_PROBLEMS
    assert data.repaired == {"text_decoded_cp1252": 1}
    assert "dropped 2 (sarcasm keyword filter)" in data.source
    assert data.label_names == ["not-sarcastic", "sarcastic"]


def test_check_finds_truncated_image(tmp_path: Path) -> None:
    write_hfm(tmp_path / "hfm")
    report = check_task(HFMTask(data_dir=tmp_path / "hfm"))
    assert report["samples"] == 7
    assert report["splits"] == {"train": 3, "validation": 2, "test": 2}
    assert report["labels"] == {"not-sarcastic": 4, "sarcastic": 3}
    assert report["dropped"] == {"sarcasm keyword filter": 2}
    problems = report["problems"]
    assert problems[:5] == LOAD_PROBLEMS
    assert problems[5]["file"] == "dataset_image/109.jpg"
    assert problems[5]["error"].startswith("corrupt or truncated image")
    assert problems[6:] == VALID_PROBLEMS


def test_keyword_filter_can_be_disabled(tmp_path: Path) -> None:
    write_hfm(tmp_path / "hfm")
    data = HFMTask(HFMConfig(keyword_filter=False), tmp_path / "hfm").load()
    assert [s.id for s in data.splits["train"]] == ["100", "101", "102", "108", "109"]
    assert [s.id for s in data.splits["test"]] == ["300", "301", "303"]


def test_missing_split_file(tmp_path: Path) -> None:
    write_hfm(tmp_path / "hfm")
    (tmp_path / "hfm" / "text" / "test2.txt").unlink()
    with pytest.raises(DataError, match="text/test2.txt: missing HFM text file"):
        HFMTask(data_dir=tmp_path / "hfm").load()


def test_absent_names_request_and_stand_in(tmp_path: Path) -> None:
    message = HFMTask(data_dir=tmp_path / "none").missing_message()
    assert str(tmp_path / "none") in message
    assert "headacheboy/data-of-multimodal-sarcasm-detection" in message
    assert "--task synth-sarcasm" in message
