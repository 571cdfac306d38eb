"""The method end to end through the runner, on the toy category-aligned task."""

from __future__ import annotations

import json

import pytest
from infonce_toys import toy_sets

import mmalign
from mmalign.errors import MMAlignError


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
    history = result.extra["stages"]["train"]["history"]
    assert history[-1]["val_loss"] < 0.8 * history[0]["val_loss"]
    # 6 classes: a random ranking finds the class in the top 1 about 1/6 of the time
    assert result.metrics["test"]["mean_r@1"] > 0.5
    # every pair of the twelve is learnt, round-robin included
    tables = result.extra["stages"]["train"]["report"]["recall"]["test"]
    pairs = [v for k, v in tables.items() if k.endswith("/r@1") and "any" not in k and "->" in k]
    assert len(pairs) == 12 and min(pairs) > 1 / 6


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
