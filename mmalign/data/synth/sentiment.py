"""``synth-sentiment``: image-text sentiment written as an MVSA-Single raw folder.

Each pair gets a text label and an image label; the MVSA rules combine them
(equal labels stay, a neutral side takes the other's label, positive/negative
clashes are dropped). For a positive or negative pair, 30% of the time only the
text carries the sentiment and 30% only the image does, so a model that ignores
either modality tops out near 80% accuracy while one that uses both can approach
100%. As with human annotators, 5% of labels per modality disagree with what the
text or image shows, which leaves methods some headroom below 100%. A few texts
are written in cp1252, as in the real dumps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmalign.data.base import EmbeddedTask
from mmalign.data.mvsa import LABEL_FILE, LABELS, read_mvsa
from mmalign.data.report import Report
from mmalign.data.splits import seeded_split
from mmalign.data.synth import draw, words
from mmalign.interfaces import Sample, StrictModel

IMAGE_SIZE = 200
CONFLICT_RATE = 0.05
ONE_SIDED = 0.3  # per side: share of positive/negative pairs whose other side is neutral
CP1252_RATE = 0.04
ANNOTATION_NOISE = 0.05  # per modality: the annotator's label differs from the content


def modality_labels(rng: np.random.Generator) -> tuple[str, str]:
    """``(text_label, image_label)`` of one raw pair."""
    if rng.random() < CONFLICT_RATE:
        return ("positive", "negative") if rng.random() < 0.5 else ("negative", "positive")
    label = LABELS[int(rng.integers(3))]
    if label == "neutral":
        return label, label
    u = rng.random()
    if u < ONE_SIDED:
        return label, "neutral"
    if u < 2 * ONE_SIDED:
        return "neutral", label
    return label, label


def write_pair(out: Path, sid: int, seed: int) -> str:
    """Write ``data/{sid}.txt`` and ``data/{sid}.jpg``; return the label-file line."""
    rng = np.random.default_rng([seed, sid])
    text_label, image_label = modality_labels(rng)
    text, encoding = words.caption(rng, text_label), "utf-8"
    if rng.random() < CP1252_RATE:
        text += " " + words.ACCENTED[int(rng.integers(len(words.ACCENTED)))]
        encoding = "cp1252"
    (out / "data" / f"{sid}.txt").write_bytes(text.encode(encoding))
    image = draw.render(rng, image_label, IMAGE_SIZE)
    image.save(out / "data" / f"{sid}.jpg", quality=int(rng.integers(80, 95)))
    noise = np.random.default_rng([seed, sid, 1])
    annotated = [
        str(noise.choice([x for x in LABELS if x != label]))
        if noise.random() < ANNOTATION_NOISE
        else label
        for label in (text_label, image_label)
    ]
    return f"{sid}\t{annotated[0]},{annotated[1]}"


class SynthSentimentConfig(StrictModel):
    """``pairs`` raw pairs are written; about 7% are clashes the MVSA rules drop."""

    seed: int = 0
    pairs: int = 1260


class SynthSentiment(EmbeddedTask):
    """Embedded image-text sentiment (3 classes) in MVSA raw layout, read by the MVSA reader."""

    Config = SynthSentimentConfig
    name = "synth-sentiment"
    modalities = ("text", "image")
    label_type = "classification"
    label_names = LABELS
    metrics = ("acc", "f1_weighted")
    generator_version = 2

    def generate(self, out: Path) -> None:
        cfg = self.config
        assert isinstance(cfg, SynthSentimentConfig)
        (out / "data").mkdir()
        lines = [write_pair(out, sid, cfg.seed) for sid in range(1, cfg.pairs + 1)]
        (out / LABEL_FILE).write_text("ID\ttext,image\n" + "\n".join(lines) + "\n")

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        cfg = self.config
        assert isinstance(cfg, SynthSentimentConfig)
        return seeded_split(read_mvsa(self.root, 1, report, deep), cfg.seed)
