"""Nonsense training and component values stop a run before any work, naming the key."""

import pytest

from mmalign import paths
from mmalign.errors import ConfigError
from mmalign.results import ResultsStore
from mmalign.runner import RunRequest, execute
from mmalign.testing import toy_encoders

BAD = [
    ("train.epochs", 0, "greater than or equal to 1"),
    ("train.epochs", -1, "greater than or equal to 1"),
    ("train.batch_size", -5, "greater than or equal to 1"),
    ("train.batch_size", 0, "greater than or equal to 1"),
    ("train.eval_batch_size", 0, "greater than or equal to 1"),
    ("train.lr", float("inf"), "finite number"),
    ("train.lr", float("nan"), "finite number"),
    ("train.lr", -1.0, "greater than 0"),
    ("train.lr", 1e308, "less than or equal to 100"),
    ("train.weight_decay", -1.0, "greater than or equal to 0"),
    ("train.grad_clip", -1.0, "greater than 0"),
    ("train.gamma", float("nan"), "finite number"),
    ("train.step_size", 0, "greater than or equal to 1"),
    ("train.warmup_epochs", -5, "greater than or equal to 0"),
    ("train.patience", -3, "greater than or equal to 1"),
    ("train.patience", 0, "greater than or equal to 1"),
    ("dropout", 1.5, "less than 1"),
    ("dropout", -0.1, "greater than or equal to 0"),
    ("dropout", 1.0, "less than 1"),
    ("train.monitor", "bogus", "'bogus' is not reported by task 'toy-pairs'.*Valid: val_loss, acc"),
    ("train.monitor", "val_acc", "Did you mean 'acc'"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD)
def test_out_of_range_values_fail_at_resolve_time(toy_plugin, key, value, message):
    sets = {"encoders": toy_encoders(), key: value}
    with pytest.raises(ConfigError, match=rf"'{key}'.*{message}"):
        execute(RunRequest(method="late-fusion", task="toy-pairs", sets=sets, quiet=True))
    assert ResultsStore().runs() == []  # nothing recorded as completed (or at all)
    assert list(paths.runs_dir().iterdir()) == []


@pytest.mark.parametrize("monitor", ["val_loss", "acc", "f1_macro", "last"])
def test_monitors_the_task_reports_are_accepted(toy_plugin, run_method, monitor):
    result = run_method("late-fusion", task="toy-pairs", **{
        "encoders": toy_encoders(), "train.epochs": 2, "train.monitor": monitor,
        "task.samples": 60})
    stage = result.extra["stages"]["train"]
    assert stage["epochs_run"] == 2
    if monitor == "last":  # no selection: the final epoch is kept
        assert stage["best_epoch"] == 1


def test_dropout_of_any_component_config_is_a_probability():
    from mmalign.interfaces import StrictModel, TrainConfig
    from mmalign.runner.ranges import check_resolved
    from mmalign.testing import ToyPairsTask

    class Head(StrictModel):
        attn_dropout: float = 0.0

    class Cfg(StrictModel):
        heads: dict[str, Head] = {}
        train: TrainConfig = TrainConfig()

    check_resolved(Cfg(heads={"a": Head(attn_dropout=0.5)}), ToyPairsTask())
    with pytest.raises(ConfigError, match=r"'heads\.b\.attn_dropout': 1\.0 is outside \[0, 1\)"):
        check_resolved(Cfg(heads={"b": Head(attn_dropout=1.0)}), ToyPairsTask())
