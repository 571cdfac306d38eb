"""``synth-speakers``: text-audio-video regression with recurring speakers, MMSA pickle.

Clips come from ``videos`` videos of ``clips_per_video`` clips each (ids
``video$_$clip``, as MMSA names them); the splits are by video, as MOSI's are.
The score is ``0.9 * text polarity + 0.6 * audio cue + 0.6 * video cue`` plus
annotator noise (σ 0.15), clipped to [-3, 3] and rounded to 0.2. Within a video the
speaker, the topic and the polarity recur and the cues vary only by ``clip_jitter``,
so a clip's nearest neighbours are near-duplicates from its own video (the premise
of TeCaFN's hard-negative replacement: "different clips of the same video"), and
the audio prosody channels follow the transcript by ``prosody_tie``. With rate
``corrupt`` (independently for audio and video, in every split) a clip's
non-text features are missing (all zeros) or corrupted (replaced by noise, half of
each): the robustness premise of TeCaFN's gates.

``premise``: 7 clips per video, cues shared within the video, corrupt 0.3.
``control``: every clip its own video with independent cues, nothing corrupted —
the structure of ``synth-mosi``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from mmalign.data.base import EmbeddedTask
from mmalign.data.mmsa import REGRESSION_METRICS, MMSAConfig, read_mmsa
from mmalign.data.report import Report
from mmalign.data.synth.mosi import (
    AUDIO_DIM,
    AUDIO_T,
    SPLIT_SIZES,
    THINGS,
    TRANSCRIPTS,
    VISION_DIM,
    VISION_T,
    _pad,
    text_bert,
)
from mmalign.data.synth.structure import TRUTH_FILE, StructuredConfig, write_truth
from mmalign.interfaces import Sample

NOISE = 0.15


def video_latent(rng: np.random.Generator) -> dict[str, Any]:
    """What recurs across a video's clips: speaker baselines, topic, polarity, cues."""
    return {
        "polarity": int(rng.integers(-2, 3)),
        "thing": THINGS[int(rng.integers(len(THINGS)))],
        "audio_cue": float(rng.uniform(-1, 1)),
        "video_cue": float(rng.uniform(-1, 1)),
        "voice": rng.normal(0, 0.4, AUDIO_DIM).astype(np.float32),
        "face": rng.normal(0, 0.4, VISION_DIM).astype(np.float32),
    }


def clip(
    rng: np.random.Generator, video: dict[str, Any], cfg: SynthSpeakersConfig
) -> tuple[str, np.ndarray, np.ndarray, dict[str, Any]]:
    """One clip of ``video``: transcript, audio [Ta, 16], vision [Tv, 20], truth row."""
    polarity = video["polarity"]
    options = TRANSCRIPTS[polarity]
    text = options[int(rng.integers(len(options)))].format(t=video["thing"])
    a_cue = float(np.clip(video["audio_cue"] + rng.normal(0, cfg.clip_jitter), -1, 1))
    v_cue = float(np.clip(video["video_cue"] + rng.normal(0, cfg.clip_jitter), -1, 1))
    ta, tv = int(rng.integers(24, AUDIO_T + 1)), int(rng.integers(16, VISION_T + 1))
    audio = rng.normal(0, 0.5, (ta, AUDIO_DIM)).astype(np.float32) + video["voice"]
    audio[:, :4] += a_cue + 0.3 * np.sin(np.linspace(0, rng.uniform(2, 8), ta))[:, None]
    audio[:, 4:8] += cfg.prosody_tie * polarity  # prosody follows the words
    vision = rng.normal(0, 0.5, (tv, VISION_DIM)).astype(np.float32) + video["face"]
    vision[:, :5] += v_cue
    states = []
    for feats in (audio, vision):
        state = "clean"
        if rng.random() < cfg.corrupt:
            state = "missing" if rng.random() < 0.5 else "corrupted"
            feats[:] = 0 if state == "missing" else rng.normal(0, 1.5, feats.shape)
        states.append(state)
    clean = 0.9 * polarity + 0.6 * a_cue + 0.6 * v_cue
    score = float(np.clip(clean + rng.normal(0, NOISE), -3, 3))
    row = {
        "polarity": polarity, "audio_cue": round(a_cue, 4), "video_cue": round(v_cue, 4),
        "clean_score": round(float(np.clip(clean, -3, 3)), 4),
        "audio_state": states[0], "video_state": states[1],
    }  # fmt: skip
    return text, audio, vision, row | {"label": round(score * 5) / 5}


def build(cfg: SynthSpeakersConfig) -> tuple[dict[str, dict[str, np.ndarray]], list[dict]]:
    """The pickle content and the truth rows, deterministic for the config."""
    out, truth, start = {}, [], 0
    for k, (split, share) in enumerate(SPLIT_SIZES):
        last = k == len(SPLIT_SIZES) - 1
        n_videos = cfg.videos - start if last else round(cfg.videos * share)
        clips, ids = [], []
        for v in range(start, start + n_videos):
            video = video_latent(np.random.default_rng([cfg.seed, v]))
            for c in range(cfg.clips_per_video):
                if not cfg.shared_cues:  # control: each clip draws its own latent
                    video = video_latent(np.random.default_rng([cfg.seed, v, c, 1]))
                text, audio, vision, row = clip(np.random.default_rng([cfg.seed, v, c]), video, cfg)
                clips.append((text, audio, vision, row["label"]))
                ids.append(f"synth{cfg.seed}_v{v:04d}$_${c}")
                truth.append({"id": ids[-1], "split": split, **row})
        texts = [c[0] for c in clips]
        out[split] = {
            "raw_text": np.array(texts, dtype=object),
            "audio": _pad([c[1] for c in clips], AUDIO_T),
            "vision": _pad([c[2] for c in clips], VISION_T),
            "text_bert": text_bert(texts),
            "audio_lengths": np.array([len(c[1]) for c in clips]),
            "vision_lengths": np.array([len(c[2]) for c in clips]),
            "regression_labels": np.array([c[3] for c in clips], dtype=np.float32),
            "id": np.array(ids, dtype=object),
        }
        start += n_videos
    return out, truth


class SynthSpeakersConfig(StructuredConfig):
    """Knob values of ``premise`` and ``control`` (fixed before any method was run)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "premise": {"clips_per_video": 7, "videos": 200, "shared_cues": True, "corrupt": 0.3},
        "control": {"clips_per_video": 1, "videos": 1400, "shared_cues": False, "corrupt": 0.0},
    }

    videos: int = Field(200, ge=3, description="videos; splits are by video")
    clips_per_video: int = Field(7, ge=1)
    shared_cues: bool = Field(True, description="a video's clips share speaker and cues")
    clip_jitter: float = Field(0.1, ge=0, description="std of a clip's cue around its video's")
    prosody_tie: float = Field(0.3, ge=0, description="audio prosody offset per polarity step")
    corrupt: float = Field(0.3, ge=0, le=1, description="per non-text modality: missing/noise")


class SynthSpeakers(EmbeddedTask):
    """Text-audio-video regression (MMSA pickle) with recurring speakers and corruption."""

    Config = SynthSpeakersConfig
    name = "synth-speakers"
    modalities = ("text", "audio", "video")
    label_type = "regression"
    metrics = REGRESSION_METRICS
    generator_version = 1

    def generate(self, out: Path) -> None:
        cfg = self.config
        assert isinstance(cfg, SynthSpeakersConfig)
        content, truth = build(cfg)
        with (out / MMSAConfig().file).open("wb") as fh:
            pickle.dump(content, fh, protocol=4)
        write_truth(out / TRUTH_FILE, truth)

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        return read_mmsa(self.root, MMSAConfig().file, report)
