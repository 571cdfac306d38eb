"""Batches gathered in DataLoader workers: raw inputs decoded per batch there, the
same tensors as decoding every input up front, the same run as without workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

from mmalign import features
from mmalign.interfaces import Encoder, Features, Sample
from mmalign.testing import toy_encoders

decoded_here: list[str] = []


class PNGEncoder(Encoder):
    """Decodes a PNG file to a [3, 8, 8] tensor; features are its channel means."""

    modality = "image"

    @property
    def out_dim(self) -> int:
        return 3

    def preprocess(self, raw: str) -> Tensor:
        decoded_here.append(raw)
        with Image.open(raw) as im:
            return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255
                                    ).permute(2, 0, 1)

    def collate(self, items) -> Tensor:
        return torch.stack(list(items))

    def forward(self, inputs: Tensor) -> Features:
        return {"pooled": inputs.mean((2, 3))}

    def fingerprint(self) -> str:
        return "png-test-encoder"


@pytest.fixture
def pictures(tmp_path, monkeypatch) -> list[Sample]:
    monkeypatch.setenv("MMALIGN_HOME", str(tmp_path / "home"))
    rng = np.random.default_rng(0)
    samples = []
    for i in range(23):
        path = tmp_path / f"p{i}.png"
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
        samples.append(Sample(id=f"s{i}", inputs={"image": str(path)}, label=i % 2))
    return samples


def kept_inputs(samples: list[Sample]) -> features.FeatureSet:
    """The image's features from the store plus its inputs, as TI-JEPA paper mode asks."""
    return features.build_feature_set("train", samples, {"image": PNGEncoder()},
                                      {"image": True}, "k", inputs={"image": True})


def test_rows_keep_raw_inputs_and_workers_decode_each_batch_as_eager_decoding(pictures):
    fs = kept_inputs(pictures)
    assert all(isinstance(x, str) for x in fs.modalities["image"].items)  # no tensor per row
    enc = PNGEncoder()
    eager = enc.collate([enc.preprocess(s.inputs["image"]) for s in pictures])
    chunks = [torch.tensor([5, 0, 22, 7]), torch.arange(8, 16), torch.tensor([3])]
    decoded_here.clear()
    fs.workers = 2
    got = list(fs.batches(iter(chunks)))
    assert decoded_here == []  # none in this process: the workers decoded them
    assert [b["index"].tolist() for b in got] == [c.tolist() for c in chunks]  # in order
    for chunk, batch in zip(chunks, got, strict=True):
        assert torch.equal(batch["image"]["inputs"], eager[chunk])
        assert torch.equal(batch["label"], fs.labels[chunk])
        stored = fs.batch(chunk)["image"]["pooled"]
        assert torch.equal(batch["image"]["pooled"], stored)
    fs.workers = 0
    decoded_here.clear()
    same = list(fs.batches(iter(chunks)))
    assert len(decoded_here) == 13  # without workers: here, per batch, only its rows
    assert all(torch.equal(a["image"]["inputs"], b["image"]["inputs"]) for a, b in
               zip(same, got, strict=True))


def test_workers_do_not_draw_from_the_global_generator(pictures):
    fs = kept_inputs(pictures)
    fs.workers = 2
    torch.manual_seed(3)
    list(fs.batches(iter([torch.arange(4)])))
    after_workers = torch.rand(1)
    torch.manual_seed(3)
    assert torch.equal(torch.rand(1), after_workers)


def test_a_run_with_workers_is_the_run_without(toy_plugin, run_method, monkeypatch):
    from mmalign import batch_workers

    used: list[int] = []
    original = batch_workers.gather
    monkeypatch.setattr(batch_workers, "gather",
                        lambda fs, chunks, workers, m=None: used.append(workers)
                        or original(fs, chunks, workers, m))
    sets = {"encoders": toy_encoders(), "encoders.a.inputs": True, "train.epochs": 2}
    plain = run_method("late-fusion", task="toy-pairs", **sets)
    assert set(used) == {0}
    used.clear()
    pooled = run_method("late-fusion", task="toy-pairs", **sets, **{"train.num_workers": 2})
    assert set(used) == {2}  # training, validation and test batches all came from workers
    assert pooled.status == "completed"
    assert pooled.metrics == plain.metrics
    from mmalign.results import ResultsStore
    stages = [ResultsStore().get(r.run_id)["extra"]["stages"] for r in (plain, pooled)]
    assert [s["history"] for s in stages[0].values()] == [
        s["history"] for s in stages[1].values()]
    recorded = (pooled.run_dir / "run.json").read_text()
    assert '"num_workers"' not in recorded.split('"overrides"')[0]  # not in the method config
