"""``synth-sarcasm``: image-text sarcasm written as HFM text files plus images.

Sarcasm here is a mismatch between the modalities: mostly a positive caption on a
dark, stormy or frowning image (and a few negative captions on bright ones).
Captions are drawn from the same sentiment templates whether or not the pair is
sarcastic, so neither modality alone reveals the label: text-only or image-only
models top out near 70% accuracy, a model using both near 95%. A few captions
carry a ``# sarcasm`` tag, which the HFM keyword filter drops as in the real data.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mmalign.data.base import EmbeddedTask
from mmalign.data.hfm import FILES, LABELS, HFMConfig, read_hfm
from mmalign.data.report import Report
from mmalign.data.synth import draw, words
from mmalign.interfaces import Sample, StrictModel

IMAGE_SIZE = 200
#: (text sentiment, image sentiment, sarcastic) and how often each occurs
KINDS = (
    (("positive", "negative", 1), 0.35),
    (("negative", "positive", 1), 0.05),
    (("positive", "positive", 0), 0.25),
    (("negative", "negative", 0), 0.25),
    (("neutral", "neutral", 0), 0.10),
)
TAGGED_RATE = 0.03
SPLIT_SHARES = (0.8, 0.1, 0.1)


def hfm_style(rng: np.random.Generator, text: str) -> str:
    """Lower-cased, space-tokenised text with ``<user>`` and ``emoji_N`` as in HFM."""
    text = re.sub(r"http\S+", "", text.lower())
    text = re.sub(r"@\w+", "<user>", text).replace("rt <user>:", "rt <user> :")
    text = re.sub(r"#(\w+)", r"# \1", text)
    text = re.sub(r"([!?.,:()])", r" \1 ", text)
    text = " ".join(text.replace("< user >", "<user>").split())
    if rng.random() < 0.3:
        text += f" emoji_{int(rng.integers(1, 3000))}"
    return text


class SynthSarcasmConfig(StrictModel):
    """``samples`` lines are written over the three files (about 3% are then filtered)."""

    seed: int = 0
    samples: int = 1200


class SynthSarcasm(EmbeddedTask):
    """Embedded image-text sarcasm in HFM format, where text and image disagree on purpose."""

    Config = SynthSarcasmConfig
    name = "synth-sarcasm"
    modalities = ("text", "image")
    label_type = "classification"
    label_names = LABELS
    metrics = ("acc", "f1_macro")

    def generate(self, out: Path) -> None:
        cfg = self.config
        assert isinstance(cfg, SynthSarcasmConfig)
        hfm = HFMConfig()
        (out / hfm.text_dir).mkdir()
        (out / hfm.image_dir).mkdir()
        kinds, shares = zip(*KINDS, strict=True)
        bounds = np.cumsum([int(cfg.samples * s) for s in SPLIT_SHARES[:2]])
        lines: list[list[str]] = [[], [], []]
        for i in range(cfg.samples):
            rng = np.random.default_rng([cfg.seed, i])
            text_s, image_s, label = kinds[int(rng.choice(len(kinds), p=shares))]
            sid = str(700_000_000_000_000_000 + cfg.seed * 1_000_000 + i)
            text = hfm_style(rng, words.caption(rng, text_s))
            if rng.random() < TAGGED_RATE:
                text += " # sarcasm"
            draw.render(rng, image_s, IMAGE_SIZE).save(
                out / hfm.image_dir / f"{sid}.jpg", quality=int(rng.integers(80, 95))
            )
            split = int(np.searchsorted(bounds, i, side="right"))
            if split == 0:
                lines[0].append(repr([sid, text, label]))
            else:
                hashtag = label if rng.random() > 0.03 else 1 - label
                lines[split].append(repr([sid, text, hashtag, label]))
        for (_, filename, _), rows in zip(FILES, lines, strict=True):
            (out / hfm.text_dir / filename).write_text("\n".join(rows) + "\n", encoding="utf-8")

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        return read_hfm(self.root, HFMConfig(), report, deep)
