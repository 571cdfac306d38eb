"""TI-JEPA's paper path through the real runner: a tiny ViT (random weights) re-encodes
the visible patches, a tiny BERT encodes the captions, COCO-format pretraining data
(one random caption per image per epoch) then a linear probe on an MVSA-Single
fixture. What it checks is the protocol, not the accuracy: the optimizer step count,
the EMA target, the reuse of the stored pretraining, the precision of the re-encoded
patches under the runner's autocast, and that the final weights are the ones kept.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import pytest
import torch
from mmalign_tijepa.model import TIJEPAModel
from mmalign_tijepa.objective import JEPAObjective
from safetensors.torch import load_file
from tijepa_toys import TINY_SETS

from mmalign.runner import RunRequest, execute
from mmalign.testing import tiny_bert
from tests.data.fixtures import jpeg_bytes, write_mvsa_single

IMAGES, CAPTIONS, BATCH, EPOCHS = 20, 3, 8, 2


def write_tiny_coco(root: Path, images: int = IMAGES) -> None:
    """COCO 2017's on-disk layout: ``annotations/captions_train2017.json`` (images with
    ``id``/``file_name``, ``CAPTIONS`` annotations each) and ``train2017/*.jpg``."""
    (root / "train2017").mkdir(parents=True)
    doc: dict[str, list] = {"images": [], "annotations": []}
    for i in range(images):
        name = f"{i:012d}.jpg"
        (root / "train2017" / name).write_bytes(jpeg_bytes((20 * i % 255, 90, 250 - 9 * i)))
        doc["images"].append({"id": 100 + i, "file_name": name})
        doc["annotations"] += [
            {"id": 1000 + CAPTIONS * i + c, "image_id": 100 + i,
             "caption": f"picture {i} caption {c}"}
            for c in range(CAPTIONS)
        ]
    (root / "annotations").mkdir()
    (root / "annotations" / "captions_train2017.json").write_text(json.dumps(doc))


def paper_sets(bert: Path) -> dict:
    return {
        "encoders.image": {"name": "timm", "config": {
            "model": "vit_tiny_patch16_224", "image_size": 64, "weights": "random"}},
        "encoders.text": {"name": "hf-text", "config": {"model": str(bert)}},
        **TINY_SETS,
        "train.epochs": EPOCHS,
        "train.batch_size": BATCH,
        "probe.train.epochs": 3,
        "probe.train.batch_size": 4,
    }


@contextlib.contextmanager
def cpu_bf16(device: torch.device):
    """The runner's CUDA autocast, on the CPU: the training forward runs in bf16."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yield


@pytest.fixture
def spies(monkeypatch):
    """Records the target module's initial weights, the re-encoded visible patches
    (with an fp32 re-encoding outside autocast) and the weights after the last step."""
    seen: dict = {"initial": [], "visible": [], "after_step": None}
    init, visible, step = (TIJEPAModel.__init__, TIJEPAModel.visible_tokens,
                           JEPAObjective.training_step)

    def spy_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        seen["initial"].append({k: v.clone() for k, v in self.state_dict().items()})

    def spy_visible(self, image, index):
        out = visible(self, image, index)
        if self.paper_mode and torch.is_autocast_enabled("cpu"):
            with torch.no_grad(), torch.autocast("cpu", enabled=False):
                fp32 = self._encoder[0](image["inputs"].float(), keep=index)["tokens"]
            seen["visible"].append((out, fp32))
        return out

    def spy_step(self, ctx):
        logs = step(self, ctx)
        seen["after_step"] = {k: v.detach().clone() for k, v in ctx.model.state_dict().items()}
        return logs

    monkeypatch.setattr(TIJEPAModel, "__init__", spy_init)
    monkeypatch.setattr(TIJEPAModel, "visible_tokens", spy_visible)
    monkeypatch.setattr(JEPAObjective, "training_step", spy_step)
    monkeypatch.setattr("mmalign.runner.loop.autocast", cpu_bf16)
    return seen


def run(bert: Path, mvsa: Path):
    return execute(RunRequest(method="ti-jepa", task="mvsa-single", sets=paper_sets(bert),
                              data_dir=mvsa, quiet=True))


@pytest.mark.slow
def test_paper_mode_pretrains_on_coco_then_probes_mvsa(tmp_path, mmalign_home, spies, caplog):
    coco = mmalign_home / "data" / "coco-captions"
    write_tiny_coco(coco)
    write_mvsa_single(tmp_path / "mvsa")
    tiny_bert(tmp_path / "bert")

    result = run(tmp_path / "bert", tmp_path / "mvsa")
    assert "code mode" not in caplog.text  # the ViT re-encodes the visible patches
    stages = result.extra["stages"]
    prov = json.loads((result.run_dir / "provenance.json").read_text())["stages"]
    pretrain = prov["pretrain"]
    assert pretrain["data"]["task"] == "coco-captions" and "stand_in_for" not in pretrain["data"]

    # one random caption per image per epoch: ceil(train images / batch) steps an epoch
    train_pairs = pretrain["data"]["split_sizes"]["train"]
    assert train_pairs % CAPTIONS == 0
    per_epoch = math.ceil(train_pairs // CAPTIONS / BATCH)
    assert pretrain["optimizer_steps"] == EPOCHS * per_epoch
    assert pretrain["optimizer_steps"] < EPOCHS * math.ceil(train_pairs / BATCH)  # not "all"

    # the re-encoded patches ran in fp32 under the bf16 autocast of the training step
    assert len(spies["visible"]) == pretrain["optimizer_steps"]
    for out, fp32 in spies["visible"]:
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, fp32, rtol=0, atol=1e-6)

    # the final weights are kept (monitor "last"), and the EMA target moved, less than
    # the context module it follows (momentum >= 0.996)
    assert stages["pretrain"]["best_epoch"] == EPOCHS - 1
    kept = load_file(result.run_dir / "weights-pretrain.safetensors")
    kept = {k.removeprefix("model."): v for k, v in kept.items() if k.startswith("model.")}
    final, initial = spies["after_step"], spies["initial"][0]
    assert set(kept) == set(final)
    for k, v in kept.items():
        torch.testing.assert_close(v, final[k], rtol=0, atol=0)

    def moved(prefix: str) -> float:
        return sum(float((kept[k] - initial[k]).abs().sum()) for k in kept if k.startswith(prefix))

    assert 0 < moved("target.") < moved("context.")

    # the same run reuses the stored pretraining (changed COCO data under the same config
    # pretrains again: test_tijepa_protocol.py's changed-data test, on toy data)
    again = run(tmp_path / "bert", tmp_path / "mvsa")
    assert again.extra["stages"]["pretrain"]["reused"]
    assert math.isfinite(result.metrics["test"]["acc"])
