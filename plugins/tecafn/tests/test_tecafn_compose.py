"""TeCaFN's components mixed with other methods' (issue: the runner composes
registered components): the cross-sample fusion inside late-fusion, a third-party
fusion inside tecafn, and the before-data errors for combinations that cannot work."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import mmalign
from mmalign import plugins
from mmalign.errors import ConfigError
from mmalign.interfaces import FeatureSpec, Fusion, FusionOutput
from mmalign.testing import toy_encoders

MODALITIES = ("text", "audio", "video")


class GatedSumFusion(Fusion):
    """A third-party fusion: a learnt gate per modality over projected pooled vectors."""

    requires = {"*": ("pooled",)}
    provides = ("pooled",)

    def __init__(self, config: Any, inputs: Mapping[str, FeatureSpec]) -> None:
        super().__init__(config, inputs)
        self.out_dim = 12
        self.proj = nn.ModuleDict({m: nn.Linear(int(s.pooled), 12) for m, s in inputs.items()})
        self.gate = nn.Parameter(torch.zeros(len(inputs)))

    def forward(self, features: dict[str, Any]) -> FusionOutput:
        weights = self.gate.softmax(0)
        parts = [self.proj[m](features[m]["pooled"].float()) for m in self.modalities]
        return FusionOutput(pooled=sum(w * p for w, p in zip(weights, parts, strict=True)))


class _ThirdParty:
    @staticmethod
    @mmalign.hookimpl
    def mmalign_register(registry: Any) -> None:
        registry.add("fusion", "gated-sum-test", GatedSumFusion)


@pytest.fixture
def third_party(toy_msa: None) -> None:
    plugins.get_host().add_module(_ThirdParty(), "gated-sum-test", "gated-sum-test")


def toy_sets(**extra: Any) -> dict[str, Any]:
    sets = {f"encoders.{m}": e for m, e in toy_encoders(MODALITIES).items()}
    return {**sets, "train.epochs": 2, "train.batch_size": 16, **extra}


def test_cross_sample_fusion_inside_late_fusion(toy_msa, run_method):
    result = run_method(
        "late-fusion", task="toy-msa", **toy_sets(**{"fusion.name": "tecafn-cross-sample"})
    )
    test = result.metrics["test"]
    assert np.isfinite(test["mae"]) and 0.0 < test["mae"] < 3.0
    history = result.extra["stages"]["train"]["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_a_third_party_fusion_inside_tecafn(third_party, run_method):
    sets = toy_sets(**{"fusion.name": "gated-sum-test", "objective.name": "task-loss"})
    result = run_method("tecafn", task="toy-msa", **sets)
    assert np.isfinite(result.metrics["test"]["mae"])


def test_the_tecafn_objective_needs_the_cross_sample_fusion(third_party, run_method):
    with pytest.raises(ConfigError, match="objective 'tecafn' needs the 'tecafn-cross-sample'"):
        run_method("tecafn", task="toy-msa", **toy_sets(**{"fusion.name": "gated-sum-test"}))


def test_tokens_missing_is_refused_before_extraction(toy_msa, run_method):
    sets = toy_sets(**{"encoders.audio.keep": ["pooled"]})
    with pytest.raises(ConfigError, match="needs 'tokens' features of 'audio'"):
        run_method("tecafn", task="toy-msa", **sets)


@pytest.mark.slow
def test_late_fusion_with_the_cross_sample_fusion_on_synth_mosi(mmalign_home, run_method):
    """``mmalign run late-fusion --set fusion.name=tecafn-cross-sample --task synth-mosi``."""
    result = run_method(
        "late-fusion",
        task="synth-mosi",
        **{"fusion.name": "tecafn-cross-sample", "train.epochs": 1},
    )
    assert np.isfinite(result.metrics["test"]["mae"]) and result.metrics["test"]["mae"] < 1.5
