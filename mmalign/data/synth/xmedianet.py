"""``synth-xmedianet``: four modalities aligned by category, in the XMediaNet layout.

Twenty categories: the ten digits, each in red or blue. Every modality shows both
attributes: texts name the digit and colour (number words, numerals, sentences);
images are scikit-learn's bundled handwritten digits tinted red or blue; audio is
a WAV tone whose pitch encodes the digit and whose timbre (square vs sine) the
colour; video is an MP4 of a tinted handwritten digit moving across the frame.
Counts per category follow XMediaNet's 4:4:1:1 text/image/audio/video ratio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mmalign.data.base import EmbeddedTask
from mmalign.data.report import Report
from mmalign.data.xmedianet import (
    MODALITIES,
    RETRIEVAL_METRICS,
    XMediaNetConfig,
    read_xmedianet,
    retrieval_evaluate,
)
from mmalign.interfaces import Outputs, Sample, StrictModel

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COLOURS = ("red", "blue")
TEXT_TEMPLATES = (
    "{w}",
    "a {c} {w}",
    "the number {w} written in {c}",
    "a {c} handwritten {d}",
    "{W}, colored {c}",
    "I see the digit {d} in {c} ink",
    "a picture of a {c} number {w}",
    "{c} {d}",
    "the {c} digit {w} on a dark background",
    "count to {w}; the numeral is {c}",
)
SAMPLE_RATE = 16000
SPLIT_SHARES = (("train", 0.7), ("valid", 0.1), ("test", 0.2))


def category(index: int) -> tuple[int, str]:
    return index % 10, COLOURS[index // 10]


def tint(gray: np.ndarray, colour: str, rng: np.random.Generator) -> np.ndarray:
    """A [H, W] digit in 0..1 as an RGB uint8 image in shades of the colour."""
    base = np.array([220, 40, 40] if colour == "red" else [40, 70, 230], dtype=np.float32)
    base = np.clip(base + rng.normal(0, 15, 3), 0, 255)
    back = rng.uniform(0, 40)
    return (back + gray[..., None] * (base - back)).astype(np.uint8)


def digit_image(digits: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """A random bundled 8x8 handwritten digit, smoothly upsampled to ``size``."""
    img = Image.fromarray((digits[int(rng.integers(len(digits)))] / 16 * 255).astype(np.uint8))
    return np.asarray(img.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255


def write_text(path: Path, rng: np.random.Generator, digit: int, colour: str) -> None:
    template = TEXT_TEMPLATES[int(rng.integers(len(TEXT_TEMPLATES)))]
    word = WORDS[digit]
    text = template.format(w=word, W=word.capitalize(), c=colour, d=digit)
    path.write_text(text + "\n", encoding="utf-8")


def write_audio(path: Path, rng: np.random.Generator, digit: int, colour: str) -> None:
    """One second of a tone: pitch from the digit, square (red) or sine (blue) timbre."""
    import soundfile

    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    freq = 220 * 2 ** (2 * digit / 12) * rng.uniform(0.99, 1.01)
    wave = np.sin(2 * np.pi * freq * t)
    if colour == "red":
        wave = np.sign(wave) * 0.6
    start = int(rng.uniform(0, 0.2) * SAMPLE_RATE)
    envelope = np.zeros_like(t)
    envelope[start : start + int(0.7 * SAMPLE_RATE)] = rng.uniform(0.3, 0.8)
    signal = wave * envelope + rng.normal(0, 0.01, len(t))
    soundfile.write(path, signal.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")


def write_video(path: Path, rng: np.random.Generator, digits: np.ndarray, colour: str) -> None:
    """Eight 64x64 frames of a tinted digit sliding across the frame (MPEG-4 in MP4)."""
    import av

    glyph = tint(digit_image(digits, rng, 32), colour, rng)
    y = int(rng.integers(0, 32))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for k in range(8):
            frame = np.zeros((64, 64, 3), dtype=np.uint8)
            x = 4 * k
            frame[y : y + 32, x : x + 32] = glyph
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


class SynthXMediaNetConfig(StrictModel):
    """Items per category: ``per_category`` texts and images, a quarter as many clips."""

    seed: int = 0
    per_category: int = 24


class SynthXMediaNet(EmbeddedTask):
    """Embedded four-modality category-aligned set (digits x colours) in XMediaNet layout."""

    Config = SynthXMediaNetConfig
    name = "synth-xmedianet"
    modalities = MODALITIES
    label_type = "retrieval"
    metrics = RETRIEVAL_METRICS
    categories: tuple[str, ...] = tuple(f"{c} {w}" for c in COLOURS for w in WORDS)

    def __init__(self, config: StrictModel | None = None, data_dir: Path | None = None) -> None:
        super().__init__(config, data_dir)
        self._names: list[str] | None = None

    def generate(self, out: Path) -> None:
        from sklearn.datasets import load_digits

        cfg = self.config
        assert isinstance(cfg, SynthXMediaNetConfig)
        bundled = load_digits()
        by_digit = {d: bundled.images[bundled.target == d] for d in range(10)}
        counts = {"text": cfg.per_category, "image": cfg.per_category}
        clips = max(cfg.per_category // 4, 1)
        counts |= {"audio": clips, "video": clips}
        ext = {"text": "txt", "image": "jpg", "audio": "wav", "video": "mp4"}
        (out / "list").mkdir()
        (out / "list" / "categories.txt").write_text("\n".join(self.categories) + "\n")
        for m_index, modality in enumerate(MODALITIES):
            (out / modality).mkdir()
            (out / "list" / modality).mkdir()
            lists: dict[str, list[str]] = {split: [] for split, _ in SPLIT_SHARES}
            for cat in range(len(self.categories)):
                digit, colour = category(cat)
                n = counts[modality]
                bounds = np.cumsum([round(n * share) for _, share in SPLIT_SHARES[:2]])
                for i in range(n):
                    rng = np.random.default_rng([cfg.seed, m_index, cat, i])
                    name = f"{cat:03d}_{i:03d}.{ext[modality]}"
                    path = out / modality / name
                    if modality == "text":
                        write_text(path, rng, digit, colour)
                    elif modality == "image":
                        img = tint(digit_image(by_digit[digit], rng, 96), colour, rng)
                        Image.fromarray(img).save(path, quality=90)
                    elif modality == "audio":
                        write_audio(path, rng, digit, colour)
                    else:
                        write_video(path, rng, by_digit[digit], colour)
                    split = SPLIT_SHARES[int(np.searchsorted(bounds, i, side="right"))][0]
                    lists[split].append(f"{name} {cat}")
            for split, lines in lists.items():
                (out / "list" / modality / f"{split}.txt").write_text("\n".join(lines) + "\n")

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        splits, self._names = read_xmedianet(self.root, XMediaNetConfig(), report, deep)
        return splits

    def data_label_names(self) -> list[str] | None:
        return self._names

    def evaluate(self, outputs: Outputs, labels: object) -> dict[str, float]:
        return retrieval_evaluate(outputs, labels)
