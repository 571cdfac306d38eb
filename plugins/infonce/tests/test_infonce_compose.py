"""n-modal InfoNCE as a term of other methods' objectives and infonce with other
fusions (issue: the runner composes registered components)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from infonce_toys import toy_sets
from torch import nn

import mmalign
from mmalign import plugins
from mmalign.errors import ConfigError
from mmalign.interfaces import FeatureSpec, Fusion, FusionOutput
from mmalign.testing import toy_encoders

TERMS = [{"name": "cross-entropy"}, {"name": "nmodal-infonce", "weight": 0.1}]


class LinearEmbeddings(Fusion):
    """A third-party fusion: one linear map per modality, unit-length embeddings."""

    requires = {"*": ("pooled",)}
    provides = ("embeddings",)

    def __init__(self, config: Any, inputs: Mapping[str, FeatureSpec]) -> None:
        super().__init__(config, inputs)
        self.out_dim = self.embed_dim = 8
        self.maps = nn.ModuleDict({m: nn.Linear(int(s.pooled), 8) for m, s in inputs.items()})

    def forward(self, features: dict[str, Any]) -> FusionOutput:
        return FusionOutput(
            embeddings={
                m: F.normalize(self.maps[m](f["pooled"].float()), dim=-1)
                for m, f in features.items()
            }
        )


class _ThirdParty:
    @staticmethod
    @mmalign.hookimpl
    def mmalign_register(registry: Any) -> None:
        registry.add("fusion", "linear-embeddings-test", LinearEmbeddings)


def pair_sets(**extra: Any) -> dict[str, Any]:
    sets = {f"encoders.{m}": e for m, e in toy_encoders(("a", "b")).items()}
    return {**sets, "train.epochs": 3, "train.batch_size": 16, **extra}


def test_the_terms_line_without_embeddings_names_the_fusions_that_have_them(toy_plugin, run_method):
    with pytest.raises(ConfigError, match="reads 'embeddings'.*projection-heads"):
        run_method("late-fusion", task="toy-pairs", **pair_sets(**{"objective.terms": TERMS}))


def test_cross_entropy_plus_infonce_inside_late_fusion(toy_plugin, run_method):
    sets = pair_sets(**{"fusion.name": "projection-heads", "objective.terms": TERMS})
    result = run_method("late-fusion", task="toy-pairs", **sets)
    row = result.extra["stages"]["train"]["history"][0]
    total = row["train_cross-entropy"] + 0.1 * row["train_nmodal-infonce"]
    assert row["train_loss"] == pytest.approx(total, rel=1e-4)
    assert result.metrics["test"]["acc"] > 1 / 3  # three classes


def test_a_third_party_fusion_inside_infonce(toy_categories, run_method):
    plugins.get_host().add_module(_ThirdParty(), "linear-embeddings-test", "linear-embeddings-test")
    result = run_method(
        "infonce", task="toy-categories", **toy_sets(**{"fusion.name": "linear-embeddings-test"})
    )
    tables = result.extra["stages"]["train"]["report"]["recall"]["test"]
    assert 0.0 <= tables["mean_r@1"] <= tables["mean_r@10"] <= 1.0
    assert torch.isfinite(torch.tensor(result.metrics["test"]["mean_r@10"]))


def test_infonce_refuses_a_fusion_without_embeddings(toy_categories, run_method):
    with pytest.raises(
        ConfigError, match="infonce aligns per-modality embeddings; fusion 'concat'"
    ):
        run_method("infonce", task="toy-categories", **toy_sets(**{"fusion.name": "concat"}))
