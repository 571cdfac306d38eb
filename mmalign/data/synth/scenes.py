"""``synth-scenes``: captioned scenes whose captions say what is where, COCO format.

Each image is a 3 x 3 grid of places with two to four shapes on a plain
background. With ``positions`` 1 both captions name every shape with its colour and
place ("a red circle at the top left, a blue star in the centre and a green square
at the bottom right on a grey background"), so given the caption the content of a
masked image region is predictable: the text-conditioned prediction TI-JEPA trains
is learnable beyond the global content. With ``positions`` 0 the captions name the
same shapes in a random order without places: text still tells what is in the
image, never where. ``positions`` is the share of images whose captions name places.

``premise``: positions 1; ``control``: positions 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageDraw
from pydantic import Field

from mmalign.data.base import EmbeddedTask
from mmalign.data.coco import COCOConfig, loss_evaluate, read_coco
from mmalign.data.report import Report
from mmalign.data.synth.captions import BACKGROUNDS, COLOURS, SHAPES, SIZE, draw_shape
from mmalign.data.synth.structure import TRUTH_FILE, StructuredConfig, write_truth
from mmalign.interfaces import Outputs, Sample

ROWS, COLS = ("top", "middle", "bottom"), ("left", "centre", "right")


def place_name(cell: int) -> str:
    row, col = ROWS[cell // 3], COLS[cell % 3]
    return "centre" if cell == 4 else f"{row} {col}"


def joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def scene(rng: np.random.Generator, with_places: bool) -> tuple[Image.Image, list[str], dict]:
    """A scene, its two captions and its layout (for the truth file)."""
    bg = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    img = Image.new("RGB", (SIZE, SIZE), BACKGROUNDS[bg])
    d = ImageDraw.Draw(img)
    cells = sorted(int(c) for c in rng.permutation(9)[: int(rng.integers(2, 5))])
    colours = [c for c in COLOURS if COLOURS[c] != BACKGROUNDS[bg]]
    objects = []
    for cell in cells:
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        colour = colours[int(rng.integers(len(colours)))]
        cx = (cell % 3 + 0.5 + rng.uniform(-0.1, 0.1)) * SIZE / 3
        cy = (cell // 3 + 0.5 + rng.uniform(-0.1, 0.1)) * SIZE / 3
        draw_shape(d, shape, cx, cy, SIZE / 3 * rng.uniform(0.3, 0.4), COLOURS[colour])
        objects.append((colour, shape, cell))
    if with_places:
        first = [f"a {c} {s} {'in' if p == 4 else 'at'} the {place_name(p)}" for c, s, p in objects]
        second = [f"{place_name(p)}: {c} {s}" for c, s, p in objects]
    else:
        order = [objects[i] for i in rng.permutation(len(objects))]
        first = [f"a {c} {s}" for c, s, _ in order]
        second = [f"{c} {s}" for c, s, _ in order[::-1]]
    captions = [
        f"{joined(first)} on a {bg} background.".capitalize(),
        f"{len(objects)} shapes on {bg}; " + "; ".join(second),
    ]
    layout = ";".join(f"{c} {s}@{p}" for c, s, p in objects)
    return img, captions, {"background": bg, "layout": layout, "places_named": int(with_places)}


class SynthScenesConfig(StructuredConfig):
    """Knob values of ``premise`` and ``control`` (fixed before any method was run)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "premise": {"positions": 1.0},
        "control": {"positions": 0.0},
    }

    images: int = Field(400, ge=3)
    positions: float = Field(
        1.0, ge=0, le=1, description="share of images whose captions say where things are"
    )


class SynthScenes(EmbeddedTask):
    """Image-caption pretraining pairs that name objects and their places (COCO format)."""

    Config = SynthScenesConfig
    name = "synth-scenes"
    #: read by the COCO reader: pairs are named by image (ti-jepa's one-random captions)
    reads_coco = True
    modalities = ("image", "text")
    label_type = "none"
    metrics = ("loss",)
    generator_version = 1

    def generate(self, out: Path) -> None:
        cfg = self.config
        assert isinstance(cfg, SynthScenesConfig)
        coco = COCOConfig()
        (out / coco.images).mkdir(parents=True)
        images, annotations, truth = [], [], []
        for i in range(cfg.images):
            rng = np.random.default_rng([cfg.seed, i])
            img, texts, layout = scene(rng, bool(rng.random() < cfg.positions))
            image_id = 200_000 + i
            name = f"{image_id:012d}.jpg"
            img.save(out / coco.images / name, quality=90)
            images.append({"id": image_id, "file_name": name, "width": SIZE, "height": SIZE})
            for text in texts:
                annotations.append(
                    {"id": len(annotations) + 1, "image_id": image_id, "caption": text}
                )
            truth.append({"image_id": image_id, **layout})
        doc = {"info": {"description": "mmalign synth-scenes"}, "images": images}
        doc["annotations"] = annotations
        (out / coco.annotations).parent.mkdir(parents=True)
        (out / coco.annotations).write_text(json.dumps(doc), encoding="utf-8")
        write_truth(out / TRUTH_FILE, truth)

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        cfg = self.config
        assert isinstance(cfg, SynthScenesConfig)
        return read_coco(self.root, COCOConfig(split_seed=cfg.seed), report, deep)

    def evaluate(self, outputs: Outputs, labels: object) -> dict[str, float]:
        return loss_evaluate(outputs)
