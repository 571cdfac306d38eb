"""The method end to end through the runner, on the toy category-aligned task."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import pytest
import torch
from infonce_toys import MODALITIES, ToyCategoriesTask, toy_feature_sets, toy_sets
from mmalign_infonce.heads import ProjectionHeads
from mmalign_infonce.method import InfoNCE, InfoNCEModel
from mmalign_infonce.objective import NModalInfoNCE

import mmalign
from mmalign.errors import MMAlignError
from mmalign.interfaces import FeatureSpec, StepContext
from mmalign.runner.distributed import Dist
from mmalign.runner.loop import train_stage
from mmalign.runner.progress import make_progress
from mmalign.runner.run import RunRequest, resolve


def test_components_are_registered():
    registry = mmalign.get_registry()
    assert "infonce" in registry.names("method")
    assert "projection-heads" in registry.names("fusion")
    assert "nmodal-infonce" in registry.names("objective")
    assert {"recall-tables", "retrieval-evaluation"} <= set(registry.names("metric"))


@pytest.mark.parametrize("strategy", ["joint", "round-robin"])
def test_both_strategies_train_and_report_the_recall_tables(
    toy_categories, run_method, strategy, capsys
):
    result = run_method("infonce", task="toy-categories", **toy_sets(strategy=strategy))
    stage = result.extra["stages"]["train"]
    assert stage["epochs_run"] == 2 and "val_loss" in stage["history"][0]
    report = stage["report"]
    assert set(report["recall"]) == {"test", "train"}
    for split in ("test", "train"):
        tables = report["recall"][split]
        assert len([k for k in tables if k.endswith("/r@10") and "any" not in k]) == 12
        assert 0.0 <= tables["mean_r@1"] <= tables["mean_r@5"] <= tables["mean_r@10"] <= 1.0
    # the runner's own test metrics and the report agree on the same trained model
    assert result.metrics["test"]["mean_r@10"] == pytest.approx(
        report["recall"]["test"]["mean_r@10"]
    )
    text = (result.run_dir / report["tables_file"]).read_text()
    assert "a → d" in text and "d → any" in text
    assert "a → d" in capsys.readouterr().out
    saved = json.loads((result.run_dir / "metrics.json").read_text())
    assert saved["extra"]["stages"]["train"]["report"]["recall"]["train"] == pytest.approx(
        report["recall"]["train"]
    )


@pytest.mark.parametrize("strategy", ["joint", "round-robin"])
def test_training_lowers_the_validation_loss_and_beats_chance(toy_categories, run_method, strategy):
    sets = toy_sets(strategy=strategy, **{"train.epochs": 8})
    result = run_method("infonce", task="toy-categories", **sets)
    losses = [row["val_loss"] for row in result.extra["stages"]["train"]["history"]]
    # measured: joint 0.86 -> 0.19, round-robin 1.63 -> 0.41, falling every epoch
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert losses[-1] < 0.5 * losses[0]
    # 6 classes: a random ranking finds the class in the top 1 about 1/6 of the time
    # (measured mean R@1: joint 0.82, round-robin 0.77)
    assert result.metrics["test"]["mean_r@1"] > 0.65
    # every pair of the twelve is learnt, round-robin included (measured minimum 0.5)
    tables = result.extra["stages"]["train"]["report"]["recall"]["test"]
    pairs = [v for k, v in tables.items() if k.endswith("/r@1") and "any" not in k and "->" in k]
    assert len(pairs) == 12 and min(pairs) >= 0.4


def test_a_modality_subset_trains_only_those_heads(toy_categories, run_method):
    result = run_method("infonce", task="toy-categories", **toy_sets(modalities=["a", "b", "c"]))
    tables = result.extra["stages"]["train"]["report"]["recall"]["test"]
    assert "a->c/r@10" in tables and not any("d" in k.split("/")[0] for k in tables)
    heads = result.extra["stages"]["train"]
    assert heads["task"] == "toy-categories"
    params = json.loads((result.run_dir / "metrics.json").read_text())["params"]["train"]
    assert "encoder.d" not in params


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({"modalities": ["a", "x"]}, "not offered"),
        ({"modalities": "a"}, "two or more"),
        ({"encoders.a.cache": False}, "cache=true"),
    ],
)
def test_bad_modality_choices_are_explained(toy_categories, run_method, sets, message):
    with pytest.raises(MMAlignError, match=message):
        run_method("infonce", task="toy-categories", **toy_sets(**sets))


@pytest.mark.parametrize(
    ("size", "strategy", "modalities"),
    [
        ("default", "joint", None),
        ("tri-modal", "joint", ["text", "image", "audio"]),
        ("round-robin", "round-robin", None),
    ],
)
def test_the_papers_scenarios_are_sizes(mmalign_home, size, strategy, modalities):
    from mmalign.runner.run import RunRequest, resolve

    config = resolve(RunRequest(method="infonce", size=size))[2]
    assert (config.strategy, config.modalities) == (strategy, modalities)
    assert config.train.monitor == "val_loss" and config.objective.name == "nmodal-infonce"


def test_event_tuples_are_the_default_where_the_task_names_its_events(toy_categories, run_method):
    result = run_method("infonce", task="toy-events", **toy_sets(**{"train.epochs": 1}))
    saved = json.loads((result.run_dir / "run.json").read_text())
    assert saved["method_config"]["method"]["tuples"] == "event"  # recorded as resolved
    tables = result.extra["stages"]["train"]["report"]["recall"]["test"]
    assert 0.0 <= tables["mean_event_r@1"] <= tables["mean_event_r@10"] <= 1.0
    assert len([k for k in tables if k.endswith("/event_r@1")]) == 12
    # the runner's category-level test metrics are the paper's, unchanged
    assert result.metrics["test"]["mean_r@10"] == pytest.approx(tables["mean_r@10"])
    plain = run_method("infonce", task="toy-categories", **toy_sets(**{"train.epochs": 1}))
    saved = json.loads((plain.run_dir / "run.json").read_text())
    assert saved["method_config"]["method"]["tuples"] == "category"
    assert not any("event" in k for k in plain.extra["stages"]["train"]["report"]["recall"]["test"])


@pytest.mark.parametrize(
    ("task", "asked", "resolved"),
    [
        ("synth-events", None, "event"),
        ("synth-events", "category", "category"),
        ("synth-events", "event", "event"),
        ("synth-xmedianet", None, "category"),
        ("xmedianet", None, "category"),
    ],
)
def test_the_tuple_mode_is_resolved_per_task(mmalign_home, task, asked, resolved):
    from mmalign.runner.run import RunRequest, resolve

    sets = {} if asked is None else {"tuples": asked}
    _, run_cfg, config = resolve(RunRequest(method="infonce", task=task, sets=sets))
    assert config.tuples == resolved
    assert run_cfg.method_config["method"]["tuples"] == resolved


def test_event_tuples_on_a_task_without_events_fail_before_any_data(mmalign_home):
    from typer.testing import CliRunner

    from mmalign.cli import app

    out = CliRunner().invoke(
        app, ["run", "infonce", "--task", "synth-xmedianet", "--set", "tuples=event", "--quiet"]
    )
    assert out.exit_code == 2
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "task 'synth-xmedianet' has none" in lines[0]
    assert "instance" in lines[0] and "Traceback" not in out.output
    assert not (mmalign_home / "data").exists()  # refused before generating anything


def test_disjoint_round_robin_needs_event_tuples(mmalign_home):
    from mmalign.runner.run import RunRequest, resolve

    sets = {"strategy": "round-robin", "round_robin.events": "disjoint"}
    config = resolve(RunRequest(method="infonce", task="synth-events", sets=sets))[2]
    assert (config.tuples, config.round_robin.events) == ("event", "disjoint")
    for task, extra in (("synth-xmedianet", {}), ("synth-events", {"tuples": "category"})):
        with pytest.raises(MMAlignError, match="set tuples=event"):
            resolve(RunRequest(method="infonce", task=task, sets={**sets, **extra}))


class RecordingInfoNCE(NModalInfoNCE):
    """Equation 2, recording per training step which heads the batch fed, which moved
    in the optimizer step and which kept no gradient: what a strategy really trains."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[dict[str, tuple[str, ...]]] = []

    def training_step(self, ctx: StepContext) -> dict[str, float]:
        heads = ctx.model.fusion.heads
        before = {m: [p.detach().clone() for p in h.parameters()] for m, h in heads.items()}
        out = super().training_step(ctx)
        after = {m: list(h.parameters()) for m, h in heads.items()}
        self.steps.append({
            "fed": tuple(m for m in heads if m in ctx.batch),
            "moved": tuple(m for m in heads if any(
                not torch.equal(b, a) for b, a in zip(before[m], after[m], strict=True))),
            "no_grad": tuple(m for m in heads if all(p.grad is None for p in after[m])),
        })
        return out


def train_directly(
    strategy: str, tmp_path: Path, epochs: int = 3
) -> tuple[list[dict[str, tuple[str, ...]]], InfoNCEModel, list[dict[str, float]]]:
    """The method's own stage (loader, train settings) through the runner's training
    loop on the toy features; returns the recorded steps, the model and the history."""
    sets = toy_sets(strategy=strategy, **{"train.epochs": epochs, "train.patience": None})
    config = resolve(RunRequest(method="infonce", task="toy-categories", sets=sets))[2]
    task = ToyCategoriesTask()
    stage = dataclasses.replace(InfoNCE().stages(config, task)[0], evaluate=False)
    fsets = toy_feature_sets()
    torch.manual_seed(0)  # the same initial heads for both strategies
    inputs = {m: FeatureSpec(pooled=8) for m in MODALITIES}
    model = InfoNCEModel(ProjectionHeads(None, inputs))
    objective = RecordingInfoNCE()
    state = train_stage(
        stage=stage, task=task, model=model, objective=objective, train_fs=fsets["train"],
        val_fs=fsets["validation"], ckpt_path=tmp_path / f"{strategy}.ckpt", seed=0,
        device=torch.device("cpu"), dist=Dist(), progress=make_progress(True),
    )
    per_epoch = stage.loader.batches_per_epoch(fsets["train"], stage.train.batch_size)
    assert len(objective.steps) == state.step == per_epoch * epochs
    return objective.steps, model, state.history


def test_a_round_robin_step_trains_one_pair_and_moves_only_its_two_heads(
    toy_categories, tmp_path
):
    """AdamW's weight decay and momentum would move a head fed nothing if its gradient
    were a zero tensor: the heads outside the pair must keep no gradient at all."""
    steps, *_ = train_directly("round-robin", tmp_path)
    pairs = {tuple(p) for p in itertools.combinations(MODALITIES, 2)}
    assert {s["fed"] for s in steps} == pairs  # every pair, and only pairs
    for s in steps:
        assert s["moved"] == s["fed"]
        assert s["no_grad"] == tuple(m for m in MODALITIES if m not in s["fed"])


def test_round_robin_and_joint_training_take_different_paths_at_equal_steps(
    toy_categories, tmp_path
):
    """From the same initial heads and seed: were round-robin to train jointly, the two
    would be one trajectory."""
    rr_steps, rr_model, rr_history = train_directly("round-robin", tmp_path)
    joint_steps, joint_model, joint_history = train_directly("joint", tmp_path)
    assert len(rr_steps) == len(joint_steps)  # the default: equal step budgets
    assert all(s["fed"] == s["moved"] == MODALITIES and not s["no_grad"] for s in joint_steps)
    for m in MODALITIES:
        rr_w = rr_model.fusion.heads[m].second.weight
        joint_w = joint_model.fusion.heads[m].second.weight
        assert (rr_w - joint_w).abs().max() > 1e-3  # the same start, different trajectories
    assert [r["val_loss"] for r in rr_history] != [r["val_loss"] for r in joint_history]
