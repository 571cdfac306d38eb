"""``encoder_mode=train-mode``: the authors' "frozen" encoders that run in training mode
(dropout on, batch norm adapting) inside the loop, with no gradient into them."""

from __future__ import annotations

from test_method import toy_sets
from torch import nn

import mmalign
from mmalign import plugins
from mmalign.testing import ToyVectorEncoder

MODES: list[bool] = []
RUNNING: list[float] = []  # |running mean| of the encoder's batch norm after each call


class DropoutToy(ToyVectorEncoder):
    """The toy projection followed by dropout and a batch norm, recording its mode."""

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.drop = nn.Dropout(0.5)
        self.norm = nn.BatchNorm1d(self.config.dim)
        self.freeze()

    def forward(self, inputs):
        MODES.append(self.training)
        out = super().forward(inputs)
        tokens = self.drop(out["tokens"])
        tokens = self.norm(tokens.transpose(1, 2)).transpose(1, 2)
        RUNNING.append(float(self.norm.running_mean.abs().sum()))
        return {**out, "tokens": tokens, "pooled": tokens.mean(1)}


class DropoutPlugin:
    @staticmethod
    @mmalign.hookimpl
    def mmalign_register(registry) -> None:
        registry.add("encoder", "toy-dropout", DropoutToy)


def test_train_mode_encoders_run_in_the_loop_in_training_mode(toy_plugin, run_method):
    plugins.get_host().add_module(DropoutPlugin(), "dropout-toy", "mmalign-sppscl-tests")
    encoders = {m: {"name": "toy-dropout", "config": {"seed": i}}
                for i, m in enumerate(("a", "b"))}
    MODES.clear()
    RUNNING.clear()
    result = run_method("spp-scl", task="toy-pairs",
                        **toy_sets(encoders=encoders, encoder_mode="train-mode", tsne=False,
                                   **{"train.epochs": 1}))
    # training forwards (two per step with the gate) ran the encoders in training mode,
    # evaluation ran them in eval mode; no feature cache was used for them
    steps = 168 // 32
    assert MODES.count(True) >= 2 * 2 * steps  # 2 modalities x (step 1 + re-encoding)
    assert False in MODES
    assert result.extra["stages"]["train"]["report"]["gate"]["checks"] == steps
    # the encoder's running statistics adapted to the task (the authors' behaviour)
    assert max(RUNNING) > 0


def test_frozen_default_caches_eval_mode_features(toy_plugin, run_method):
    plugins.get_host().add_module(DropoutPlugin(), "dropout-toy", "mmalign-sppscl-tests")
    encoders = {m: {"name": "toy-dropout", "config": {"seed": i}}
                for i, m in enumerate(("a", "b"))}
    MODES.clear()
    RUNNING.clear()
    run_method("spp-scl", task="toy-pairs",
               **toy_sets(encoders=encoders, tsne=False, **{"train.epochs": 1}))
    assert MODES and not any(MODES)  # encoded once, for the cache, in eval mode
    assert max(RUNNING) == 0.0  # batch norm never left its initial statistics
