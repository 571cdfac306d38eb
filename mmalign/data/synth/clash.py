"""``synth-clash``: image-text sentiment with shared pair content and real contradiction.

Written as an MVSA-Single raw folder and read by the MVSA reader. Every image
shows a sentiment scene with one prominent coloured object, and every caption names
an object ("the red star"). The knobs:

* ``shared``: share of pairs whose caption names the object the image shows
  (pair-specific content beyond the label, redundant across the modalities); the
  other captions name an independent object, so the marginal statistics are equal;
* ``contradiction``: share of positive/negative pairs whose image shows the
  opposite sentiment while the pair keeps its caption's label (both annotations say
  so, so the MVSA rules keep the pair): genuine cross-modal contradiction;
* ``one_sided``: per side, share of positive/negative pairs whose other side is
  neutral (information unique to one modality);
* ``image_decides``: share of the object colours (taken in ``OBJECT_COLOURS``'
  order) for which a contradicting pair takes its *image's* sentiment instead of its
  caption's (both annotations say so, so the pair stays). With ``shared`` 1 both
  sides show the colour, so which side decides is learnable from the pair, but the
  caption's sentiment alone cannot decide such a pair: synergy, the situation where
  trusting the text is not enough. 0 (both presets) draws exactly the data of
  generator version 1.

``premise`` has every pair share its object and a quarter of polar pairs
contradict, the situation SPP-SCL's inter-modal step is meant for (a pair whose
text and image disagree should be pulled together, same-label pairs apart from
others); ``control`` shares nothing beyond the label and never contradicts, as
``synth-sentiment`` does. 5% of each annotation disagrees with the content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageDraw
from pydantic import Field

from mmalign.data.base import EmbeddedTask
from mmalign.data.mvsa import LABEL_FILE, LABELS, read_mvsa
from mmalign.data.report import Report
from mmalign.data.splits import seeded_split
from mmalign.data.synth import draw, words
from mmalign.data.synth.structure import TRUTH_FILE, StructuredConfig, write_truth
from mmalign.interfaces import Sample

IMAGE_SIZE = 200
ANNOTATION_NOISE = 0.05
OBJECT_COLOURS = {
    "red": (225, 30, 30), "green": (30, 175, 60), "blue": (40, 70, 225),
    "yellow": (245, 215, 30), "purple": (145, 50, 175), "white": (248, 248, 248),
}  # fmt: skip
OBJECT_SHAPES = ("circle", "square", "triangle", "star")
OPPOSITE = {"positive": "negative", "negative": "positive"}


def draw_object(img: Image.Image, rng: np.random.Generator, colour: str, shape: str) -> None:
    """A large outlined shape of ``colour`` at a random place (about a third of the side)."""
    size = img.size[0]
    r = size * rng.uniform(0.15, 0.2)
    cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
    d = ImageDraw.Draw(img)
    fill, outline = OBJECT_COLOURS[colour], (10, 10, 10)
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill, outline=outline, width=3)
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill, outline=outline, width=3)
    elif shape == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill, outline=outline)
    else:
        angles = np.arange(10) * np.pi / 5 - np.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        d.polygon(
            list(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles), strict=True)),
            fill=fill,
            outline=outline,
        )


def random_object(rng: np.random.Generator) -> tuple[str, str]:
    colours = list(OBJECT_COLOURS)
    return colours[int(rng.integers(len(colours)))], OBJECT_SHAPES[int(rng.integers(4))]


def contents(rng: np.random.Generator, cfg: SynthClashConfig) -> tuple[str, str, str, bool]:
    """``(label, text content, image content, contradicts)`` of one pair."""
    label = LABELS[int(rng.integers(3))]
    if label == "neutral":
        return label, label, label, False
    if rng.random() < cfg.contradiction:
        return label, label, OPPOSITE[label], True
    u = rng.random()
    if u < cfg.one_sided:
        return label, label, "neutral", False
    if u < 2 * cfg.one_sided:
        return label, "neutral", label, False
    return label, label, label, False


def image_deciding_colours(cfg: SynthClashConfig) -> tuple[str, ...]:
    """The colours whose contradicting pairs are labelled by the image (``image_decides``)."""
    return tuple(OBJECT_COLOURS)[: round(cfg.image_decides * len(OBJECT_COLOURS))]


def write_pair(out: Path, sid: int, cfg: SynthClashConfig) -> tuple[str, dict[str, Any]]:
    """Write ``data/{sid}.txt`` and ``.jpg``; return the label-file line and the truth row."""
    rng = np.random.default_rng([cfg.seed, sid])
    label, text_content, image_content, contradicts = contents(rng, cfg)
    image_object = random_object(rng)
    # decided after the draws, so image_decides = 0 leaves every draw as it was
    image_decides = contradicts and image_object[0] in image_deciding_colours(cfg)
    if image_decides:
        label = image_content
    shared = bool(rng.random() < cfg.shared)
    text_object = image_object if shared else random_object(rng)
    text = words.caption(rng, text_content, subject=f"the {text_object[0]} {text_object[1]}")
    (out / "data" / f"{sid}.txt").write_text(text, encoding="utf-8")
    image = draw.render(rng, image_content, IMAGE_SIZE)
    draw_object(image, rng, *image_object)
    image.save(out / "data" / f"{sid}.jpg", quality=int(rng.integers(80, 95)))
    # the annotators label a contradicting pair by the side that decides it, so it stays
    truth = (label, label) if contradicts else (text_content, image_content)
    noise = np.random.default_rng([cfg.seed, sid, 1])
    annotated = [
        str(noise.choice([x for x in LABELS if x != a])) if noise.random() < ANNOTATION_NOISE else a
        for a in truth
    ]
    row = {
        "id": sid, "label": label, "text_content": text_content,
        "image_content": image_content, "contradicts": int(contradicts), "shared": int(shared),
        "decided_by": "image" if image_decides else "text",
        "text_object": " ".join(text_object), "image_object": " ".join(image_object),
    }  # fmt: skip
    return f"{sid}\t{annotated[0]},{annotated[1]}", row


class SynthClashConfig(StructuredConfig):
    """Knob values of ``premise`` and ``control`` (fixed before any method was run)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "premise": {"shared": 1.0, "contradiction": 0.25, "one_sided": 0.15},
        "control": {"shared": 0.0, "contradiction": 0.0, "one_sided": 0.15},
    }

    pairs: int = Field(1500, ge=3)
    shared: float = Field(1.0, ge=0, le=1, description="share of pairs naming the shown object")
    contradiction: float = Field(
        0.25, ge=0, le=1, description="share of polar pairs whose image shows the opposite"
    )
    one_sided: float = Field(0.15, ge=0, le=0.5, description="per side: polar pair, other neutral")
    image_decides: float = Field(
        0.0, ge=0, le=1, description="share of object colours whose contradicting pairs "
        "take the image's sentiment"
    )


class SynthClash(EmbeddedTask):
    """Image-text sentiment (MVSA-Single layout) with shared objects and contradictions."""

    Config = SynthClashConfig
    name = "synth-clash"
    modalities = ("text", "image")
    label_type = "classification"
    label_names = LABELS
    metrics = ("acc", "f1_weighted")
    generator_version = 1

    def generate(self, out: Path) -> None:
        cfg = self.config
        assert isinstance(cfg, SynthClashConfig)
        (out / "data").mkdir()
        written = [write_pair(out, sid, cfg) for sid in range(1, cfg.pairs + 1)]
        lines = "\n".join(line for line, _ in written)
        (out / LABEL_FILE).write_text("ID\ttext,image\n" + lines + "\n")
        write_truth(out / TRUTH_FILE, [row for _, row in written])

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        cfg = self.config
        assert isinstance(cfg, SynthClashConfig)
        return seeded_split(read_mvsa(self.root, 1, report, deep), cfg.seed)
