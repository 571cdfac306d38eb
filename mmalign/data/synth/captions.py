"""``synth-captions``: image-caption pairs written in COCO 2017 captions format.

Most images are rendered scenes of one to three coloured shapes whose captions
say which shapes, colours, sizes and places they have, on which background; the
rest are crops and flips of real photos bundled with scikit-image and matplotlib,
captioned with what the photo shows. Each image gets two differently worded
captions, as COCO gives five.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from mmalign.data.base import EmbeddedTask
from mmalign.data.coco import COCOConfig, loss_evaluate, read_coco
from mmalign.data.report import Report
from mmalign.data.synth import photos
from mmalign.interfaces import Outputs, Sample, StrictModel

SIZE = 160
COLOURS = {
    "red": (220, 30, 30), "green": (30, 170, 60), "blue": (40, 70, 220),
    "yellow": (240, 210, 30), "purple": (140, 50, 170), "orange": (245, 140, 20),
    "black": (20, 20, 20), "white": (245, 245, 245),
}  # fmt: skip
BACKGROUNDS = {
    "white": (250, 250, 250), "grey": (150, 150, 150), "light blue": (170, 210, 240),
    "dark": (30, 30, 40), "beige": (235, 220, 190),
}  # fmt: skip
SHAPES = ("circle", "square", "triangle", "star")
PLACES = {"left": (0.25, 0.5), "right": (0.75, 0.5), "top": (0.5, 0.25), "bottom": (0.5, 0.75)}
PHOTO_SHARE = 0.12


def draw_shape(
    d: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill: Any
) -> None:
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    else:
        angles = np.arange(10) * np.pi / 5 - np.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        d.polygon(
            list(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles), strict=True)),
            fill=fill,
        )


def scene(rng: np.random.Generator) -> tuple[Image.Image, list[str]]:
    """A rendered scene and two captions describing it."""
    bg_name = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    img = Image.new("RGB", (SIZE, SIZE), BACKGROUNDS[bg_name])
    d = ImageDraw.Draw(img)
    places = list(PLACES)
    n = int(rng.integers(1, 4))
    picked = [places[i] for i in rng.permutation(len(places))[:n]]
    parts, short = [], []
    for place in picked:
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        colours = [c for c in COLOURS if COLOURS[c] != BACKGROUNDS.get(bg_name)]
        colour = colours[int(rng.integers(len(colours)))]
        big = rng.random() < 0.5
        r = SIZE * (0.2 if big else 0.1) * (1 if n == 1 else 0.8)
        cx, cy = PLACES[place]
        if n == 1:
            cx, cy = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6)
        draw_shape(d, shape, cx * SIZE, cy * SIZE, r, COLOURS[colour])
        size = "large" if big else "small"
        parts.append(f"a {size} {colour} {shape}" + ("" if n == 1 else f" at the {place}"))
        short.append(f"{colour} {shape}")
    joined = parts[0] if n == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    first = f"{joined} on a {bg_name} background"
    count = ("one shape", "two shapes", "three shapes")[n - 1]
    second = f"{count} on {bg_name}: " + ", ".join(short)
    return img, [first[0].upper() + first[1:] + ".", second]


def photo(rng: np.random.Generator) -> tuple[Image.Image, list[str]]:
    """A crop of a bundled photo with slight colour changes, and two captions."""
    choices = photos.available()
    path = choices[int(rng.integers(len(choices)))]
    src = photos.load(path)
    w, h = src.size
    side = int(min(w, h) * rng.uniform(0.7, 1.0))
    x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    img = src.crop((x0, y0, x0 + side, y0 + side)).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.85, 1.15))
    what = photos.PHOTOS[path]
    return img, [f"A photo of {what}.", f"{what[0].upper()}{what[1:]}"]


class SynthCaptionsConfig(StrictModel):
    seed: int = 0
    images: int = 800


class SynthCaptions(EmbeddedTask):
    """Embedded image-caption pretraining pairs (rendered scenes + bundled photos), COCO format."""

    Config = SynthCaptionsConfig
    name = "synth-captions"
    #: read by the COCO reader: pairs are named by image (ti-jepa's one-random captions)
    reads_coco = True
    modalities = ("image", "text")
    label_type = "none"
    metrics = ("loss",)

    def generate(self, out: Path) -> None:
        cfg = self.config
        assert isinstance(cfg, SynthCaptionsConfig)
        coco = COCOConfig()
        (out / coco.images).mkdir(parents=True)
        images, annotations = [], []
        for i in range(cfg.images):
            rng = np.random.default_rng([cfg.seed, i])
            img, texts = photo(rng) if rng.random() < PHOTO_SHARE else scene(rng)
            image_id = 100_000 + i
            name = f"{image_id:012d}.jpg"
            img.save(out / coco.images / name, quality=90)
            images.append({"id": image_id, "file_name": name, "width": SIZE, "height": SIZE})
            for text in texts:
                annotations.append(
                    {"id": len(annotations) + 1, "image_id": image_id, "caption": text}
                )
        doc = {"info": {"description": "mmalign synth-captions"}, "images": images}
        doc["annotations"] = annotations
        (out / coco.annotations).parent.mkdir(parents=True)
        (out / coco.annotations).write_text(json.dumps(doc), encoding="utf-8")

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        cfg = self.config
        assert isinstance(cfg, SynthCaptionsConfig)
        return read_coco(self.root, COCOConfig(split_seed=cfg.seed), report, deep)

    def evaluate(self, outputs: Outputs, labels: object) -> dict[str, float]:
        return loss_evaluate(outputs)
