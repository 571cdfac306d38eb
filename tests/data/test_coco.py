"""COCO captions reader: pairs per caption, split by image, problems named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmalign.data.check import check_task
from mmalign.data.coco import COCOCaptions, COCOConfig
from mmalign.errors import DataError
from tests.data.fixtures import write_coco

ANNOTATION_PROBLEMS = [
    {
        "file": "annotations/captions_train2017.json",
        "error": "images[4]: expected id and file_name",
    },
    {
        "file": "annotations/captions_train2017.json",
        "error": "annotations[4]: unknown image_id 9",
    },
    {"file": "annotations/captions_train2017.json", "error": "annotations[5]: empty caption"},
    {
        "file": "annotations/captions_train2017.json",
        "error": "annotations[6]: expected image_id and caption",
    },
]
THIRDS = COCOConfig(val_fraction=1 / 3, test_fraction=1 / 3)


def test_pairs_split_by_image(tmp_path: Path) -> None:
    write_coco(tmp_path / "coco")
    data = COCOCaptions(THIRDS, tmp_path / "coco").load()
    pairs = {s.id: s for v in data.splits.values() for s in v}
    assert sorted(pairs) == ["1-10", "1-11", "2-12", "4-17"]
    assert pairs["1-11"].inputs == {
        "image": tmp_path / "coco" / "train2017" / "a.jpg",
        "text": "a small cat",
    }
    assert pairs["1-11"].label is None and pairs["1-11"].meta == {"image_id": 1}
    for split in data.splits.values():  # both captions of image 1 share a split
        assert len({s.meta["image_id"] for s in split}) == 1
    assert data.problems == ANNOTATION_PROBLEMS + [
        {"file": "train2017/gone.jpg", "error": "missing image file"}
    ]


def test_check_finds_truncated_image(tmp_path: Path) -> None:
    write_coco(tmp_path / "coco")
    report = check_task(COCOCaptions(THIRDS, tmp_path / "coco"))
    assert report["samples"] == 3
    assert report["labels"] == {}
    assert report["problems"][:5] == ANNOTATION_PROBLEMS + [
        {"file": "train2017/gone.jpg", "error": "missing image file"}
    ]
    assert report["problems"][5]["file"] == "train2017/trunc.jpg"


def test_invalid_json(tmp_path: Path) -> None:
    write_coco(tmp_path / "coco")
    (tmp_path / "coco" / "annotations" / "captions_train2017.json").write_text("{not json")
    with pytest.raises(DataError, match="captions_train2017.json: invalid JSON"):
        COCOCaptions(data_dir=tmp_path / "coco").load()


def test_not_a_coco_document(tmp_path: Path) -> None:
    write_coco(tmp_path / "coco")
    path = tmp_path / "coco" / "annotations" / "captions_train2017.json"
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="expected a JSON object with images and annotations"):
        COCOCaptions(data_dir=tmp_path / "coco").load()


def test_pretraining_task_reports_loss(tmp_path: Path) -> None:
    task = COCOCaptions(data_dir=tmp_path)
    assert task.label_type == "none" and task.direction("loss") == "min"
    assert task.evaluate({"loss": torch.tensor([1.0, 3.0])}, None) == {"loss": 2.0}
    assert "mmalign data fetch coco-captions" in task.missing_message()
