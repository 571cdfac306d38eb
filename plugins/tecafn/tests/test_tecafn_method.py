"""TeCaFN through the runner on toy three-modality tasks."""

import json
import math

import numpy as np
import pytest
import torch
from mmalign_tecafn import fusion as fusion_module
from mmalign_tecafn.model import TeCaFNModel
from mmalign_tecafn.objective import TeCaFNObjective
from safetensors.torch import load_file

from mmalign.artefacts import weights_path
from mmalign.errors import ConfigError

SENTIMENT = {"mae", "corr", "acc7", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0"}


def test_regression_run_reports_msa_metrics_and_gate_rates(run_tecafn):
    result = run_tecafn(**{"train.epochs": 3, "p": 0.3})
    assert set(result.metrics["test"]) == SENTIMENT
    assert set(result.metrics["validation"]) == SENTIMENT
    history = result.extra["stages"]["train"]["history"]
    rates = [row[f"train_replaced_{m}"] for row in history for m in ("audio", "video")]
    # 112 training samples per epoch and modality: the mean rate is near p (not 1 - p)
    assert abs(sum(rates) / len(rates) - 0.3) < 0.1
    assert all(row["train_ap"] > 0 and row["train_tcon"] > 0 for row in history)
    report = result.extra["stages"]["train"]["report"]
    assert set(report) == {
        f"{k}_{m}"
        for k in ("top1", "hardneg_label_gap", "random_label_gap")
        for m in ("audio", "video")
    }
    assert all(0.0 <= report[f"top1_{m}"] <= 1.0 for m in ("audio", "video"))
    # the reported test metrics are the MSA metrics of the saved test predictions,
    # recomputed here with scipy and scikit-learn (MMSA's conventions)
    from scipy.stats import pearsonr
    from sklearn.metrics import accuracy_score, f1_score

    from mmalign.artefacts import read_predictions

    rows = read_predictions(result.run_dir)
    t = np.array([r["label"] for r in rows], dtype=float)
    p = np.array([r["prediction"] for r in rows], dtype=float)
    got, nz = result.metrics["test"], t != 0
    assert len(rows) == 24 and got["mae"] == pytest.approx(np.abs(p - t).mean())
    assert got["corr"] == pytest.approx(pearsonr(p, t).statistic)
    assert got["acc7"] == pytest.approx(np.mean(np.round(np.clip(p, -3, 3))
                                                == np.round(np.clip(t, -3, 3))))
    assert got["acc2_has0"] == pytest.approx(accuracy_score(t >= 0, p >= 0))
    assert got["f1_non0"] == pytest.approx(f1_score(t[nz] > 0, p[nz] > 0, average="weighted"))


def test_validation_and_test_never_apply_the_gate(run_tecafn, monkeypatch):
    calls = {"train": 0, "eval": 0, "eval_forwards": 0}
    gate = fusion_module.replacement_gate
    forward = TeCaFNModel.forward
    mode = {"training": True}

    def spy_gate(*args, **kwargs):
        calls["train" if mode["training"] else "eval"] += 1
        return gate(*args, **kwargs)

    def spy_forward(self, batch):
        mode["training"] = self.training
        calls["eval_forwards"] += not self.training
        return forward(self, batch)

    monkeypatch.setattr(fusion_module, "replacement_gate", spy_gate)
    monkeypatch.setattr(TeCaFNModel, "forward", spy_forward)
    run_tecafn(**{"train.epochs": 2, "p": 1.0})
    assert calls["train"] > 0
    assert calls["eval_forwards"] > 0 and calls["eval"] == 0


def test_binary_task_uses_cross_entropy_and_acc2(run_tecafn):
    """Two logits per clip (the head's last layer has two outputs), on which the
    objective takes cross-entropy, not L1; and the reported acc2 / weighted F1 are
    scikit-learn's on the saved test predictions."""
    from sklearn.metrics import accuracy_score, f1_score

    from mmalign.artefacts import read_predictions

    result = run_tecafn(task="toy-humour", **{"train.epochs": 2})
    assert set(result.metrics["test"]) == {"acc2", "f1"}
    assert load_file(str(weights_path(result.run_dir, "train")))["model.head.fc.weight"].shape == (
        2, 16)
    rows = read_predictions(result.run_dir)
    assert rows and all(len(r["probabilities"]) == 2 for r in rows)
    assert all(r["prediction"] == int(np.argmax(r["probabilities"])) for r in rows)
    labels, preds = [r["label"] for r in rows], [r["prediction"] for r in rows]
    assert set(labels) == {0, 1}
    assert result.metrics["test"]["acc2"] == pytest.approx(accuracy_score(labels, preds))
    assert result.metrics["test"]["f1"] == pytest.approx(
        f1_score(labels, preds, average="weighted"))
    # the task term on two hand-made clips, labels 1 and 1: -log softmax(logits)[1]
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    aux = {"contrast": {}, "pair_logits": {}, "pair_labels": {}}
    task = TeCaFNObjective()({"logits": logits, "tecafn": aux}, {"label": torch.tensor([1, 1])})
    want = (math.log(1 + math.exp(2)) + math.log(1 + math.exp(-1))) / 2
    assert float(task["task"]) == pytest.approx(want) and float(task["loss"]) == pytest.approx(want)


def test_ablations_run_and_drop_the_encoder(run_tecafn):
    """``drop=video`` leaves no video branch in the trained model and encodes no video;
    with audio also out of L_tcon the unimodal contrast is zero, and with one
    modality left to fuse there is no L_bicon."""
    result = run_tecafn(
        **{
            "train.epochs": 1,
            "drop": "video",
            "no_contrast": "audio",
            "random_negatives": "audio",
        }
    )
    assert set(result.metrics["test"]) == SENTIMENT
    stage = result.extra["stages"]["train"]["history"][0]
    assert "train_replaced_video" not in stage and stage["train_tcon"] == 0.0
    assert stage["train_bicon"] == 0.0 and 0.0 < stage["train_replaced_audio"] < 1.0
    params = json.loads((result.run_dir / "metrics.json").read_text())["params"]["train"]
    assert "encoder.video" not in params and "encoder.audio" in params  # never encoded
    names = load_file(str(weights_path(result.run_dir, "train")))
    assert not [n for n in names if "video" in n]
    branches = {n.split(".")[2] for n in names if n.startswith("model.fusion.") and "audio" in n}
    assert branches == {"unimodal", "temporal", "query_map", "key_map", "cross", "pair_heads"}


@pytest.mark.parametrize(
    "sets, message",
    [
        ({"no_gate": "vision"}, "no_gate names"),
        ({"drop": "vision"}, "drop names"),
        ({"core": "audio", "drop": "audio"}, "core modality"),
        ({"core": "video", "no_contrast": "video"}, "no_contrast names"),
    ],
)
def test_misnamed_modalities_are_refused(run_tecafn, sets, message):
    with pytest.raises(ConfigError, match=message):
        run_tecafn(**{"train.epochs": 1, **sets})


def test_seeded_runs_are_reproducible(run_tecafn):
    """The same seed gives the same metrics and per-epoch losses and replacement rates
    over two epochs; another seed draws other gates (so the equality is not vacuous)."""
    a = run_tecafn(**{"train.epochs": 2})
    b = run_tecafn(**{"train.epochs": 2})
    c = run_tecafn(seed=1, **{"train.epochs": 1})
    history = [r.extra["stages"]["train"]["history"] for r in (a, b, c)]
    assert a.metrics == b.metrics and history[0] == history[1] and len(history[0]) == 2
    assert torch.isfinite(torch.tensor(a.metrics["test"]["mae"]))
    gates = ("train_replaced_audio", "train_replaced_video")
    assert [history[2][0][k] for k in gates] != [history[0][0][k] for k in gates]


class _Killed(BaseException):
    """Stands for SIGKILL: nothing in the runner may catch it."""


def test_a_killed_run_resumes_to_the_uninterrupted_result(run_tecafn, monkeypatch):
    """The modality replacements and dropout are random draws: a resumed run must draw
    the same ones (the step generator is seeded per epoch, the checkpoint carries the
    global RNG state), so its epochs 3 and 4 repeat the uninterrupted run's losses,
    replacement rates and validation metrics exactly. Comparing only the final metrics
    would not do: the selected epoch may precede the kill."""
    from mmalign import paths
    from mmalign.runner import loop

    sets = {"train.epochs": 4, "p": 0.5}
    full = run_tecafn(**sets)
    save, saved = loop.checkpoint.save, []

    def save_then_die(path, blob):
        save(path, blob)
        saved.append(path)
        if len(saved) == 2:
            raise _Killed

    monkeypatch.setattr(loop.checkpoint, "save", save_then_die)
    with pytest.raises(_Killed):
        run_tecafn(**sets)
    run_dir = saved[0].parent
    assert run_dir != full.run_dir and run_dir.parent == paths.runs_dir()
    saved.clear()
    monkeypatch.setattr(loop.checkpoint, "save", lambda path, blob: (save(path, blob),
                                                                     saved.append(path)))
    resumed = run_tecafn(resume=str(run_dir), **sets)
    assert resumed.status == "completed" and resumed.run_dir == run_dir
    assert len(saved) == 2  # it went on from epoch 2: only epochs 3 and 4 were trained
    assert resumed.metrics == full.metrics
    history = resumed.extra["stages"]["train"]["history"]
    want = full.extra["stages"]["train"]["history"]
    assert len(history) == 4 and history == want
    assert {"train_replaced_audio", "train_ap", "val_mae"} <= set(history[3])
