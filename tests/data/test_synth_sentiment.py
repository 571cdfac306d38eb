"""synth-sentiment: deterministic MVSA-layout generation read back by the MVSA reader."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmalign.data.check import check_task
from mmalign.data.synth.sentiment import SynthSentiment, SynthSentimentConfig

PAIRS = 48


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def make(tmp_path: Path, name: str, seed: int = 0) -> SynthSentiment:
    task = SynthSentiment(SynthSentimentConfig(seed=seed, pairs=PAIRS), tmp_path / name)
    task.prepare()
    return task


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> SynthSentiment:
    return make(tmp_path_factory.mktemp("synth"), "a")


def test_written_in_mvsa_layout_and_read_back(generated: SynthSentiment) -> None:
    task = generated
    root = task.root
    lines = (root / "labelResultAll.txt").read_text().splitlines()
    assert lines[0] == "ID\ttext,image"
    annotations = [line.split("\t")[1].split(",") for line in lines[1:]]
    assert len(annotations) == PAIRS
    assert sorted(p.name for p in (root / "data").iterdir()) == sorted(
        [f"{i}.jpg" for i in range(1, PAIRS + 1)] + [f"{i}.txt" for i in range(1, PAIRS + 1)]
    )
    clashes = sum(set(a) == {"positive", "negative"} for a in annotations)
    not_utf8 = 0
    for i in range(1, PAIRS + 1):
        try:
            (root / "data" / f"{i}.txt").read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            not_utf8 += 1
    data = task.load()
    assert sum(len(v) for v in data.splits.values()) == PAIRS - clashes
    assert data.problems == []
    assert data.repaired == ({"text_decoded_cp1252": not_utf8} if not_utf8 else {})
    assert set(data.splits) == {"train", "validation", "test"}
    with Image.open(data.splits["train"][0].inputs["image"]) as img:
        assert img.format == "JPEG" and img.size == (200, 200)


def test_deterministic_for_a_seed(generated: SynthSentiment, tmp_path: Path) -> None:
    a, b, c = generated, make(tmp_path, "b"), make(tmp_path, "c", seed=1)
    assert digest(a.root) == digest(b.root)
    assert digest(a.root) != digest(c.root)
    assert a.root.name == "v2-seed0-pairs48"


def test_generated_atomically_and_once(generated: SynthSentiment) -> None:
    task = generated
    assert [p.name for p in task.root.parent.iterdir()] == [task.root.name]
    marker = task.root / ".complete"
    before = marker.stat().st_mtime_ns
    task.prepare()
    assert marker.stat().st_mtime_ns == before


def test_images_carry_sentiment(generated: SynthSentiment) -> None:
    """Positive images are brighter than neutral ones, which are brighter than negative."""
    data = generated.load()
    brightness: dict[str, list[float]] = {"positive": [], "neutral": [], "negative": []}
    for sample in (s for v in data.splits.values() for s in v):
        with Image.open(sample.inputs["image"]) as img:
            brightness[sample.meta["image_label"]].append(
                float(np.asarray(img.convert("L")).mean())
            )
    means = {k: np.mean(v) for k, v in brightness.items()}
    assert means["positive"] > means["neutral"] > means["negative"]


def test_check_is_clean(generated: SynthSentiment) -> None:
    report = check_task(generated)
    assert report["problems"] == []
    assert report["samples"] == sum(report["splits"].values()) == sum(report["labels"].values())
    assert report["task"] == "synth-sentiment"
