"""Composing registered components: names and options checked when the config is
resolved, fusions and objectives swapped by name, a weighted-sum objective, and
model selection in the monitored metric's own direction."""

from __future__ import annotations

import pytest
import torch

from mmalign.components.objectives import WeightedSumObjective
from mmalign.errors import ConfigError, RegistryError
from mmalign.interfaces import Fusion, FusionOutput, TrainConfig
from mmalign.plugins import get_registry
from mmalign.runner import RunRequest
from mmalign.runner.compose import method_config
from mmalign.runner.loop import _improved, _monitor
from mmalign.runner.run import resolve
from mmalign.testing import ToyPairsTask, ToyScoresTask, toy_encoders

FAST = {"encoders": toy_encoders(), "train.epochs": 4, "train.batch_size": 32, "train.lr": 0.01}
TERMS = '[{name="cross-entropy"},{name="toy-align",weight=0.1}]'


@pytest.fixture
def no_data(monkeypatch):
    """Any attempt to load a toy task's data fails the test: checks must come first."""

    def load(self):
        raise AssertionError("data was loaded before the composition was checked")

    monkeypatch.setattr(ToyPairsTask, "load", load)
    monkeypatch.setattr(ToyScoresTask, "load", load)


def _resolve(task="toy-pairs", **sets):
    return resolve(RunRequest(method="late-fusion", task=task, sets={**FAST, **sets}))


def test_misspelt_fusion_fails_at_resolve_with_a_suggestion(toy_plugin, no_data):
    with pytest.raises(RegistryError, match=r"No fusion named 'concatt' \(fusion.name\)\. "
                                            r"Did you mean 'concat'\?.*projected-concat"):
        _resolve(**{"fusion.name": "concatt"})


@pytest.mark.parametrize(
    ("sets", "error", "needle"),
    [
        ({"head.name": "mpl"}, RegistryError, r"No head named 'mpl' \(head.name\)\. Did you "
                                              r"mean 'mlp'"),
        ({"objective.terms": '[{name="cross-entropy"},{name="toy-algn"}]'}, RegistryError,
         r"objective.config.terms\[1\].name.*Did you mean 'toy-align'"),
        ({"fusion.config.dimm": 8, "fusion.name": "projected-concat"}, ConfigError,
         r"Unknown config key 'fusion.config.dimm' of fusion 'projected-concat'\. Did you "
         r"mean 'dim'"),
        ({"fusion.name": "projected-concat", "fusion.config.dim": 0}, ConfigError,
         r"Invalid value for 'fusion.config.dim' of fusion 'projected-concat'"),
        ({"fusion.config": 5}, ConfigError,
         r"Invalid value for 'fusion.config': Input should be a valid dict"),
        ({"encoders.a.name": "minilm-l6"}, ConfigError,
         r"encoders.a.name: encoder 'minilm-l6' encodes 'text', not 'a'"),
        ({"train.monitor": "acx"}, ConfigError, r"'train.monitor': 'acx'.*Did you mean 'acc'"),
    ],
)
def test_bad_components_fail_before_data_with_the_key(toy_plugin, no_data, sets, error, needle):
    if "objective.terms" in sets:
        from mmalign.config import parse_value

        sets = {"fusion.name": "projected-concat",
                "objective.terms": parse_value(sets["objective.terms"])}
    with pytest.raises(error, match=needle):
        _resolve(**sets)


def test_alignment_term_with_a_fusion_without_embeddings_names_the_fix(toy_plugin, no_data):
    from mmalign.config import parse_value

    with pytest.raises(ConfigError, match=r"objective 'toy-align' \(objective.config."
                                          r"terms\[1\]\) reads 'embeddings'.*fusion 'concat'"
                                          r".*--set fusion.name=projected-concat"):
        _resolve(**{"objective.terms": parse_value(TERMS)})


def test_method_refuses_a_task_with_other_labels(toy_plugin, no_data):
    with pytest.raises(ConfigError, match=r"Method 'late-fusion' trains on classification, "
                                          r"regression labels; task 'synth-captions' has none"):
        resolve(RunRequest(method="late-fusion", task="synth-captions"))


class TokenFusion(Fusion):
    """Mean of each modality's tokens (needs tokens)."""

    requires = {"*": ("tokens",)}

    def __init__(self, config, inputs):
        super().__init__(config, inputs)
        self.out_dim = sum(s.tokens for s in inputs.values())

    def forward(self, features):
        return FusionOutput(pooled=torch.cat(
            [features[m]["tokens"].float().mean(1) for m in self.modalities], -1))


def test_fusion_needing_tokens_with_encoders_keeping_pooled(toy_plugin, no_data):
    toy_plugin.add("fusion", "token-mean", TokenFusion)
    with pytest.raises(ConfigError, match=r"fusion 'token-mean' needs 'tokens' features of "
                                          r"'a', but encoders.a offers only pooled.*"
                                          r"encoders.a.keep.*concat"):
        _resolve(**{"fusion.name": "token-mean", "encoders.a.keep": ["pooled"]})
    _resolve(**{"fusion.name": "token-mean"})  # keep=None keeps the tokens: fine


def test_third_party_fusion_trains_inside_late_fusion(toy_plugin, run_method):
    toy_plugin.add("fusion", "token-mean", TokenFusion)
    result = run_method("late-fusion", task="toy-pairs", **FAST, **{"fusion.name": "token-mean"})
    assert result.metrics["test"]["acc"] > 0.6


def test_swapping_a_component_drops_the_old_ones_preset_options(toy_plugin):
    method = get_registry().get("method", "late-fusion")()
    preset = {"fusion.name": "projected-concat", "fusion.config.dim": 8}
    swapped = method_config(method, "toy-pairs", "default", [preset, {"fusion.name": "concat"}])
    assert swapped.fusion.name == "concat" and swapped.fusion.config == {}
    kept = method_config(method, "toy-pairs", "default", [preset, {"train.lr": 0.1}])
    assert kept.fusion.config == {"dim": 8}


def test_weighted_sum_is_the_hand_computed_sum(toy_plugin):
    objective = get_registry().create("objective", {"name": "weighted-sum", "config": {
        "terms": [{"name": "cross-entropy"}, {"name": "toy-align", "weight": 0.5}]}})
    assert isinstance(objective, WeightedSumObjective)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0])
    emb = {"a": torch.tensor([[1.0, 0.0], [0.0, 1.0]]), "b": torch.tensor([[0.0, 0.0]] * 2)}
    out = objective({"logits": logits, "embeddings": emb}, {"label": labels})
    ce = (-torch.log_softmax(logits, -1)[torch.arange(2), labels]).mean()
    assert float(out["cross-entropy"]) == pytest.approx(float(ce))
    assert float(out["toy-align"]) == pytest.approx(1.0)  # each row is 1 away from 0
    assert float(out["loss"]) == pytest.approx(float(ce) + 0.5)


def test_weighted_sum_refuses_multi_step_terms(toy_plugin):
    from mmalign.interfaces import Objective

    class TwoSteps(Objective):
        """Steps twice."""

        def forward(self, outputs, batch):
            return {"loss": outputs["logits"].sum()}

        def training_step(self, ctx):
            return {}

    toy_plugin.add("objective", "two-steps", TwoSteps)
    with pytest.raises(ConfigError, match=r"terms\[0\]: objective 'two-steps' runs its own "
                                          r"training step"):
        get_registry().create("objective", {"name": "weighted-sum", "config": {
            "terms": [{"name": "two-steps"}]}})


def test_cross_entropy_plus_alignment_trains_with_core_components(toy_plugin, run_method):
    from mmalign.config import parse_value

    result = run_method("late-fusion", task="toy-pairs", **FAST, **{
        "fusion.name": "projected-concat", "fusion.config.dim": 8,
        "objective.terms": parse_value(TERMS)})
    history = result.extra["stages"]["train"]["history"]
    first = history[0]
    assert {"train_loss", "train_cross-entropy", "train_toy-align"} <= set(first)
    assert first["train_loss"] == pytest.approx(
        first["train_cross-entropy"] + 0.1 * first["train_toy-align"], rel=1e-5)
    assert result.metrics["test"]["acc"] > 0.6


def test_monitor_direction_is_the_metrics_own(toy_plugin):
    from mmalign.interfaces import StageSpec

    task = ToyScoresTask()

    def stage(monitor):
        return StageSpec(name="s", build=None, train=TrainConfig(monitor=monitor))

    assert _monitor(stage(None), task) == ("mae", False)
    assert _monitor(stage("corr"), task) == ("corr", True)
    assert _monitor(stage("last"), task) == ("last", False)
    assert _improved(0.2, 0.9, False, "last")
    assert not _improved(0.2, 0.9, True, "corr") and _improved(0.95, 0.9, True, "corr")


@pytest.mark.parametrize("monitor", ["corr", "last"])
def test_regression_run_keeps_the_epoch_the_monitor_asks_for(toy_plugin, run_method, monitor):
    result = run_method("late-fusion", task="toy-scores", **{
        **FAST, "train.epochs": 4, "train.patience": None, "train.monitor": monitor,
        "train.lr": 0.05})
    info = result.extra["stages"]["train"]
    corr = [row["val_corr"] for row in info["history"]]
    expected = len(corr) - 1 if monitor == "last" else max(range(len(corr)), key=corr.__getitem__)
    assert info["best_epoch"] == expected
    assert result.metrics["validation"]["corr"] == pytest.approx(corr[expected], abs=1e-6)


def test_leaderboard_bolds_in_each_metrics_own_direction(toy_plugin):
    from mmalign.leaderboard import lower_is_better

    assert lower_is_better("mae") and lower_is_better("loss") and lower_is_better("val_loss")
    assert not lower_is_better("corr") and not lower_is_better("acc2_has0")
    assert not lower_is_better("mean_r@10")
