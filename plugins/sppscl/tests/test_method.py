"""SPP-SCL through the real runner on mmalign's toy task, and its per-dataset settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mmalign_sppscl.method import SPPSCL, SPPSCLConfig

from mmalign.testing import toy_encoders
from tests.data.fixtures import write_hfm, write_mvsa_single


def toy_sets(**extra):
    """Toy modalities a (as the image) and b (as the text, one layer, no [CLS]/[SEP])."""
    sets = {
        "encoders": toy_encoders(),
        "image_modality": "a",
        "text_modality": "b",
        "ha_layers": 1,
        "special_tokens": False,
        "train.epochs": 4,
        "train.batch_size": 32,
        "train.eval_batch_size": 16,
        "train.lr": 3e-3,
        "train.patience": None,
    }
    sets.update(extra)
    return sets


def test_trains_evaluates_and_reports(toy_plugin, run_method):
    result = run_method("spp-scl", task="toy-pairs", **toy_sets())
    assert result.metrics["test"]["acc"] > 0.6
    assert {"acc", "f1_weighted"} <= set(result.metrics["test"])
    stage = result.extra["stages"]["train"]
    history = stage["history"]
    assert all(0.0 <= h["train_gate_fired"] <= 1.0 for h in history)
    assert all(0.0 <= h["train_gate_saturated"] <= 1.0 for h in history)
    report = stage["report"]
    steps = 4 * (168 // 32)  # 168 training samples, full batches only (drop_last)
    assert report["gate"]["checks"] == steps
    assert report["gate"]["fraction"] == pytest.approx(report["gate"]["fired"] / steps)
    for scope in ("normalized", "raw"):
        assert set(report["distances"][scope]) == {"IID", "TTD", "ITD", "spread"}
    assert set(report["distances"]["per_class_normalized"]) == {"zero", "one", "two"}
    # the report's reference evaluation (bs=16, split order) is the runner's test pass
    dependence = report["eval_batch_dependence"]
    assert dependence["acc@bs=16"] == pytest.approx(result.metrics["test"]["acc"])
    assert {"acc@bs=1", "acc@bs=16,shuffled", "acc@bs=36"} <= set(dependence)  # 36 test
    for key in ("tsne_png", "distances_png"):
        path = Path(report[key])
        assert path.parent == result.run_dir and path.stat().st_size > 1000


@pytest.mark.parametrize(
    "sets, logged, gate",
    [
        ({"two_step": False}, {"ce", "intra_image", "intra_text", "inter"}, False),
        ({"inter": False}, {"ce", "intra_image", "intra_text"}, False),
        ({"intra": False}, {"ce", "inter", "gate_fired"}, True),
        ({"fusion.config.mode": "sample", "variant": "paper"},
         {"ce", "intra_text", "gate_fired"}, True),
    ],
)
def test_ablations_from_overrides(toy_plugin, run_method, sets, logged, gate):
    result = run_method(
        "spp-scl", task="toy-pairs", **toy_sets(tsne=False, **{"train.epochs": 1}, **sets)
    )
    row = result.extra["stages"]["train"]["history"][0]
    assert {f"train_{k}" for k in logged} <= set(row)
    if "intra" in sets:
        assert "train_intra_image" not in row
    if "inter" in sets:
        assert "train_inter" not in row
    assert ("gate" in result.extra["stages"]["train"]["report"]) is gate


def test_per_sample_fusion_does_not_depend_on_the_evaluation_batch(toy_plugin, run_method):
    result = run_method("spp-scl", task="toy-pairs",
                        **toy_sets(tsne=False, **{"train.epochs": 1,
                                                  "fusion.config.mode": "sample"}))
    dependence = result.extra["stages"]["train"]["report"]["eval_batch_dependence"]
    assert all(v == 0.0 for k, v in dependence.items() if k.startswith("changed@"))


def test_variants_change_the_losses_and_one_step_takes_one_step(toy_plugin, run_method):
    def first_row(**sets):
        result = run_method("spp-scl", task="toy-pairs",
                            **toy_sets(tsne=False, **{"train.epochs": 1}, **sets))
        return result.extra["stages"]["train"]

    code, paper = first_row(), first_row(variant="paper", gate="paper")
    # the paper's 1/B normalisation makes the contrastive terms several times smaller
    assert paper["history"][0]["train_intra_image"] < 0.8 * code["history"][0][
        "train_intra_image"]
    assert paper["report"]["gate"]["checks"] == code["report"]["gate"]["checks"] == 168 // 32
    one = first_row(two_step=False)
    assert "gate" not in one["report"] and "train_gate_fired" not in one["history"][0]


def resolved(task: str, size: str = "default") -> SPPSCLConfig:
    """The method config a run on ``task`` resolves (size preset, then Table 2)."""
    from mmalign.runner.compose import method_config

    return method_config(SPPSCL(), task, size, [])  # type: ignore[return-value]


@pytest.mark.parametrize(
    "task, ce_weight, lr, step, batch, epochs",
    [("mvsa-single", 5, 1e-4, 10, 64, 150), ("mvsa-multi", 5, 1e-4, 15, 128, 150),
     ("hfm", 10, 5e-5, 5, 256, 150), ("synth-sarcasm", 10, 5e-5, 5, 256, 30)],
)
def test_table_2_per_dataset(task, ce_weight, lr, step, batch, epochs):
    cfg = resolved(task)
    assert cfg.ce_weight == ce_weight and cfg.dropout == 0.2
    t = cfg.train
    assert (t.lr, t.step_size, t.gamma, t.weight_decay) == (lr, step, 0.5, 1e-6)
    assert (t.batch_size, t.eval_batch_size, t.epochs) == (batch, batch, epochs)
    assert (t.optimizer, t.scheduler) == ("adamw", "step")
    assert (cfg.tau, cfg.alpha, cfg.dim) == (0.07, 2 / 3, 32)


@pytest.mark.parametrize(
    "task, write, ce_weight, lr, step, batch",
    [("mvsa-single", write_mvsa_single, 5.0, 1e-4, 10, 64),
     ("hfm", write_hfm, 10.0, 5e-5, 5, 256)],
)
def test_table_2_reaches_the_runs_on_the_real_readers(
    tmp_path, mmalign_home, monkeypatch, task, write, ce_weight, lr, step, batch
):
    """A run on the dataset's own reader (a fixture in its on-disk format) trains with
    its Table 2 column: the objective's λ, the optimizer's learning rate and weight
    decay, the step schedule, the batch size; the user's keys still win over it."""
    from mmalign_sppscl.objective import SPPSCLObjective

    from mmalign.runner import RunRequest, execute

    seen: dict = {}
    init, step_lr = SPPSCLObjective.__init__, torch.optim.lr_scheduler.StepLR

    def spy_init(self, config=None):
        init(self, config)
        seen["ce_weight"] = self.config.ce_weight

    def spy_step_lr(optimizer, step_size, gamma=0.1, *args, **kwargs):
        seen["schedule"] = (step_size, gamma)
        seen["lr"] = {g["lr"] for g in optimizer.param_groups}
        seen["weight_decay"] = {g["weight_decay"] for g in optimizer.param_groups}
        return step_lr(optimizer, step_size, gamma, *args, **kwargs)

    monkeypatch.setattr(SPPSCLObjective, "__init__", spy_init)
    monkeypatch.setattr(torch.optim.lr_scheduler, "StepLR", spy_step_lr)
    write(tmp_path / task)
    result = execute(RunRequest(
        method="spp-scl", task=task, data_dir=tmp_path / task, quiet=True,
        # a fixture's handful of pairs is less than one of Table 2's batches
        sets={"train.epochs": 2, "train.drop_last": False, "tsne": False}))
    assert result.status == "completed"
    assert seen == {"ce_weight": ce_weight, "schedule": (step, 0.5), "lr": {lr},
                    "weight_decay": {1e-6}}
    assert len(result.extra["stages"]["train"]["history"]) == 2  # the user's epochs
    config = json.loads((result.run_dir / "run.json").read_text())["method_config"]["method"]
    assert (config["train"]["batch_size"], config["train"]["eval_batch_size"]) == (batch, batch)
    assert config["dropout"] == 0.2


@pytest.mark.parametrize("task", ["mvsa-single", "mvsa-multi"])
def test_paper_size_reads_the_clmlf_split_on_mvsa(task):
    from mmalign.runner.run import RunRequest, resolve

    _, paper, _ = resolve(RunRequest(method="spp-scl", task=task, size="paper"))
    assert paper.method_config["task"] == {"split": "clmlf"}
    _, default, _ = resolve(RunRequest(method="spp-scl", task=task))
    assert default.method_config["task"] == {}
    # the user's task keys still win
    _, mine, _ = resolve(RunRequest(method="spp-scl", task=task, size="paper",
                                    sets={"task.split": "seeded"}))
    assert mine.method_config["task"] == {"split": "seeded"}


@pytest.mark.parametrize("task", ["mvsa-single", "mvsa-multi"])
def test_leaderboard_flags_a_seeded_split_against_the_papers_rows(task):
    """The paper's Table 3 rows are on CLMLF's split: `compare --reported` keeps a
    seeded-split spp-scl run apart from them and names the split, whether the run
    asked for it (an override) or only recorded the task's default (no task key)."""
    from mmalign import leaderboard
    from mmalign.runner.run import RunRequest, resolve

    def record(run_id, config, acc):
        return {"run_id": run_id, "method": "spp-scl", "size": config["size"], "seed": 0,
                "task": task, "status": "completed", "config": config, "extra": {},
                "metrics": {"test": {"acc": acc, "f1_weighted": acc}}}

    clmlf = resolve(RunRequest(method="spp-scl", task=task, size="paper"))[1]
    seeded = resolve(RunRequest(method="spp-scl", task=task, size="paper",
                                sets={"task.split": "seeded"}))[1]
    # a paper-size record whose task config names no split read the default, seeded
    unnamed = clmlf.model_dump(mode="json")
    unnamed["method_config"]["task"] = {}
    runs = [record("clmlf", clmlf.model_dump(mode="json"), 0.80),
            record("seeded", seeded.model_dump(mode="json"), 0.70),
            record("unnamed", unnamed, 0.75)]
    (board,) = leaderboard.build_boards(runs, task, None, True, {task: ["acc"]})
    beside = [(r.reported, r.run_ids) for r in board.rows]
    assert (False, ["clmlf"]) in beside and any(reported for reported, _ in beside)
    apart = {tuple(r.run_ids): diffs for r, diffs in board.apart}
    assert apart[("seeded",)] == ["overrides task.split=seeded",
                                  "seeded split (reported: clmlf split)"]
    assert apart[("unnamed",)] == ["seeded split (reported: clmlf split)"]
    assert "seeded split (reported: clmlf split)" in leaderboard.render_markdown(board)
    _, hfm, _ = resolve(RunRequest(method="spp-scl", task="hfm", size="paper"))
    assert hfm.method_config["task"] == {}
