"""COCO 2017 captions: ``annotations/captions_train2017.json`` plus the image folder.

Every (image, caption) pair is one sample with no label (image-text pretraining).
COCO publishes no caption test split of its own for train2017, so images (with all
their captions) are split by a seed: captions of one image never straddle splits.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from mmalign.data.base import DataTask
from mmalign.data.media import media_error
from mmalign.data.report import DataFileError, Report
from mmalign.data.splits import seeded_split
from mmalign.data.textio import decode
from mmalign.interfaces import Outputs, Sample, StrictModel


class COCOConfig(StrictModel):
    """Paths relative to the data folder; validation/test fractions are of images."""

    annotations: str = "annotations/captions_train2017.json"
    images: str = "train2017"
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    split_seed: int = 0


def read_coco(root: Path, cfg: COCOConfig, report: Report, deep: bool) -> dict[str, list[Sample]]:
    """Pairs per split; captions of unknown or missing images are reported and skipped."""
    try:
        doc = json.loads(decode((root / cfg.annotations).read_bytes())[0])
    except FileNotFoundError as exc:
        raise DataFileError(cfg.annotations, "missing captions file") from exc
    except json.JSONDecodeError as exc:
        raise DataFileError(cfg.annotations, f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not {"images", "annotations"} <= doc.keys():
        raise DataFileError(cfg.annotations, "expected a JSON object with images and annotations")
    files: dict[Any, str] = {}
    for i, img in enumerate(doc["images"]):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            report.problem(cfg.annotations, f"images[{i}]: expected id and file_name")
            continue
        files[img["id"]] = str(img["file_name"])
    captions: dict[Any, list[tuple[Any, str]]] = defaultdict(list)
    for i, ann in enumerate(doc["annotations"]):
        if not isinstance(ann, dict) or not {"image_id", "caption"} <= ann.keys():
            report.problem(cfg.annotations, f"annotations[{i}]: expected image_id and caption")
            continue
        if ann["image_id"] not in files:
            report.problem(cfg.annotations, f"annotations[{i}]: unknown image_id {ann['image_id']}")
            continue
        text = str(ann["caption"]).strip()
        if not text:
            report.problem(cfg.annotations, f"annotations[{i}]: empty caption")
            continue
        captions[ann["image_id"]].append((ann.get("id", i), text))
    usable = []
    for image_id in sorted(captions, key=str):
        path = root / cfg.images / files[image_id]
        error = media_error("image", path, deep)
        if error is not None:
            report.problem(f"{cfg.images}/{files[image_id]}", error)
            continue
        usable.append(image_id)
    by_image = seeded_split(usable, cfg.split_seed, (cfg.val_fraction, cfg.test_fraction))
    return {
        split: [
            Sample(
                id=f"{image_id}-{ann_id}",
                inputs={"image": root / cfg.images / files[image_id], "text": text},
                meta={"image_id": image_id},
            )
            for image_id in ids
            for ann_id, text in captions[image_id]
        ]
        for split, ids in by_image.items()
    }


def loss_evaluate(outputs: Outputs) -> dict[str, float]:
    """A pretraining task is scored by the method's mean objective loss."""
    return {"loss": float(outputs["loss"].float().mean())}


class COCOCaptions(DataTask):
    """Image-caption pairs from COCO 2017 for image-text pretraining (no labels)."""

    Config = COCOConfig
    name = "coco-captions"
    modalities = ("image", "text")
    label_type = "none"
    metrics = ("loss",)
    stand_in = "synth-captions"

    def required_paths(self) -> tuple[str, ...]:
        cfg = self.config
        assert isinstance(cfg, COCOConfig)
        return (cfg.annotations, cfg.images)

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        cfg = self.config
        assert isinstance(cfg, COCOConfig)
        return read_coco(self.root, cfg, report, deep)

    def evaluate(self, outputs: Outputs, labels: Any) -> dict[str, float]:
        return loss_evaluate(outputs)
