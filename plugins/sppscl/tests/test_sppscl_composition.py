"""SPP-SCL's parts as registered components: its CMF inside the late-fusion baseline,
other fusions (built-in and third-party) and objectives inside SPP-SCL, and clear
refusals, before any data is read, of compositions that cannot work."""

from __future__ import annotations

import pytest
import torch
from test_method import toy_sets
from torch import nn

from mmalign.errors import ConfigError
from mmalign.interfaces import Fusion, FusionOutput
from mmalign.runner import RunRequest
from mmalign.runner.run import resolve
from mmalign.testing import ToyPairsTask, toy_encoders

FAST = {"encoders": toy_encoders(), "train.epochs": 4, "train.batch_size": 32, "train.lr": 0.01}


class GatedSum(Fusion):
    """A third-party fusion: a learned sigmoid gate mixes two projected vectors."""

    requires = {"*": ("pooled",)}
    provides = ("pooled",)

    def __init__(self, config, inputs) -> None:
        super().__init__(config, inputs)
        self.out_dim = 16
        self.project = nn.ModuleDict({m: nn.Linear(s.pooled, 16) for m, s in inputs.items()})
        self.gate = nn.Linear(16 * len(inputs), 16)

    def forward(self, features) -> FusionOutput:
        a, b = (self.project[m](features[m]["pooled"].float()) for m in self.modalities)
        g = torch.sigmoid(self.gate(torch.cat([a, b], -1)))
        return FusionOutput(pooled=g * a + (1 - g) * b)


class EmbeddingsOnly(Fusion):
    requires = {"*": ("pooled",)}
    provides = ("embeddings",)

    def __init__(self, config, inputs) -> None:
        super().__init__(config, inputs)
        self.out_dim = 0

    def forward(self, features) -> FusionOutput:
        return FusionOutput(embeddings={m: features[m]["pooled"] for m in self.modalities})


@pytest.fixture
def no_data(monkeypatch):
    def load(self):
        raise AssertionError("data was loaded before the composition was checked")

    monkeypatch.setattr(ToyPairsTask, "load", load)


def test_spp_cmf_inside_late_fusion(toy_plugin, run_method):
    result = run_method("late-fusion", task="toy-pairs", **FAST, **{"fusion.name": "spp-cmf"})
    assert result.metrics["test"]["acc"] > 0.6  # 3 classes: chance 1/3
    stage = result.extra["stages"]["train"]
    assert stage["epochs_run"] == 4


def test_concat_inside_spp_scl_is_the_w_o_cmf_ablation(toy_plugin, run_method):
    base = toy_sets(tsne=False)
    swap = run_method("spp-scl", task="toy-pairs", **base, **{"fusion.name": "concat"})
    mode = run_method("spp-scl", task="toy-pairs", **base, **{"fusion.config.mode": "none"})
    # concat of I_p and T_p is CMF's mode "none": the same model, the same run
    assert swap.metrics["test"] == pytest.approx(mode.metrics["test"])
    assert swap.metrics["test"]["acc"] > 0.6


def test_third_party_fusion_and_objective_inside_spp_scl(toy_plugin, run_method):
    toy_plugin.add("fusion", "gated-sum", GatedSum)
    result = run_method("spp-scl", task="toy-pairs",
                        **toy_sets(tsne=False, **{"fusion.name": "gated-sum"}))
    assert result.metrics["test"]["acc"] > 0.6
    assert "gate" in result.extra["stages"]["train"]["report"]  # still Algorithm 1
    # spp-scl's model with the task's plain cross-entropy: the objective as a swap (at
    # 5x the lr, as spp-scl weighs its cross-entropy by λ = 5)
    ce = run_method("spp-scl", task="toy-pairs",
                    **toy_sets(tsne=False, **{"objective.name": "cross-entropy",
                                              "train.lr": 1.5e-2}))
    row = ce.extra["stages"]["train"]["history"][0]
    assert "train_intra_image" not in row and "train_gate_fired" not in row
    assert ce.metrics["test"]["acc"] > 0.5


def test_incompatible_fusions_are_refused_before_data(toy_plugin, no_data):
    toy_plugin.add("fusion", "embeddings-only", EmbeddingsOnly)
    sets = toy_sets(**{"fusion.name": "embeddings-only"})
    with pytest.raises(ConfigError, match=r"spp-scl's classifier needs the fusion's 'pooled' "
                                          r"vector; fusion 'embeddings-only' provides only "
                                          r"embeddings\. Fusions that provide it: .*concat"):
        resolve(RunRequest(method="spp-scl", task="toy-pairs", sets=sets))
    # CMF within samples needs tokens; late-fusion's encoders here keep only pooled
    with pytest.raises(ConfigError, match=r"fusion 'spp-cmf' needs 'tokens' features of 'a'"):
        resolve(RunRequest(method="late-fusion", task="toy-pairs", sets={
            **FAST, "fusion.name": "spp-cmf", "fusion.config.mode": "sample",
            "encoders.a.keep": ["pooled"], "encoders.b.keep": ["pooled"]}))


def test_missing_text_layers_are_refused_when_resolved(toy_plugin, no_data):
    """HA weighs ``ha_layers`` hidden states: an encoder config that returns none (or
    too few) is refused by ``check()``, with the advice, before any data is read."""
    advice = (r"the b features carry no 'layers': request them through the b encoder's "
              r"config `layers` \(e\.g\. --set encoders\.b\.config\.layers=\.\.\.\) or set "
              r"ha_layers=1")
    with pytest.raises(ConfigError, match=r"weighs the last 4 layers, but with encoder "
                                          r"'toy-vector' " + advice):
        resolve(RunRequest(method="spp-scl", task="toy-pairs",
                           sets=toy_sets(ha_layers=4)))
    with pytest.raises(ConfigError, match=r"needs 4 layers, the b features carry 2"):
        resolve(RunRequest(method="spp-scl", task="toy-pairs", sets=toy_sets(
            ha_layers=4, **{"encoders.b.config.layers": 2})))
    # what the advice says works: four layers requested, or HA over one (the tokens)
    resolve(RunRequest(method="spp-scl", task="toy-pairs",
                       sets=toy_sets(ha_layers=4, **{"encoders.b.config.layers": 4})))
    resolve(RunRequest(method="spp-scl", task="toy-pairs", sets=toy_sets(ha_layers=1)))


def test_the_embedded_and_paper_text_encoders_declare_their_layers(toy_plugin, no_data):
    """The defaults request BERT's layers 9-12 (MiniLM's last four); dropping them is
    caught from the encoder's config, without loading its weights."""
    resolve(RunRequest(method="spp-scl", task="synth-clash", sets={}))
    with pytest.raises(ConfigError, match=r"encoder 'minilm-l6' the text features carry no "
                                          r"'layers'"):
        resolve(RunRequest(method="spp-scl", task="synth-clash",
                           sets={"encoders.text.config.layers": None}))
    with pytest.raises(ConfigError, match=r"needs 4 layers, the text features carry 3"):
        resolve(RunRequest(method="spp-scl", task="synth-clash", size="paper",
                           sets={"encoders.text.config.layers": [10, 11, 12]}))


def test_regression_tasks_are_refused(toy_plugin, no_data):
    with pytest.raises(ConfigError, match=r"Method 'spp-scl' trains on classification labels; "
                                          r"task 'toy-scores' has regression labels"):
        resolve(RunRequest(method="spp-scl", task="toy-scores", sets=toy_sets()))
