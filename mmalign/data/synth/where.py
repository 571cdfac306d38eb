"""``synth-where``: does the caption say where the shape is? A probe for text-image binding.

Written as an MVSA-Single raw folder and read by the MVSA reader. Every image is a
``synth-scenes`` scene (a 3 x 3 grid of places, two to four shapes); every caption
names one shape and a place in ``synth-scenes``' premise wording ("a red circle at
the top left."). The label says whether the caption holds, in MVSA's three labels:

* ``positive``: the named shape is at the named place;
* ``negative``: the named shape is in the image, at another place (the named place
  holds no such shape);
* ``neutral``: no shape of that colour and kind is in the image.

A true and a false statement name a shape that is present, at a place drawn from the
same distribution, so neither the caption nor the image alone tells them apart: only
binding the caption's place to the image's layout does (synergy in the sense of
Liang et al., "Quantifying & Modeling Multimodal Interactions", NeurIPS 2023).
"Absent" is decided by *what* is shown, without places. A model pretrained on
captions that say where things are (``synth-scenes`` premise) has been trained on
that binding, one pretrained on captions without places (control) has not: TI-JEPA's
premise, probed where its probe task depends on it. The knobs set the share of each
statement; the truth file names each pair's ``statement`` and layout, so a suite can
report accuracy on the where-questions apart from the what-questions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from mmalign.data.base import EmbeddedTask
from mmalign.data.mvsa import LABEL_FILE, LABELS, read_mvsa
from mmalign.data.report import Report
from mmalign.data.splits import seeded_split
from mmalign.data.synth.captions import COLOURS, SHAPES
from mmalign.data.synth.scenes import place_name, scene
from mmalign.data.synth.structure import TRUTH_FILE, write_truth
from mmalign.interfaces import Sample, StrictModel

STATEMENT_LABEL = {"true": "positive", "false": "negative", "absent": "neutral"}


def parse_layout(layout: str) -> list[tuple[str, str, int]]:
    """``"red circle@0;blue star@4"`` (``synth-scenes``' truth) as (colour, shape, cell)."""
    out = []
    for item in layout.split(";"):
        what, cell = item.rsplit("@", 1)
        colour, shape = what.split(" ")
        out.append((colour, shape, int(cell)))
    return out


def statement(
    rng: np.random.Generator, objects: list[tuple[str, str, int]], kind: str
) -> tuple[str, str, int] | None:
    """The (colour, shape, cell) a caption of ``kind`` states about ``objects``; None
    when the scene cannot carry it (no shape that is unique in its kind, for true and
    false statements)."""
    kinds = [(c, s) for c, s, _ in objects]
    if kind == "absent":
        missing = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in kinds]
        colour, shape = missing[int(rng.integers(len(missing)))]
        return colour, shape, int(rng.integers(9))
    unique = [o for o in objects if kinds.count((o[0], o[1])) == 1]
    if not unique:
        return None
    colour, shape, cell = unique[int(rng.integers(len(unique)))]
    if kind == "false":
        cell = [c for c in range(9) if c != cell][int(rng.integers(8))]
    return colour, shape, cell


class SynthWhereConfig(StrictModel):
    """Shares of the three statements (fixed before any method was run on them)."""

    seed: int = 0
    pairs: int = Field(1500, ge=3)
    false_share: float = Field(0.4, ge=0, le=1, description="share of wrong-place captions")
    absent_share: float = Field(0.2, ge=0, le=1, description="share of absent-shape captions")

    @model_validator(mode="after")
    def _shares(self) -> SynthWhereConfig:
        if self.false_share + self.absent_share > 1:
            raise ValueError("false_share + absent_share must be at most 1")
        return self


class SynthWhere(EmbeddedTask):
    """Caption-image agreement about where a shape is (MVSA-Single layout)."""

    Config = SynthWhereConfig
    name = "synth-where"
    modalities = ("text", "image")
    label_type = "classification"
    label_names = LABELS
    metrics = ("acc", "f1_weighted")
    generator_version = 1

    def write_pair(self, out: Path, sid: int) -> tuple[str, dict[str, object]]:
        """Write ``data/{sid}.txt`` and ``.jpg``; return the label-file line and truth row."""
        cfg = self.config
        assert isinstance(cfg, SynthWhereConfig)
        rng = np.random.default_rng([cfg.seed, sid])
        u = rng.random()
        kind = "false" if u < cfg.false_share else (
            "absent" if u < cfg.false_share + cfg.absent_share else "true")
        while True:  # redraw the rare scene whose shapes all repeat a kind
            img, _, layout = scene(rng, with_places=True)
            objects = parse_layout(layout["layout"])
            stated = statement(rng, objects, kind)
            if stated is not None:
                break
        colour, shape, cell = stated
        where = "in" if cell == 4 else "at"
        text = f"A {colour} {shape} {where} the {place_name(cell)}."
        (out / "data" / f"{sid}.txt").write_text(text, encoding="utf-8")
        img.save(out / "data" / f"{sid}.jpg", quality=90)
        label = STATEMENT_LABEL[kind]
        row = {"id": sid, "label": label, "statement": kind, "named": f"{colour} {shape}@{cell}",
               "layout": layout["layout"]}  # fmt: skip
        return f"{sid}\t{label},{label}", row

    def generate(self, out: Path) -> None:
        cfg = self.config
        assert isinstance(cfg, SynthWhereConfig)
        (out / "data").mkdir()
        written = [self.write_pair(out, sid) for sid in range(1, cfg.pairs + 1)]
        (out / LABEL_FILE).write_text(
            "ID\ttext,image\n" + "\n".join(line for line, _ in written) + "\n"
        )
        write_truth(out / TRUTH_FILE, [row for _, row in written])

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        cfg = self.config
        assert isinstance(cfg, SynthWhereConfig)
        return seeded_split(read_mvsa(self.root, 1, report, deep), cfg.seed)
