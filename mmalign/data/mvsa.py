"""MVSA-Single and MVSA-Multi (Niu et al. 2016) in their raw on-disk layout.

``data/{id}.jpg``, ``data/{id}.txt`` and ``labelResultAll.txt``: a header line, then
``id<TAB>text,image`` (Single) or three such annotations, one per annotator (Multi).
Labels follow the TI-JEPA paper's preprocessing: majority vote per modality over
the three annotators (a perfectly split vote drops the pair), pairs whose text and
image disagree as positive/negative are dropped, and a neutral side takes the
other side's label. On the real data this leaves 4,511 and 17,027 pairs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

from mmalign.data.base import DataTask
from mmalign.data.media import media_error
from mmalign.data.report import DataFileError, Report
from mmalign.data.splits import id_key, seeded_split
from mmalign.data.textio import decode, read_text
from mmalign.interfaces import Sample, StrictModel

#: class order of the published CLMLF splits: 0=positive, 1=neutral, 2=negative
LABELS = ("positive", "neutral", "negative")
LABEL_FILE = "labelResultAll.txt"
CONFLICT = "positive/negative conflict"
SPLIT_VOTE = "split vote"
CLMLF_FILES = (("train", "train.json"), ("validation", "dev.json"), ("test", "test.json"))


def majority(votes: Sequence[str]) -> str | None:
    """The label most annotators gave, or ``None`` when no label has a majority."""
    (label, count), *rest = Counter(votes).most_common()
    return None if rest and rest[0][1] == count else label


def combine(text: str, image: str) -> str | None:
    """One label from the text and image labels; ``None`` for a positive/negative clash."""
    if text == image:
        return text
    if text == "neutral":
        return image
    if image == "neutral":
        return text
    return None


def parse_label_file(path: Path, annotators: int, report: Report) -> list[tuple[str, str, str]]:
    """``(id, text_label, image_label)`` per line, majority-voted; bad lines reported."""
    text, _ = decode(path.read_bytes())
    out: list[tuple[str, str, str]] = []
    first_line: dict[str, int] = {}
    data_lines = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or (lineno == 1 and parts[0].lower() == "id"):
            continue
        data_lines += 1
        where = f"line {lineno}"
        sid, annotations = parts[0], parts[1:]
        if len(annotations) != annotators:
            report.problem(
                LABEL_FILE,
                f"{where}: expected {annotators} 'text,image' annotation"
                f"{'s' if annotators > 1 else ''} after the id, found {len(annotations)}",
            )
            continue
        pairs = [a.lower().split(",") for a in annotations]
        bad = [
            a
            for a, p in zip(annotations, pairs, strict=True)
            if len(p) != 2 or set(p) - set(LABELS)
        ]
        if bad:
            report.problem(
                LABEL_FILE,
                f"{where}: bad annotation '{bad[0]}' (expected text,image with labels "
                "positive, neutral or negative)",
            )
            continue
        if sid in first_line:
            report.problem(
                LABEL_FILE, f"{where}: duplicate id {sid} (first on line {first_line[sid]})"
            )
            continue
        first_line[sid] = lineno
        text_label, image_label = majority([p[0] for p in pairs]), majority([p[1] for p in pairs])
        if text_label is None or image_label is None:
            report.dropped(SPLIT_VOTE)
            continue
        out.append((sid, text_label, image_label))
    if not data_lines:
        raise DataFileError(LABEL_FILE, "no annotation lines")
    return out


def read_mvsa(root: Path, annotators: int, report: Report, deep: bool) -> list[Sample]:
    """Every pair kept by the label rules whose text and image are usable, sorted by id."""
    samples = []
    for sid, text_label, image_label in parse_label_file(root / LABEL_FILE, annotators, report):
        label = combine(text_label, image_label)
        if label is None:
            report.dropped(CONFLICT)
            continue
        text = read_text(root / "data" / f"{sid}.txt", report, f"data/{sid}.txt")
        image = root / "data" / f"{sid}.jpg"
        error = media_error("image", image, deep)
        if error is not None:
            report.problem(f"data/{sid}.jpg", error)
        if text is None or error is not None:
            continue
        samples.append(
            Sample(
                id=sid,
                inputs={"text": text, "image": image},
                label=LABELS.index(label),
                meta={"text_label": text_label, "image_label": image_label},
            )
        )
    return sorted(samples, key=id_key)


def read_clmlf(root: Path, split_dir: Path, report: Report, deep: bool) -> dict[str, list[Sample]]:
    """The published CLMLF splits: their ids, texts and labels; images from ``data/``."""
    out: dict[str, list[Sample]] = {}
    for split, filename in CLMLF_FILES:
        path = split_dir / filename
        rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        if not path.is_file():
            raise DataFileError(rel, "missing CLMLF split file")
        try:
            entries = json.loads(decode(path.read_bytes())[0])
        except json.JSONDecodeError as exc:
            raise DataFileError(rel, f"invalid JSON: {exc}") from exc
        if not isinstance(entries, list):
            raise DataFileError(rel, "expected a JSON list of {id, text, emotion_label}")
        out[split] = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not {"id", "text", "emotion_label"} <= entry.keys():
                report.problem(rel, f"entry {i}: expected keys id, text, emotion_label")
                continue
            sid, text, label = str(entry["id"]), str(entry["text"]).strip(), entry["emotion_label"]
            if label not in (0, 1, 2) or isinstance(label, bool):
                report.problem(
                    rel, f"entry {i} (id {sid}): emotion_label {label!r} is not 0, 1 or 2"
                )
                continue
            if not text:
                report.problem(rel, f"entry {i} (id {sid}): empty text")
                continue
            image = root / "data" / f"{sid}.jpg"
            error = media_error("image", image, deep)
            if error is not None:
                report.problem(f"data/{sid}.jpg", error)
                continue
            out[split].append(Sample(id=sid, inputs={"text": text, "image": image}, label=label))
    return out


class MVSAConfig(StrictModel):
    """``split``: ``seeded`` (8:1:1, ``split_seed``) or ``clmlf`` (the published
    ``train/dev/test.json`` in ``split_dir``, relative to the data folder or absolute)."""

    split: Literal["seeded", "clmlf"] = "seeded"
    split_seed: int = 0
    split_dir: str = "10-flod-1"


class MVSATask(DataTask):
    """Image-text sentiment from MVSA raw folders, labels by the TI-JEPA rules."""

    Config = MVSAConfig
    modalities = ("text", "image")
    label_type = "classification"
    label_names = LABELS
    metrics = ("acc", "f1_weighted")
    stand_in = "synth-sentiment"
    required = ("data", LABEL_FILE)
    annotators: ClassVar[int] = 1

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        cfg = self.config
        assert isinstance(cfg, MVSAConfig)
        if cfg.split == "clmlf":
            return read_clmlf(self.root, self.root / cfg.split_dir, report, deep)
        return seeded_split(read_mvsa(self.root, self.annotators, report, deep), cfg.split_seed)


class MVSASingle(MVSATask):
    """MVSA-Single: one annotator per pair (4,511 pairs after the label rules)."""

    name = "mvsa-single"


class MVSAMulti(MVSATask):
    """MVSA-Multi: three annotators per pair, majority vote (17,027 pairs after the rules)."""

    name = "mvsa-multi"
    annotators = 3
