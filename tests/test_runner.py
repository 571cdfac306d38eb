"""The runner end to end on the toy components: training, selection, caching, skips."""

import pytest
import torch

from mmalign import features, paths
from mmalign.errors import DataError, ResumeError
from mmalign.results import ResultsStore
from mmalign.runner import RunRequest, execute
from mmalign.store import FeatureStore
from mmalign.testing import ToyVectorEncoder, toy_encoders

FAST = {"encoders": toy_encoders(), "train.epochs": 6, "train.lr": 0.01}


def test_trains_far_above_chance_and_records_a_row(toy_plugin, run_method):
    result = run_method("late-fusion", task="toy-pairs", **FAST)
    assert result.metrics["test"]["acc"] > 0.7  # 3 classes: chance is 1/3
    row = ResultsStore().get(result.run_id)
    assert row["status"] == "completed" and row["metrics"] == result.metrics
    assert row["params"]["train"]["model.head"]["trainable"] == 33 * 3
    assert row["params"]["train"]["encoder.a"]["trainable"] == 0
    assert row["device"] == "cpu" and row["versions"]["torch"].startswith("2.11")
    assert (result.run_dir / "run.json").exists() and (result.run_dir / "metrics.json").exists()
    assert not list(result.run_dir.glob("*.ckpt"))  # resume checkpoints go once completed


def test_cpu_runs_are_bit_for_bit_repeatable(toy_plugin, run_method):
    first = run_method("late-fusion", task="toy-pairs", seed=3, **FAST)
    second = run_method("late-fusion", task="toy-pairs", seed=3, **FAST)
    other = run_method("late-fusion", task="toy-pairs", seed=4, **FAST)
    h1 = first.extra["stages"]["train"]["history"]
    assert h1 == second.extra["stages"]["train"]["history"]
    assert h1 != other.extra["stages"]["train"]["history"]


def test_selection_uses_validation_only(toy_plugin, run_method):
    result = run_method("late-fusion", task="toy-pairs", **FAST)
    stage = result.extra["stages"]["train"]
    best = max(range(len(stage["history"])), key=lambda i: stage["history"][i]["val_acc"])
    assert stage["best_epoch"] == best
    assert result.metrics["validation"]["acc"] == pytest.approx(stage["history"][best]["val_acc"])


def test_early_stopping(toy_plugin, run_method):
    result = run_method("late-fusion", task="toy-pairs", encoders=toy_encoders(),
                        **{"train.epochs": 50, "train.lr": 1e-9, "train.patience": 2})
    stage = result.extra["stages"]["train"]
    assert stage["stopped_early"] and stage["epochs_run"] == 3


def test_feature_cache_reused_and_no_cache(toy_plugin, run_method, monkeypatch):
    calls = []
    original = ToyVectorEncoder.forward
    monkeypatch.setattr(ToyVectorEncoder, "forward",
                        lambda self, x: calls.append(len(x)) or original(self, x))
    run_method("late-fusion", task="toy-pairs", **FAST)
    assert sum(calls) == 2 * 240  # two modalities, every sample once
    stores = sorted((paths.cache_dir() / "store").iterdir())
    assert len(stores) == 2  # one store per encoder, shared by the 3 splits
    assert [len(FeatureStore(d).where) for d in stores] == [240, 240]
    calls.clear()
    run_method("late-fusion", task="toy-pairs", seed=1, **FAST)
    assert calls == []  # warm cache: the encoders never ran
    calls.clear()
    execute(RunRequest(method="late-fusion", task="toy-pairs", sets=FAST, quiet=True,
                       use_cache=False))
    assert sum(calls) == 480


def test_cache_key_changes_with_encoder_config(toy_plugin):
    a = ToyVectorEncoder(ToyVectorEncoder.Config(seed=0))
    b = ToyVectorEncoder(ToyVectorEncoder.Config(seed=1))
    assert features.cache_path(a, "k", "train") != features.cache_path(b, "k", "train")
    assert features.cache_path(a, "k", "train") != features.cache_path(a, "k2", "train")


def test_bad_samples_are_skipped_and_counted(toy_plugin, run_method):
    result = run_method("late-fusion", task="toy-pairs", **FAST,
                        **{"task.corrupt": [0, 5, 200, 239]})
    stage = result.extra["stages"]["train"]
    assert stage["skipped"] == {"train": 2, "validation": 1, "test": 1}  # splits 168/36/36
    assert ResultsStore().get(result.run_id)["skipped"] == 4
    # the warm cache remembers the bad samples
    again = run_method("late-fusion", task="toy-pairs", seed=1, **FAST,
                       **{"task.corrupt": [0, 5, 200, 239]})
    assert again.extra["stages"]["train"]["skipped"]["test"] == 1


def test_all_bad_samples_stop_with_a_clear_error(toy_plugin, run_method):
    with pytest.raises(DataError, match="in a row failed|every one"):
        run_method("late-fusion", task="toy-pairs", **FAST,
                   **{"task.corrupt": list(range(240))})
    (row,) = ResultsStore().runs()
    assert row["status"] == "failed" and "DataError" in row["error"]


def test_resume_refuses_a_different_description(toy_plugin, run_method):
    result = run_method("late-fusion", task="toy-pairs", **FAST)
    with pytest.raises(ResumeError, match="task: run has 'toy-pairs'"):
        execute(RunRequest(method="late-fusion", task="synth-sentiment",
                           resume=str(result.run_dir), quiet=True))
    with pytest.raises(ResumeError, match="No run 'nope'"):
        execute(RunRequest(method="late-fusion", resume="nope", quiet=True))


def test_unknown_method_and_size(toy_plugin, run_method):
    from mmalign.errors import ConfigError, RegistryError

    with pytest.raises(RegistryError, match="Did you mean 'late-fusion'"):
        run_method("late-fusoin", task="toy-pairs")
    with pytest.raises(ConfigError, match="no size 'huge'"):
        execute(RunRequest(method="late-fusion", task="toy-pairs", size="huge", quiet=True))


def test_feature_set_batches_align_rows(toy_plugin):
    from mmalign.interfaces import Sample

    enc = ToyVectorEncoder()
    samples = [Sample(id=f"s{i}", inputs={"a": [float(i)] * 8}, label=i % 2) for i in range(5)]
    samples[2].inputs["a"] = [float("nan")] * 8
    fs = features.build_feature_set("train", samples, {"a": enc}, {"a": True}, "k",
                                    use_cache=False)
    assert fs.sample_ids == ["s0", "s1", "s3", "s4"] and fs.skipped == 1
    batch = fs.batch(torch.tensor([2, 0]))
    expected = enc(torch.tensor([[3.0] * 8, [0.0] * 8]))["pooled"]
    torch.testing.assert_close(batch["a"]["pooled"], expected)
    assert batch["label"].tolist() == [1, 0]


def test_keep_only_drops_unused_feature_keys(toy_plugin):
    from mmalign.interfaces import Sample

    samples = [Sample(id=f"s{i}", inputs={"a": [float(i)] * 8}, label=0) for i in range(3)]
    fs = features.build_feature_set("train", samples, {"a": ToyVectorEncoder()}, {"a": True},
                                    "k", use_cache=False)
    assert set(fs.batch(torch.tensor([0]))["a"]) == {"pooled", "tokens", "mask"}
    fs.keep_only({"a": ["pooled"]})
    assert set(fs.batch(torch.tensor([0]))["a"]) == {"pooled"}
