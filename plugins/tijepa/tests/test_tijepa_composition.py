"""TI-JEPA's parts as registered components: its t2i module as a fusion inside the
late-fusion baseline, and the probe's head and objective swapped by name."""

from __future__ import annotations

import pytest
from tijepa_toys import toy_sets

from mmalign.errors import ConfigError
from mmalign.runner import RunRequest
from mmalign.runner.run import resolve
from mmalign.testing import toy_encoders

T2I = {"fusion.name": "t2i-cross-attention", "fusion.config.image": "a",
       "fusion.config.text": "b", "fusion.config.dim": 16, "fusion.config.depth": 1,
       "fusion.config.heads": 2, "fusion.config.text_width": None}
FAST = {"encoders": toy_encoders(), "train.epochs": 4, "train.batch_size": 32, "train.lr": 0.01}


def test_t2i_module_inside_late_fusion(toy_plugin, run_method):
    result = run_method("late-fusion", task="toy-pairs", **FAST, **T2I)
    assert result.metrics["test"]["acc"] > 0.6  # 3 classes: chance 1/3


def test_t2i_needs_tokens_and_says_so_before_data(toy_plugin):
    with pytest.raises(ConfigError, match=r"fusion 't2i-cross-attention' needs 'tokens' "
                                          r"features of 'a'"):
        resolve(RunRequest(method="late-fusion", task="toy-pairs",
                           sets={**FAST, **T2I, "encoders.a.keep": ["pooled"]}))


def test_probe_head_and_objective_are_registered_components(toy_plugin, run_method):
    result = run_method("ti-jepa", task="toy-pairs", **toy_sets(**{
        "train.epochs": 1, "probe.head.name": "mlp", "probe.head.config.hidden": 8,
        "probe.objective.name": "cross-entropy"}))
    import json

    params = json.loads((result.run_dir / "metrics.json").read_text())["params"]
    # MLP 16 -> 8 -> 3 classes: 16*8 + 8 + 8*3 + 3
    assert params["probe"]["model.head"]["trainable"] == 163
    assert result.metrics["test"]["acc"] > 0.4


def test_attentive_probe_reads_the_tokens_and_trains_only_the_probe(toy_plugin, run_method):
    """probe.pool=attentive: a learned query over the frozen fused tokens, then the
    linear head; the pool's parameters are the probe's (query + attention + LayerNorm),
    the pretrained modules stay frozen."""
    import json

    result = run_method("ti-jepa", task="toy-pairs", **toy_sets(**{
        "train.epochs": 1, "probe.pool": "attentive"}))
    params = json.loads((result.run_dir / "metrics.json").read_text())["params"]["probe"]
    dim = 16  # TINY_SETS' cross_attention.dim
    assert params["model.pool"]["trainable"] == dim + (4 * dim * dim + 4 * dim) + 2 * dim
    assert params["model.head"]["trainable"] == dim * 3 + 3
    frozen = {k: v for k, v in params.items() if k not in ("model.pool", "model.head")}
    assert all(v["trainable"] == 0 for v in frozen.values()), frozen
    assert result.metrics["test"]["acc"] > 0.4
