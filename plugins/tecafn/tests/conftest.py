"""Toy three-modality tasks (text/audio/video vectors) for TeCaFN's tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from mmalign import plugins
from mmalign.hookspecs import hookimpl
from mmalign.interfaces import Sample, StrictModel, Task, TaskData
from mmalign.runner import RunRequest, execute
from mmalign.testing import toy_encoders

torch.set_num_threads(1)
MODALITIES = ("text", "audio", "video")


class ToyMSAConfig(StrictModel):
    samples: int = 160
    seed: int = 0


class ToyMSATask(Task):
    """Scores in [-3, 3] that depend on all three modalities (a MOSI stand-in)."""

    Config = ToyMSAConfig
    name = "toy-msa"
    modalities = MODALITIES
    label_type = "regression"
    metrics = ("mae", "corr", "acc7", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0")
    embedded = True

    def is_present(self) -> bool:
        return True

    def label(self, score: float) -> Any:
        return float(np.clip(score, -3, 3))

    def load(self) -> TaskData:
        rng = np.random.default_rng(self.config.seed)
        weights = rng.normal(size=(3, 8))
        samples = []
        for i in range(self.config.samples):
            vecs = rng.normal(size=(3, 8))
            score = float((weights * vecs).sum() / 3)
            inputs = dict(zip(MODALITIES, vecs, strict=True))
            samples.append(Sample(id=f"s{i:04d}", inputs=inputs, label=self.label(score)))
        cut1, cut2 = int(0.7 * len(samples)), int(0.85 * len(samples))
        return TaskData(
            splits={
                "train": samples[:cut1],
                "validation": samples[cut1:cut2],
                "test": samples[cut2:],
            },
            source="generated",
        )


class ToyHumourTask(ToyMSATask):
    """The same data with binary labels (a UR-FUNNY stand-in)."""

    name = "toy-humour"
    label_type = "classification"
    label_names = ("no", "yes")
    metrics = ("acc2", "f1")

    def label(self, score: float) -> Any:
        return int(score > 0)


@hookimpl
def mmalign_register(registry: Any) -> None:
    registry.add("task", "toy-msa", ToyMSATask)
    registry.add("task", "toy-humour", ToyHumourTask)


class _Plugin:
    mmalign_register = staticmethod(mmalign_register)


@pytest.fixture
def toy_msa(toy_plugin: Any) -> None:
    """Registers the toy three-modality tasks (and, via toy_plugin, toy-vector)."""
    plugins.get_host().add_module(_Plugin(), "tecafn-tests", "mmalign-tecafn-tests")


@pytest.fixture
def run_tecafn(toy_msa: None) -> Callable[..., Any]:
    """Run ``tecafn`` quietly on a toy task, every modality on the toy encoder."""

    def run(task: str = "toy-msa", size: str = "tiny", seed: int = 0,
            resume: str | None = None, **sets: Any) -> Any:
        encoders = {f"encoders.{m}": e for m, e in toy_encoders(MODALITIES).items()}
        request = RunRequest(
            method="tecafn",
            task=task,
            size=size,
            seed=seed,
            sets={**encoders, **sets},
            quiet=True,
            resume=resume,
        )
        return execute(request)

    return run
