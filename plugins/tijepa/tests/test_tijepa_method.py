"""TI-JEPA end to end through the runner on the toy task: both stages, reuse of the
pretrained stage, the stand-in notice, the collapse report and the probe."""

from __future__ import annotations

import json

import pytest
import torch
from mmalign_tijepa.model import Probe
from safetensors.torch import load_file
from tijepa_toys import toy_sets

import mmalign
from mmalign import paths
from mmalign.errors import MMAlignError
from mmalign.runner import checkpoint


def test_components_are_registered():
    registry = mmalign.get_registry()
    assert "ti-jepa" in registry.names("method")
    assert "t2i-cross-attention" in registry.names("fusion")
    assert "jepa" in registry.names("objective")
    assert "multiblock-masks" in registry.names("collator")


def test_pretrain_then_probe_and_reuse(toy_plugin, run_method):
    first = run_method("ti-jepa", task="toy-pairs", **toy_sets())
    stages = first.extra["stages"]
    assert list(stages) == ["pretrain", "probe"]
    pre = stages["pretrain"]
    assert pre["task"] == "toy-pairs" and "reused" not in pre
    assert pre["epochs_run"] == 2
    row = pre["history"][0]
    assert {"train_loss", "train_pred_std", "train_target_erank",
            "train_momentum"} <= set(row)
    assert 0.996 <= row["train_momentum"] < pre["history"][1]["train_momentum"] <= 1.0
    report = pre["report"]
    assert [r["epoch"] for r in report["epochs"]] == [0, 1]
    assert report["validation"]["pred_std"] > 0 and report["validation"]["target_erank"] > 1
    assert (first.run_dir / "tijepa-collapse.png").exists()
    assert stages["probe"]["epochs_run"] == 8
    assert set(first.metrics) == {"validation", "test"}  # the probe is what gets evaluated
    assert first.metrics["test"]["acc"] > 0.5  # 3 classes: chance is 1/3
    params = json.loads((first.run_dir / "metrics.json").read_text())["params"]
    assert params["pretrain"]["model.target"]["trainable"] == 0
    assert params["pretrain"]["model.target"]["frozen"] == params["pretrain"]["model.context"][
        "trainable"]
    assert params["probe"]["model.head"]["trainable"] == 3 * 16 + 3  # Linear(16 -> 3 classes)
    assert all(v["trainable"] == 0 for k, v in params["probe"].items() if k != "model.head")

    # pretraining moved the context module away from its EMA target (both start equal);
    # the stored pretraining is exactly the trained one, and the probe's own weights are
    # the head alone (the backbone's representation is precomputed, so it cannot move)
    pre_w = load_file(first.run_dir / "weights-pretrain.safetensors")
    context = [k for k in pre_w if k.startswith("model.context.")]
    assert context and any(
        not torch.equal(pre_w[k], pre_w[k.replace("model.context.", "model.target.")])
        for k in context)
    (stored,) = paths.stages_dir().glob("ti-jepa-pretrain-*.pt")
    blob = checkpoint.load(stored)["model"]
    assert all(torch.equal(blob[k.removeprefix("model.")], pre_w[k]) for k in pre_w)
    probe_w = load_file(first.run_dir / "weights-probe.safetensors")
    assert sorted(probe_w) == ["model.head.linear.bias", "model.head.linear.weight"]

    # a second run with another probe setting trains only the probe
    second = run_method("ti-jepa", task="toy-pairs", **toy_sets(**{"probe.module": "context"}))
    assert second.extra["stages"]["pretrain"]["reused"]
    assert second.extra["stages"]["pretrain"]["history"] == pre["history"]
    # changing the pretraining does not reuse it
    third = run_method("ti-jepa", task="toy-pairs", **toy_sets(**{"objective.loss": "smooth_l1"}))
    assert "reused" not in third.extra["stages"]["pretrain"]


def run_with_stand_in(**sets):
    """A run that may train a stage on its stand-in (``--allow-stand-in``)."""
    from mmalign.runner import RunRequest, execute

    return execute(RunRequest(method="ti-jepa", task="toy-pairs", sets=sets, quiet=True,
                              allow_stand_in=True))


def test_absent_pretraining_data_is_refused_without_allow_stand_in(absent_task, run_method):
    with pytest.raises(MMAlignError, match="--allow-stand-in"):
        run_method("ti-jepa", task="toy-pairs",
                   **toy_sets(pretrain_task="toy-absent", fallback_task="toy-pairs"))


def test_absent_pretraining_data_falls_back_with_a_notice(absent_task, caplog):
    result = run_with_stand_in(
        **toy_sets(pretrain_task="toy-absent", fallback_task="toy-pairs",
                   **{"train.epochs": 1, "probe.train.epochs": 1}),
    )
    pre = result.extra["stages"]["pretrain"]
    assert pre["task"] == "toy-pairs"
    assert "no data for 'toy-absent'" in pre["notice"]
    assert result.extra["notices"] == [pre["notice"]]
    assert "stand-in 'toy-pairs'" in caplog.text


def test_code_mode_for_a_non_vit_encoder_is_announced(toy_plugin, run_method, caplog):
    result = run_method("ti-jepa", task="toy-pairs",
                        **toy_sets(**{"train.epochs": 1, "probe.train.epochs": 1}))
    assert "code mode" in caplog.text
    assert result.status == "completed"
    # the stored pretraining records the mode it ran in (paper was asked for), so a later
    # paper-mode run with a ViT never reuses it
    (stored,) = paths.stages_dir().glob("ti-jepa-pretrain-*.pt")
    assert checkpoint.load(stored)["reuse_config"]["context_path"] == "code"
    assert result.extra["stages"]["pretrain"]["history"]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({"cross_attention.text": "c"}, r"needs encoders for \['c'\]"),
        ({"cross_attention.text": "c", "encoders.c": {"name": "toy-vector"}}, "image-text"),
    ],
)
def test_bad_modality_choices_are_explained(toy_plugin, run_method, sets, message):
    with pytest.raises(MMAlignError, match=message):
        run_method("ti-jepa", task="toy-pairs", **toy_sets(**sets))


def test_probe_is_linear_on_the_precomputed_representation():
    head = mmalign.get_registry().create("head", "linear", in_dim=4, out_dim=3)
    probe = Probe(head, "ti-jepa")
    batch = {"ti-jepa": {"pooled": torch.randn(5, 4)}}
    logits = probe(batch)["logits"]
    assert logits.shape == (5, 3)
    linear = probe.head.linear
    assert torch.allclose(logits, batch["ti-jepa"]["pooled"] @ linear.weight.T + linear.bias)
    assert sum(p.numel() for p in probe.parameters()) == 4 * 3 + 3


def test_pretraining_task_config_applies_and_keys_reuse(absent_task, run_method):
    def sets(samples):
        return toy_sets(**{"train.epochs": 1, "probe.train.epochs": 1,
                           "pretrain_task": "toy-absent", "fallback_task": "toy-pairs",
                           "pretrain_task_configs": {"toy-pairs": {"samples": samples}}})

    with pytest.raises(MMAlignError, match="samples"):
        run_with_stand_in(**sets("many"))
    first = run_with_stand_in(**sets(90))
    assert "reused" not in first.extra["stages"]["pretrain"]
    other = run_with_stand_in(**sets(120))
    assert "reused" not in other.extra["stages"]["pretrain"]
    again = run_with_stand_in(**sets(90))
    assert again.extra["stages"]["pretrain"]["reused"]


def test_seeds_share_one_pretraining_unless_pretrain_per_seed(toy_plugin, run_method):
    quick = {"train.epochs": 1, "probe.train.epochs": 1}
    shared = [run_method("ti-jepa", task="toy-pairs", seed=s, **toy_sets(**quick))
              for s in (0, 1)]
    assert "reused" not in shared[0].extra["stages"]["pretrain"]
    assert shared[1].extra["stages"]["pretrain"]["reused"]
    per_seed = [run_method("ti-jepa", task="toy-pairs", seed=s,
                           **toy_sets(**quick, pretrain_per_seed=True)) for s in (0, 1, 0)]
    assert ["reused" in r.extra["stages"]["pretrain"] for r in per_seed] == [False, False, True]
    stored = {checkpoint.load(p)["seed"] for p in paths.stages_dir().glob("ti-jepa-*.pt")}
    assert stored == {None, 0, 1}  # the shared one, then one per seed
    # replicates differ: seed 1 pretrained from its own initialisation
    first, second = (load_file(r.run_dir / "weights-pretrain.safetensors") for r in per_seed[:2])
    assert any(not torch.equal(first[k], second[k]) for k in first)
