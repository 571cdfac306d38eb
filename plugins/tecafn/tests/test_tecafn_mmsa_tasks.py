"""``tecafn`` on the real-format readers: tiny MMSA pickles for CMU-MOSI, CMU-MOSEI
and UR-FUNNY, read through the task readers, text through the embedded MiniLM."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from mmalign_tecafn.method import FEATURE_DIMS

from mmalign.runner import RunRequest, execute

WORDS = ("great", "awful", "fine", "boring", "lovely", "dull")


def write_mmsa(folder: Path, audio_dim: int, video_dim: int, sizes=(24, 8, 8), steps=6) -> None:
    """An ``unaligned_50.pkl`` in the MMSA layout, padding at the end of each sequence."""
    rng = np.random.default_rng(0)
    data = {}
    for split, n in zip(("train", "valid", "test"), sizes, strict=True):
        labels = rng.uniform(-3, 3, n).round(1)
        labels[:2] = 0.0  # the has0/non0 conventions must both see zero labels
        a_len, v_len = rng.integers(1, steps + 1, n), rng.integers(1, steps + 1, n)
        audio = rng.normal(size=(n, steps, audio_dim)).astype(np.float32)
        video = rng.normal(size=(n, steps, video_dim)).astype(np.float32)
        for i in range(n):
            audio[i, a_len[i] :] = 0
            video[i, v_len[i] :] = 0
        data[split] = {
            "raw_text": np.array([f"it was {WORDS[i % len(WORDS)]} {i}" for i in range(n)]),
            "audio": audio,
            "vision": video,
            "audio_lengths": a_len,
            "vision_lengths": v_len,
            "regression_labels": labels.astype(np.float32),
            "id": np.array([f"{split}-{i}" for i in range(n)]),
        }
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "unaligned_50.pkl").open("wb") as fh:
        pickle.dump(data, fh)


@pytest.mark.parametrize("task", ["cmu-mosi", "cmu-mosei", "ur-funny"])
def test_tecafn_runs_on_the_mmsa_reader_fixtures(task, tmp_path, mmalign_home):
    write_mmsa(tmp_path / task, *FEATURE_DIMS[task])  # the task's standard feature sizes
    sets = {"train.epochs": 1, "train.batch_size": 8}
    result = execute(
        RunRequest(
            method="tecafn", task=task, size="tiny", sets=sets, data_dir=tmp_path / task, quiet=True
        )
    )
    test = result.metrics["test"]
    if task == "ur-funny":
        assert set(test) == {"acc2", "f1"}
    else:
        assert {"mae", "corr", "acc7", "acc2_has0", "acc2_non0", "f1_has0", "f1_non0"} == set(test)
        assert np.isfinite(test["mae"])
    stage = result.extra["stages"]["train"]
    assert stage["history"][0]["train_replaced_audio"] >= 0.0


@pytest.mark.slow
def test_bert_base_text_encoder_by_name(tmp_path, mmalign_home):
    """The paper's text encoder by name (random full-size weights: none ship here)."""
    write_mmsa(tmp_path / "mosi", *FEATURE_DIMS["cmu-mosi"])
    sets = {
        "train.epochs": 1,
        "encoders.text.name": "bert-base-uncased",
        "encoders.text.config.weights": "random",
    }
    result = execute(
        RunRequest(
            method="tecafn",
            task="cmu-mosi",
            size="tiny",
            sets=sets,
            data_dir=tmp_path / "mosi",
            quiet=True,
        )
    )
    params = json.loads((result.run_dir / "metrics.json").read_text())["params"]["train"]
    assert params["encoder.text"]["frozen"] > 100_000_000  # BERT-base, kept frozen
    assert np.isfinite(result.metrics["test"]["mae"])
