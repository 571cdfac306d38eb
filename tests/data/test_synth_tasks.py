"""The other embedded tasks: real formats read back by the real readers, with signal."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from mmalign.data.check import check_task
from mmalign.data.synth.captions import SynthCaptions, SynthCaptionsConfig
from mmalign.data.synth.mosi import TRANSCRIPTS, SynthMOSI, SynthMOSIConfig
from mmalign.data.synth.sarcasm import SynthSarcasm, SynthSarcasmConfig
from mmalign.data.synth.xmedianet import SynthXMediaNet, SynthXMediaNetConfig


def brightness(path: Path) -> float:
    with Image.open(path) as img:
        return float(np.asarray(img.convert("L")).mean())


def test_sarcasm_in_hfm_format(tmp_path: Path) -> None:
    task = SynthSarcasm(SynthSarcasmConfig(samples=80), tmp_path)
    data = task.load()
    lines = {
        name: (task.root / "text" / name).read_text().splitlines()
        for name in ("train.txt", "valid2.txt", "test2.txt")
    }
    assert [len(v) for v in lines.values()] == [64, 8, 8]
    tagged = sum("# sarcasm" in line for v in lines.values() for line in v)
    assert sum(len(v) for v in data.splits.values()) == 80 - tagged
    assert data.problems == []
    samples = [s for v in data.splits.values() for s in v]
    # sarcasm is mostly a positive caption on a dark image: darker images on average
    dark = {
        y: np.mean([brightness(s.inputs["image"]) for s in samples if s.label == y]) for y in (0, 1)
    }
    assert dark[1] < dark[0]
    assert check_task(task)["problems"] == []


def test_mosi_pickle_and_its_cues(tmp_path: Path) -> None:
    task = SynthMOSI(SynthMOSIConfig(samples=60), tmp_path)
    data = task.load()
    with (task.root / "unaligned_50.pkl").open("rb") as fh:
        raw = pickle.load(fh)
    assert set(raw) == {"train", "valid", "test"}
    assert raw["train"]["text_bert"].shape[1:] == (3, 50)
    assert raw["train"]["text_bert"][0, 0, 0] == 101  # [CLS] in the BERT-uncased vocabulary
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 43, "validation": 7, "test": 10}
    assert data.problems == []
    assert data.repaired.get("features_nonfinite_zeroed", 0) == sum(
        int(np.isinf(part["audio"]).any(axis=(1, 2)).sum()) for part in raw.values()
    )
    samples = [s for v in data.splits.values() for s in v]
    patterns = [
        (re.compile(t.replace("{t}", r"\w+")), p) for p, ts in TRANSCRIPTS.items() for t in ts
    ]

    def text_polarity(text: str) -> int:
        (polarity,) = [p for pattern, p in patterns if pattern.fullmatch(text)]
        return polarity

    residual = np.array([s.label - 0.9 * text_polarity(s.inputs["text"]) for s in samples])
    cues = np.array(
        [s.inputs["audio"][:, :4].mean() + s.inputs["video"][:, :5].mean() for s in samples]
    )
    inside = np.abs([s.label for s in samples]) < 2.9  # clipping hides the cues at the ends
    assert np.corrcoef(residual[inside], cues[inside])[0, 1] > 0.8


def test_xmedianet_layout_and_cues(tmp_path: Path) -> None:
    task = SynthXMediaNet(SynthXMediaNetConfig(per_category=8), tmp_path)
    data = task.load()
    assert data.label_names is not None and len(data.label_names) == 20
    by_modality: dict[str, int] = {}
    for s in (s for v in data.splits.values() for s in v):
        (modality,) = s.inputs
        by_modality[modality] = by_modality.get(modality, 0) + 1
    assert by_modality == {"text": 160, "image": 160, "audio": 40, "video": 40}
    text = (task.root / "text" / "013_000.txt").read_text()
    assert "blue" in text and ("three" in text or "3" in text)
    pitches = []
    for cat in (0, 9):
        wave, rate = soundfile.read(task.root / "audio" / f"{cat:03d}_000.wav")
        pitches.append(np.argmax(np.abs(np.fft.rfft(wave))) * rate / len(wave))
    assert pitches[1] > pitches[0] * 2.5  # digit nine sounds higher than zero
    assert check_task(task)["problems"] == []


def test_captions_in_coco_format(tmp_path: Path) -> None:
    task = SynthCaptions(SynthCaptionsConfig(images=30), tmp_path)
    data = task.load()
    doc = json.loads((task.root / "annotations" / "captions_train2017.json").read_text())
    assert len(doc["images"]) == 30 and len(doc["annotations"]) == 60
    assert sum(len(v) for v in data.splits.values()) == 60
    assert all(s.label is None for v in data.splits.values() for s in v)
    red = next(a["caption"] for a in doc["annotations"] if "red" in a["caption"])
    assert red


@pytest.mark.parametrize(
    ("cls", "config"),
    [
        (SynthSarcasm, SynthSarcasmConfig(samples=20)),
        (SynthMOSI, SynthMOSIConfig(samples=20)),
        (SynthXMediaNet, SynthXMediaNetConfig(per_category=2)),
        (SynthCaptions, SynthCaptionsConfig(images=10)),
    ],
)
def test_deterministic(tmp_path: Path, cls: type, config: object) -> None:
    a, b = cls(config, tmp_path / "a"), cls(config, tmp_path / "b")
    a.prepare()
    b.prepare()
    files = sorted(p.relative_to(a.root) for p in a.root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b.root) for p in b.root.rglob("*") if p.is_file())
    for f in files:
        assert (a.root / f).read_bytes() == (b.root / f).read_bytes(), f
