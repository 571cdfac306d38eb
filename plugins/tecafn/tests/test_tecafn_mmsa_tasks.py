"""``tecafn`` on the real-format readers: MMSA pickles for CMU-MOSI, CMU-MOSEI and
UR-FUNNY read through the task readers, text through the embedded MiniLM; and the
paper's protocol (fine-tuned BERT) with a tiny BERT written to disk."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from mmalign_tecafn.method import FEATURE_DIMS, TeCaFN, build_parts
from safetensors.torch import load_file

from mmalign.artefacts import read_predictions, weights_path
from mmalign.data.mmsa import CMUMOSI
from mmalign.errors import ConfigError
from mmalign.interfaces import BuildContext
from mmalign.plugins import get_host
from mmalign.runner import RunRequest, execute
from mmalign.runner.compose import make_encoders, method_config
from mmalign.runner.optim import make_optimizer, trainable_parameters
from mmalign.testing import tiny_bert

WORDS = ("great", "awful", "fine", "boring", "lovely", "dull")
P = {"cmu-mosi": 0.7, "cmu-mosei": 0.4, "ur-funny": 0.5}


def write_mmsa(folder: Path, audio_dim: int, video_dim: int, sizes=(24, 8, 8), steps=6) -> None:
    """An ``unaligned_50.pkl`` with MMSA's key set: padding at the end, BERT ids and
    features, annotations, -inf in COVAREP-style audio."""
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
        audio[0, 0, 0] = -np.inf
        data[split] = {
            "raw_text": np.array([f"it was {WORDS[i % len(WORDS)]} {i}" for i in range(n)]),
            "text": rng.normal(size=(n, 8, 768)).astype(np.float32),
            "text_bert": np.stack([np.full((n, 8), 101), np.ones((n, 8)), np.zeros((n, 8))], 1),
            "audio": audio,
            "vision": video,
            "audio_lengths": list(a_len),
            "vision_lengths": list(v_len),
            "annotations": ["Positive" if y > 0 else "Negative" for y in labels],
            "classification_labels": (labels > 0).astype(np.float32),
            "regression_labels": labels.astype(np.float32),
            "id": np.array([f"vid{split}$_${i}" for i in range(n)]),
        }
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "unaligned_50.pkl").open("wb") as fh:
        pickle.dump(data, fh)


@pytest.mark.parametrize("task", ["cmu-mosi", "cmu-mosei", "ur-funny"])
def test_tecafn_runs_on_the_mmsa_reader_fixtures(task, tmp_path, mmalign_home):
    """Table 6's p and the pickle's feature sizes reach the model, the reader keeps every
    clip and zeroes the -inf of each split (MMSA does), the reported metrics are those of
    the saved predictions of the pickle's test labels, and the gates replace about p of
    the clips: p = 0.7 / 0.4 are 0.4 / 0.2 away from 1 - p, so a swap is caught."""
    write_mmsa(tmp_path / task, *FEATURE_DIMS[task])  # the task's standard feature sizes
    with (tmp_path / task / "unaligned_50.pkl").open("rb") as fh:
        pickled = pickle.load(fh)
    sets = {"train.epochs": 3, "train.batch_size": 8, "train.patience": None}
    result = execute(
        RunRequest(
            method="tecafn", task=task, size="tiny", sets=sets, data_dir=tmp_path / task, quiet=True
        )
    )
    saved = json.loads((result.run_dir / "run.json").read_text())["method_config"]["method"]
    assert saved["p"] == P[task]  # Table 6 per dataset
    stage = result.extra["stages"]["train"]
    assert stage["repaired"] == {"features_nonfinite_zeroed": 3}  # audio[0, 0, 0] per split
    assert stage["load_problems"] == 0
    assert stage["skipped"] == {"train": 0, "validation": 0, "test": 0}
    # the audio/video branches take the widths of the pickle's sequences
    weights = load_file(str(weights_path(result.run_dir, "train")))
    for m, key in (("audio", "audio"), ("video", "vision")):
        width = pickled["train"][key].shape[-1]
        assert weights[f"model.fusion.unimodal.{m}.proj.weight"].shape == (8, width), m
    assert (pickled["train"]["audio"].shape[-1], pickled["train"]["vision"].shape[-1]) == (
        FEATURE_DIMS[task]
    )

    rows = read_predictions(result.run_dir)
    labels = dict(zip(pickled["test"]["id"], pickled["test"]["regression_labels"], strict=True))
    y = np.array([labels[r["id"]] for r in rows], dtype=float)
    pred = np.array([r["prediction"] for r in rows])
    assert sorted(r["id"] for r in rows) == sorted(labels)
    test = result.metrics["test"]
    if task == "ur-funny":
        assert [r["label"] for r in rows] == (y > 0).astype(int).tolist()
        assert set(test) == {"acc2", "f1"}
        assert test["acc2"] == pytest.approx(np.mean(pred == (y > 0)))
    else:
        assert np.allclose([r["label"] for r in rows], y) and (np.abs(pred) <= 3).all()
        assert {"mae", "corr", "acc7", "acc2_has0", "acc2_non0", "f1_has0", "f1_non0"} == set(test)
        assert test["mae"] == pytest.approx(np.abs(pred - y).mean())
        assert test["acc2_has0"] == pytest.approx(np.mean((pred >= 0) == (y >= 0)))
        nonzero = y != 0  # the fixture's two zero labels leave the non0 convention
        assert test["acc2_non0"] == pytest.approx(np.mean((pred > 0)[nonzero] == (y > 0)[nonzero]))
    rates = [row[f"train_replaced_{m}"] for row in stage["history"] for m in ("audio", "video")]
    assert abs(float(np.mean(rates)) - P[task]) < 0.1  # 3 epochs x 24 clips x 2 gates


def test_paper_size_fine_tunes_bert_at_its_own_learning_rate(tmp_path):
    """``--size paper`` builds BERT inside the model, trainable, and the optimizer
    moves it at lr_bert = 5e-5 while the rest moves at 1e-3 (Adam's first step
    changes every parameter with a gradient by about its learning rate)."""
    size = tiny_bert(tmp_path / "bert")
    cfg = method_config(
        TeCaFN(), "cmu-mosi", "paper", [{"encoders.text.config.path": str(tmp_path / "bert")}]
    )
    assert cfg.encoders["text"].name == "bert-base-uncased" and not cfg.encoders["text"].cache
    assert (cfg.unimodal_layers, cfg.cross_layers, cfg.train.epochs) == (6, 6, 40)
    task = CMUMOSI(data_dir=tmp_path)
    encoders = make_encoders(get_host().registry, cfg.encoders, task.modalities)
    dims = {m: e.out_dim for m, e in encoders.items()}
    inputs = {m: e.feature_spec(cfg.encoders[m].keep) for m, e in encoders.items()}
    ctx = BuildContext(task, encoders, dims, cfg, {}, torch.device("cpu"), inputs)
    model, objective = build_parts(cfg, ctx)
    bert = list(model.encoders["text"].parameters())
    assert sum(p.numel() for p in bert) == size and all(p.requires_grad for p in bert)

    text = encoders["text"]
    g = torch.Generator().manual_seed(0)
    batch = {
        "label": torch.tensor([1.0, -2.0, 0.5, 0.0]),
        "text": {"inputs": text.collate([text.preprocess(f"it was {w}") for w in WORDS[:4]])},
    }
    for m, d in (("audio", 5), ("video", 20)):
        batch[m] = {"tokens": torch.randn(4, 3, d, generator=g), "mask": torch.ones(4, 3).bool()}
    optimizer = make_optimizer(cfg.train, trainable_parameters(model, objective))
    assert sorted(group["lr"] for group in optimizer.param_groups) == [5e-5, 1e-3]
    before = {id(p): p.detach().clone() for p in trainable_parameters(model, objective)}
    model.train()
    objective(model(batch), batch)["loss"].backward()
    optimizer.step()
    others = [p for p in trainable_parameters(model, objective) if all(p is not q for q in bert)]

    def biggest_step(params):
        return max(float((p.detach() - before[id(p)]).abs().max()) for p in params)

    assert biggest_step(bert) == pytest.approx(5e-5, rel=0.05)
    assert biggest_step(others) == pytest.approx(1e-3, rel=0.05)


def test_a_trainable_cached_encoder_is_refused():
    cfg = method_config(
        TeCaFN(), "synth-mosi", "default", [{"encoders.text.config.trainable": True}]
    )
    with pytest.raises(
        ConfigError, match="encoders.text.config.trainable=true needs encoders.text.cache=false"
    ):
        TeCaFN().stages(cfg, CMUMOSI())


def test_paper_size_runs_end_to_end_with_a_tiny_bert(tmp_path, mmalign_home):
    size = tiny_bert(tmp_path / "bert")
    write_mmsa(tmp_path / "mosi", *FEATURE_DIMS["cmu-mosi"])
    sets = {
        "encoders.text.config.path": str(tmp_path / "bert"),
        "unimodal_layers": 1,
        "cross_layers": 1,
        "train.epochs": 1,
        "train.batch_size": 8,
    }
    result = execute(
        RunRequest(
            method="tecafn",
            task="cmu-mosi",
            size="paper",
            sets=sets,
            data_dir=tmp_path / "mosi",
            quiet=True,
        )
    )
    params = json.loads((result.run_dir / "metrics.json").read_text())["params"]["train"]
    assert params["encoder.text"]["trainable"] == size and params["encoder.text"]["frozen"] == 0
    assert np.isfinite(result.metrics["test"]["mae"])


@pytest.mark.slow
def test_bert_base_text_encoder_by_name(tmp_path, mmalign_home):
    """The paper's text encoder by name, frozen (random full-size weights: none ship here)."""
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
