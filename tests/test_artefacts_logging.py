"""Runs keep their weights, predictions and plots; load_run predicts the same; live logs."""

import csv
import json

import pytest
from safetensors.torch import load_file
from sklearn.metrics import accuracy_score
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from typer.testing import CliRunner

import mmalign
from mmalign.cli import app
from mmalign.errors import ConfigError
from mmalign.testing import toy_encoders

SETS = {"train.epochs": 3, "encoders": toy_encoders()}


def test_run_keeps_weights_predictions_history_and_plots(toy_plugin):
    result = mmalign.run("late-fusion", "toy-pairs", sets=SETS, loggers=["tensorboard"])
    run_dir = result.run_dir
    tensors = load_file(str(run_dir / "weights-train.safetensors"))
    assert tensors["model.head.linear.weight"].shape == (3, 32)  # 16 + 16 features, 3 classes
    assert not list(run_dir.glob("stage-*.ckpt"))  # resume checkpoints dropped
    preds = [json.loads(line) for line in (run_dir / "predictions-test.jsonl").open()]
    assert len(preds) == 36 and all(abs(sum(p["probabilities"]) - 1) < 1e-4 for p in preds)
    # the kept predictions reproduce the recorded test accuracy (sklearn, independently)
    acc = accuracy_score([p["label"] for p in preds], [p["prediction"] for p in preds])
    assert acc == pytest.approx(result.metrics["test"]["acc"])
    history = [json.loads(line) for line in (run_dir / "history.jsonl").open()]
    assert [h["epoch"] for h in history] == [0, 1, 2] and "val_acc" in history[0]
    rows = list(csv.DictReader((run_dir / "history-train.csv").open()))
    assert len(rows) == 3 and float(rows[2]["val_acc"]) == pytest.approx(history[2]["val_acc"])
    for png in ("curves-train.png", "confusion-test.png"):
        assert (run_dir / png).read_bytes()[:4] == b"\x89PNG"
    events = EventAccumulator(str(next((run_dir / "tensorboard").iterdir()).parent))
    events.Reload()
    scalars = events.Scalars("train/val_acc")
    assert [s.step for s in scalars] == [0, 1, 2]
    assert scalars[-1].value == pytest.approx(history[2]["val_acc"], rel=1e-6)


def test_load_run_predicts_what_the_run_predicted(toy_plugin):
    result = mmalign.run("late-fusion", "toy-pairs", sets=SETS)
    loaded = mmalign.load_run(result.run_id)
    again = loaded.predict()
    kept = [json.loads(line) for line in (result.run_dir / "predictions-test.jsonl").open()]
    assert [p["id"] for p in again] == [p["id"] for p in kept]
    assert [p["prediction"] for p in again] == [p["prediction"] for p in kept]
    assert again[0]["probabilities"] == pytest.approx(kept[0]["probabilities"], abs=1e-5)
    one = loaded.predict(loaded.task.load().splits["test"][:2])
    assert [p["id"] for p in one] == [kept[0]["id"], kept[1]["id"]]


def test_unknown_logger_is_an_error_before_work(toy_plugin):
    with pytest.raises(ConfigError, match="Unknown logger 'tensorbord'. Did you mean"):
        mmalign.run("late-fusion", "toy-pairs", sets=SETS, loggers=["tensorbord"])
    out = CliRunner().invoke(app, ["run", "late-fusion", "--task", "toy-pairs", "--logger",
                                   "nope", "--set", "train.epochs=1", "--set",
                                   'encoders.a={name="toy-vector", config={seed=0}}', "--set",
                                   'encoders.b={name="toy-vector", config={seed=1}}'])
    assert out.exit_code == 2 and "Unknown logger 'nope'" in out.output


def test_plain_epoch_lines_without_a_tty(toy_plugin, capsys):
    mmalign.run("late-fusion", "toy-pairs", sets={**SETS, "train.epochs": 2}, quiet=False)
    err = capsys.readouterr().err
    assert "[train] epoch 1/2" in err and "[train] epoch 2/2" in err and "val_acc" in err


def test_progress_shows_throughput():
    from rich.progress import Progress

    from mmalign.runner.progress import RateColumn

    clock = iter([0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    progress = Progress(RateColumn(), get_time=lambda: next(clock), disable=True)
    task = progress.add_task("batches", total=10)
    progress.update(task, advance=2)  # t = 1 s
    progress.update(task, advance=2)  # t = 2 s: 4 steps in 2 s
    assert str(RateColumn().render(progress.tasks[0])) == "2.00/s"
