"""The feature store: exact round trips, dedup by content, crash safety, versions,
per-batch reads and the migration of format-1 caches."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from mmalign import features, paths
from mmalign.errors import MMAlignError
from mmalign.interfaces import Sample
from mmalign.skips import SkipCounter
from mmalign.store import FeatureStore, StoredColumn, StoreFormatError, shards
from mmalign.testing import ToyVectorEncoder, limit_free_disk
from mmalign.toys import ToyVectorConfig


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MMALIGN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def vectors(n: int, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    return [Sample(id=f"s{i}", inputs={"a": rng.normal(size=8)}, label=i % 2) for i in range(n)]


def counting(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = ToyVectorEncoder.forward
    monkeypatch.setattr(ToyVectorEncoder, "forward",
                        lambda self, x: calls.append(len(x)) or original(self, x))
    return calls


def build(samples: list[Sample], enc: ToyVectorEncoder, **kw) -> features.FeatureSet:
    return features.build_feature_set("train", samples, {"a": enc}, {"a": True}, "k", **kw)


def test_fp32_round_trip_is_exact():
    enc, samples = ToyVectorEncoder(), vectors(10)
    fs = build(samples, enc, batch_size=3, store_dtype="fp32")
    assert all(isinstance(c, StoredColumn) for c in fs.modalities["a"].features.values())
    got = fs.batch(torch.tensor([7, 0, 4]))["a"]
    x = torch.tensor(np.stack([samples[i].inputs["a"] for i in (7, 0, 4)]), dtype=torch.float32)
    want = enc(x)
    assert torch.equal(got["tokens"], want["tokens"]) and torch.equal(got["pooled"], want["pooled"])
    assert got["mask"].dtype == torch.bool and got["mask"].all()


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_half_precision_store_is_within_its_rounding(dtype):
    enc, samples = ToyVectorEncoder(), vectors(6)
    got = build(samples, enc, store_dtype=dtype).batch(torch.arange(6))["a"]["tokens"]
    want = enc(torch.tensor(np.stack([s.inputs["a"] for s in samples]), dtype=torch.float32))
    assert got.dtype == torch.float32  # gathered batches come back in fp32
    eps = {"fp16": 2**-11, "bf16": 2**-8}[dtype]  # half an ulp, relative
    torch.testing.assert_close(got, want["tokens"], rtol=eps, atol=1e-6)
    assert not torch.equal(got, want["tokens"])  # it really was stored rounded
    stored = next((paths.cache_dir() / "store").iterdir())
    assert stored.name.endswith(dtype)


def test_five_rows_sharing_an_input_store_one_item(monkeypatch):
    calls = counting(monkeypatch)
    shared = np.arange(8, dtype=np.float64)
    samples = [Sample(id=f"cap{i}", inputs={"a": shared.copy()}, label=0) for i in range(5)]
    samples += vectors(2, seed=3)
    fs = build(samples, ToyVectorEncoder())
    assert sum(calls) == 3  # one shared input + two others
    store = next((paths.cache_dir() / "store").iterdir())
    assert len(FeatureStore(store).where) == 3
    pooled = fs.batch(torch.arange(7))["a"]["pooled"]
    assert all(torch.equal(pooled[i], pooled[0]) for i in range(5))
    assert not torch.equal(pooled[5], pooled[0])


def test_store_is_shared_across_splits_and_reused(monkeypatch):
    calls = counting(monkeypatch)
    samples = vectors(6)
    build(samples, ToyVectorEncoder())
    features.build_feature_set("test", samples[2:], {"a": ToyVectorEncoder()}, {"a": True}, "k")
    assert sum(calls) == 6


def test_extraction_advances_a_bar_on_the_shown_progress_display():
    import io

    from rich.console import Console
    from rich.progress import Progress

    from mmalign.runner.progress import shown

    display = Progress(console=Console(file=io.StringIO(), force_terminal=True))
    with shown(display):
        build(vectors(150), ToyVectorEncoder(), batch_size=64)  # 3 batches: 64, 64, 22
        build(vectors(150), ToyVectorEncoder(), batch_size=64)  # all stored: nothing to do
    (task,) = display.tasks
    assert task.description == "encode ToyVectorEncoder"
    assert (task.total, task.completed) == (150, 150)
    build(vectors(10, seed=1), ToyVectorEncoder())  # no display shown: no bar, no error
    assert len(display.tasks) == 1


def test_a_batch_reads_only_its_rows(monkeypatch):
    enc, samples = ToyVectorEncoder(), vectors(40)
    fs = build(samples, enc)
    read: list[int] = []
    original = os.preadv
    monkeypatch.setattr(os, "preadv", lambda fd, bufs, off: read.append(
        sum(memoryview(b).nbytes for b in bufs)) or original(fd, bufs, off))
    fs.batch(torch.tensor([3, 17, 39]))
    cols = fs.modalities["a"].features
    row_bytes = sum(c.shards[0].columns[c.name].row_bytes for c in cols.values())
    assert len(read) == 3 * len(cols) and sum(read) == 3 * row_bytes
    assert not any(isinstance(c, torch.Tensor) for c in cols.values())


def test_token_axes_pad_to_the_split_longest(monkeypatch):
    """Items of different lengths, encoded in different batches, line up per split."""
    class Ragged(ToyVectorEncoder):
        def forward(self, inputs):
            out = super().forward(inputs)
            n = 2 if inputs[0, 1] > 0 else 4
            mask = torch.zeros(out["mask"].shape, dtype=torch.bool)
            mask[:, :n] = True
            return {"tokens": out["tokens"][:, :n], "mask": mask[:, :n]}

    a = [Sample(id="p", inputs={"a": np.ones(8)}, label=0),
         Sample(id="q", inputs={"a": -np.ones(8)}, label=0)]
    fs = features.build_feature_set("train", a, {"a": Ragged()}, {"a": True}, "k", batch_size=1,
                                    store_dtype="fp32")
    batch = fs.batch(torch.tensor([0, 1]))["a"]
    assert batch["tokens"].shape[1] == 4 and batch["mask"].sum(1).tolist() == [2, 4]
    assert torch.all(batch["tokens"][0, 2:] == 0)


CRASH = textwrap.dedent("""
    import os, sys, numpy as np, torch
    from mmalign import features
    from mmalign.interfaces import Sample
    from mmalign.testing import ToyVectorEncoder
    from mmalign.store import store as st

    st.SHARD_BYTES = 1  # one shard per encoded batch
    calls = []
    original = ToyVectorEncoder.forward
    def dying(self, x):
        calls.append(len(x))
        if len(calls) == 3:
            os._exit(9)  # killed while the third batch is being encoded
        return original(self, x)
    ToyVectorEncoder.forward = dying
    rng = np.random.default_rng(0)
    samples = [Sample(id=f"s{i}", inputs={"a": rng.normal(size=8)}, label=0) for i in range(10)]
    enc = {"a": ToyVectorEncoder()}
    features.build_feature_set("train", samples, enc, {"a": True}, "k", batch_size=2)
""")


def test_a_killed_extraction_keeps_whole_shards_and_resumes(home, monkeypatch):
    env = {**os.environ, "MMALIGN_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", CRASH], env=env, capture_output=True)
    assert done.returncode == 9, done.stderr.decode()
    store_root = next((home / "cache" / "store").iterdir())
    assert len(FeatureStore(store_root).where) == 4  # two complete shards of 2 items
    calls = counting(monkeypatch)
    rng = np.random.default_rng(0)
    samples = [Sample(id=f"s{i}", inputs={"a": rng.normal(size=8)}, label=0) for i in range(10)]
    fs = build(samples, ToyVectorEncoder(), batch_size=2)
    assert sum(calls) == 6 and len(fs) == 10  # only what the killed run had not stored


WRITE_BIG = textwrap.dedent("""
    import sys, torch
    from pathlib import Path
    from mmalign.store import FeatureStore
    store = FeatureStore(Path(sys.argv[1]), "fp16", "big")
    writer, g = store.writer(), torch.Generator().manual_seed(0)
    n = int(sys.argv[2])
    for start in range(0, n, 100):
        keys = [f"k{i}" for i in range(start, min(n, start + 100))]
        writer.add(keys, {"tokens": torch.randn(len(keys), 64, 256, generator=g)})
    writer.close()
""")
#: one training epoch gathered from the store; prints the growth of peak RSS in bytes
READ_EPOCH = textwrap.dedent("""
    import resource, sys, torch
    from pathlib import Path
    from mmalign.features import FeatureSet, ModalityData, shuffled_batches
    from mmalign.store import FeatureStore
    store = FeatureStore(Path(sys.argv[1]), "fp16", "big")
    keys = sorted(store.where)
    fs = FeatureSet("train", keys, torch.zeros(len(keys), dtype=torch.long),
                    {"a": ModalityData(rows=torch.arange(len(keys)),
                                       features=dict(store.columns(keys)))}, {})
    fs.batch(torch.arange(32))  # warm: the first gather's allocations are not the split's
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total = 0.0
    for rows in fs.batches(shuffled_batches(len(fs), 32, torch.Generator().manual_seed(0))):
        total += float(rows["a"]["tokens"].sum())
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) * 1024)
""")


def test_an_epoch_from_the_store_grows_peak_rss_by_the_batch_not_the_split(tmp_path):
    growth = {}
    for n in (500, 4000):  # 16 MB and 131 MB of fp16 tokens on disk, 2 MB per fp32 batch
        root = tmp_path / f"store{n}"
        for script in (WRITE_BIG, READ_EPOCH):
            done = subprocess.run([sys.executable, "-c", script, str(root), str(n)],
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
        growth[n] = int(done.stdout.strip())
        assert FeatureStore(root, "fp16", "big").nbytes() > n * 64 * 256 * 2
    # the larger split is 8x the smaller and 131 MB on disk; an epoch that loaded it whole
    # would grow peak RSS by at least that (262 MB in fp32)
    assert growth[4000] < 24e6, growth
    assert growth[4000] - growth[500] < 12e6, growth


def test_incomplete_shard_files_are_detected_removed_and_rebuilt(monkeypatch, caplog):
    samples = vectors(4)
    build(samples, ToyVectorEncoder())
    root = next((paths.cache_dir() / "store").iterdir())
    (data,) = root.glob("shards/*.safetensors")
    dead = "00000000000000000001-otherhost-1-00000"
    (root / "shards" / f"{dead}.safetensors.tmp").write_bytes(b"\x00" * 10)  # killed mid-write
    data.write_bytes(data.read_bytes()[:-8])  # truncated: size no longer matches the sidecar
    calls = counting(monkeypatch)
    os.utime(root / "shards" / f"{dead}.safetensors.tmp", (0, 0))  # its writer is long gone
    with caplog.at_level(logging.WARNING, logger="mmalign.store"):
        fs = build(samples, ToyVectorEncoder())
    assert "incomplete shard" in caplog.text
    assert sum(calls) == 4 and len(fs) == 4
    names = sorted(p.name for p in (root / "shards").iterdir())
    assert len(names) == 2 and all(not n.endswith(".tmp") for n in names)  # one new shard


def test_a_live_writers_partial_shard_is_left_alone(tmp_path):
    name = shards.new_name(0).replace(f"-{os.getpid()}-", f"-{os.getppid()}-")
    part = tmp_path / f"{name}.safetensors.tmp"
    part.write_bytes(b"x")
    assert shards.scan(tmp_path) == ([], [])


def test_another_store_format_is_refused_with_a_message(home):
    samples = vectors(2)
    build(samples, ToyVectorEncoder())
    root = next((paths.cache_dir() / "store").iterdir())
    (root / "store.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(StoreFormatError, match=r"store.json: feature store format 99, .*reads "
                       r"format 2; delete .* to rebuild it"):
        build(samples, ToyVectorEncoder())


def test_format_1_cache_is_migrated_without_re_encoding(monkeypatch, caplog):
    enc, samples = ToyVectorEncoder(), vectors(5)
    x = torch.tensor(np.stack([s.inputs["a"] for s in samples[:4]]), dtype=torch.float32)
    old = {k: v.clone() for k, v in enc(x).items()}
    legacy = features.cache_path(enc, "k", "train")
    torch.save({"ids": [s.id for s in samples[:4]], "features": old, "bad": ["s4"]}, legacy)
    calls = counting(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="mmalign.features"):
        fs = build(samples, enc, store_dtype="fp32")
    assert calls == [] and not legacy.exists() and "migrated" in caplog.text
    assert fs.sample_ids == ["s0", "s1", "s2", "s3"] and fs.skipped == 1
    assert torch.equal(fs.batch(torch.arange(4))["a"]["pooled"], old["pooled"])


def test_fp16_overflow_asks_for_fp32(home):
    store = FeatureStore(home / "s", "fp16", "big")
    writer = store.writer()
    with pytest.raises(MMAlignError, match="exceed the fp16 range; store them as fp32"):
        writer.add(["k"], {"pooled": torch.full((1, 2), 1e6)})


def test_bad_inputs_are_remembered_by_content(monkeypatch):
    samples = vectors(4)
    samples[1].inputs["a"] = np.full(8, np.nan)
    fs = build(samples, ToyVectorEncoder())
    assert fs.skipped == 1
    calls = counting(monkeypatch)
    again = build(samples, ToyVectorEncoder())
    assert calls == [] and again.skipped == 1 and again.sample_ids == ["s0", "s2", "s3"]


def test_raw_inputs_are_preprocessed_per_batch(monkeypatch):
    seen: list[int] = []
    original = ToyVectorEncoder.preprocess
    monkeypatch.setattr(ToyVectorEncoder, "preprocess",
                        lambda self, raw: seen.append(1) or original(self, raw))
    samples = vectors(6)
    fs = features.build_feature_set("train", samples, {"a": ToyVectorEncoder()}, {"a": True},
                                    "k", inputs={"a": True})
    seen.clear()
    batch = fs.batch(torch.tensor([4, 1]))
    assert len(seen) == 2  # only the batch's two inputs
    want = torch.tensor(np.stack([samples[4].inputs["a"], samples[1].inputs["a"]]))
    torch.testing.assert_close(batch["a"]["inputs"], want.float())
    assert fs.modalities["a"].raw and isinstance(fs.modalities["a"].items[0], np.ndarray)


def test_encode_into_counts_skips(home):
    store = FeatureStore(home / "s", "fp32", "toy")
    counter = SkipCounter("t")
    raw = {"k1": ("s1", np.ones(8)), "k2": ("s2", np.full(8, np.nan))}
    features.encode_into(store, ToyVectorEncoder(), raw, 4, torch.device("cpu"), counter)
    assert counter.skipped == 1 and set(store.where) == {"k1"} and set(store.bad) == {"k2"}


def test_an_extraction_that_cannot_fit_stops_before_writing(monkeypatch, capsys):
    from mmalign.store.feasibility import DoesNotFitError

    limit_free_disk(monkeypatch, 1000)  # 1 kB free
    calls = counting(monkeypatch)
    with pytest.raises(DoesNotFitError) as info:
        build(vectors(300), ToyVectorEncoder(), batch_size=10, store_dtype="fp32", quiet=False)
    row = 4 * (16 + 4 * 16) + 4  # pooled + tokens in fp32, one bool per token
    msg = str(info.value)
    assert f"300 inputs x {row / 1e6:.3f} MB" in msg and "0.00 GB are free" in msg
    assert "--store-dtype fp16" in msg and "--data-fraction" in msg and "smaller encoder" in msg
    assert calls == [10]  # the probe batch only
    assert not list(paths.cache_dir().glob("store/*/shards/*"))  # nothing was written


def test_stores_that_fit_one_at_a_time_but_not_together_stop_the_run_before_encoding(
    monkeypatch,
):
    from mmalign.store.feasibility import DoesNotFitError

    row = 4 * (16 + 4 * 16) + 4  # one toy input's stored bytes in fp32
    # room for 300 inputs: every (split, modality) extraction (at most 100) fits on its
    # own, each modality's 200 inputs fit, the task's 400 do not
    limit_free_disk(monkeypatch, 300 * row)
    rng = np.random.default_rng(0)
    splits = {
        split: [Sample(id=f"{split}{i}", inputs={"a": rng.normal(size=8), "b": rng.normal(size=8)})
                for i in range(n)]
        for split, n in (("train", 100), ("validation", 50), ("test", 50))
    }
    encoders = {"a": ToyVectorEncoder(), "b": ToyVectorEncoder(ToyVectorConfig(seed=1))}
    calls = counting(monkeypatch)
    with pytest.raises(DoesNotFitError) as info:
        needs = features.extraction_needs(splits, encoders, {"a": True, "b": True}, {},
                                          batch_size=10, store_dtype="fp32")
        features.check_needs(needs, "fp32")
    msg = str(info.value)
    assert msg.count(f"200 inputs x {row / 1e6:.3f} MB") == 2
    assert f"the stores need {400 * row / 1e9:.2f} GB" in msg
    assert calls == [10, 10]  # one probe batch per encoder, nothing more
    calls.clear()
    for samples in splits.values():  # each extraction checked alone passes
        build(samples, encoders["a"], batch_size=10, store_dtype="fp32")
    assert sum(calls) == 200 - 10  # the probe's inputs were kept, not encoded again


def test_a_run_that_cannot_fit_stops_after_the_probe_batches(toy_plugin, run_method,
                                                             monkeypatch):
    from mmalign.store.feasibility import DoesNotFitError
    from mmalign.testing import toy_encoders

    limit_free_disk(monkeypatch, 1000)
    calls = counting(monkeypatch)
    with pytest.raises(DoesNotFitError, match=r"ToyVectorEncoder \+ ToyVectorEncoder"):
        run_method("late-fusion", task="toy-pairs", encoders=toy_encoders())
    assert len(calls) == 2  # a probe batch of each modality, no split encoded


def test_the_estimate_is_printed(capsys):
    build(vectors(30), ToyVectorEncoder(), batch_size=10, quiet=False)
    err = capsys.readouterr().err
    assert "ToyVectorEncoder: 30 inputs to encode, about 0.00 GB of fp16 features" in err
    assert "peak memory about" in err


def test_a_warm_run_does_not_build_encoders_whose_features_are_stored(
    toy_plugin, run_method, monkeypatch
):
    from mmalign.testing import toy_encoders

    built: list[int] = []
    original = ToyVectorEncoder.__init__
    monkeypatch.setattr(ToyVectorEncoder, "__init__",
                        lambda self, *a, **k: built.append(1) or original(self, *a, **k))
    sets = {"encoders": toy_encoders(), "train.epochs": 1}
    first = run_method("late-fusion", task="toy-pairs", **sets)
    assert len(built) == 2
    built.clear()
    warm = run_method("late-fusion", task="toy-pairs", **sets)
    assert built == []  # both encoders' features were all stored
    assert warm.metrics == first.metrics
    from mmalign.results import ResultsStore
    params = [ResultsStore().get(r.run_id)["params"]["train"] for r in (first, warm)]
    assert params[0] == params[1]  # the remembered parameter counts are recorded
    more = run_method("late-fusion", task="toy-pairs", **sets, **{"task.noise": 2.0})
    assert len(built) == 2 and more.status == "completed"  # new inputs: built on demand
