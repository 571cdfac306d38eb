"""Toy components for tests: an encoder, two tasks and an alignment objective that
need no data and no download (:mod:`mmalign.testing` registers them on demand)."""


from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from mmalign.errors import DataError
from mmalign.hookspecs import hookimpl
from mmalign.interfaces import (
    Batch,
    Encoder,
    Features,
    Objective,
    Outputs,
    Sample,
    StrictModel,
    Task,
    TaskData,
)
from mmalign.registry import RegistryView


class ToyVectorConfig(StrictModel):
    dim_in: int = 8
    dim: int = 16
    tokens: int = 4
    #: hidden states returned as ``layers`` ([B, K, tokens, dim]; the last one equals
    #: ``tokens``), for methods that weigh an encoder's layers; 0 returns none
    layers: int = Field(0, ge=0)
    seed: int = 0


class ToyVectorEncoder(Encoder):
    """A fixed random projection of a numeric vector (test encoder, no weights file)."""

    Config = ToyVectorConfig
    modality = ""  # any modality: the toy tasks call theirs "a" and "b"
    provides = ("pooled", "tokens")

    def __init__(self, config: ToyVectorConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        g = torch.Generator().manual_seed(cfg.seed)
        self.register_buffer("weight", torch.randn(cfg.dim_in, cfg.dim * cfg.tokens, generator=g))
        extra = max(cfg.layers - 1, 0)
        self.register_buffer(
            "layer_weights", torch.randn(extra, cfg.dim_in, cfg.dim * cfg.tokens, generator=g)
        )
        self.freeze()

    @classmethod
    def layer_count(cls, config: StrictModel) -> int:
        return int(getattr(config, "layers", 0))

    @property
    def out_dim(self) -> int:
        return self.config.dim

    def preprocess(self, raw: Any) -> Tensor:
        x = torch.as_tensor(np.asarray(raw, dtype=np.float32))
        if x.shape != (self.config.dim_in,) or not torch.isfinite(x).all():
            raise DataError(f"toy vector must be {self.config.dim_in} finite floats, got {raw!r}")
        return x

    def forward(self, inputs: Tensor) -> Features:
        cfg = self.config
        tokens = torch.tanh(inputs @ self.weight).view(len(inputs), cfg.tokens, cfg.dim)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool)
        features = {"pooled": tokens.mean(1), "tokens": tokens, "mask": mask}
        if cfg.layers:
            lower = torch.tanh(torch.einsum("bi,kio->bko", inputs, self.layer_weights))
            lower = lower.view(len(inputs), -1, cfg.tokens, cfg.dim)
            features["layers"] = torch.cat([lower, tokens[:, None]], dim=1)
        return features

    def fingerprint(self) -> str:
        return f"toy-vector:{self.config.model_dump_json()}"


class ToyPairsConfig(StrictModel):
    samples: int = 240
    classes: int = 3
    dim_in: int = 8
    noise: float = 1.0
    seed: int = 0
    #: sample ids whose "a" vector is replaced by NaNs (to exercise skipping)
    corrupt: list[int] = []


class ToyPairsTask(Task):
    """Two vector modalities whose class signal is split between them (test task)."""

    Config = ToyPairsConfig
    name = "toy-pairs"
    modalities = ("a", "b")
    label_type = "classification"
    label_names = ("zero", "one", "two")
    metrics = ("acc", "f1_weighted", "f1_macro")
    embedded = True

    def is_present(self) -> bool:
        return True

    @property
    def num_classes(self) -> int:
        return self.config.classes

    def load(self) -> TaskData:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        centres = rng.normal(size=(cfg.classes, 2, cfg.dim_in)) * 1.5
        samples = []
        for i in range(cfg.samples):
            label = int(rng.integers(cfg.classes))
            a, b = centres[label] + rng.normal(size=(2, cfg.dim_in)) * cfg.noise
            if i in cfg.corrupt:
                a = np.full(cfg.dim_in, np.nan)
            samples.append(Sample(id=f"toy{i:04d}", inputs={"a": a, "b": b}, label=label))
        n = len(samples)
        cut1, cut2 = int(n * 0.7), int(n * 0.85)
        return TaskData(
            splits={"train": samples[:cut1], "validation": samples[cut1:cut2],
                    "test": samples[cut2:]},
            label_names=list(self.label_names), source="generated",
        )


class ToyScoresTask(ToyPairsTask):
    """The toy pairs with a real-valued score in [-3, 3] (a regression test task)."""

    name = "toy-scores"
    label_type = "regression"
    label_names = ()
    metrics = ("mae", "corr", "acc7", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0")

    def load(self) -> TaskData:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        weights = rng.normal(size=(2, cfg.dim_in))
        samples = []
        for i in range(cfg.samples):
            a, b = rng.normal(size=(2, cfg.dim_in))
            score = float(np.clip((weights[0] @ a + weights[1] @ b) / 2, -3, 3))
            samples.append(Sample(id=f"score{i:04d}", inputs={"a": a, "b": b}, label=score))
        cut1, cut2 = int(len(samples) * 0.7), int(len(samples) * 0.85)
        return TaskData(
            splits={"train": samples[:cut1], "validation": samples[cut1:cut2],
                    "test": samples[cut2:]},
            source="generated",
        )


class ToyAlignObjective(Objective):
    """Mean squared distance between the embeddings of every modality pair (a toy
    alignment term: it reads ``outputs["embeddings"]``)."""

    requires = ("embeddings",)

    def forward(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        emb = [outputs["embeddings"][m].float() for m in sorted(outputs["embeddings"])]
        pairs = [(x - y).pow(2).sum(-1).mean() for i, x in enumerate(emb) for y in emb[i + 1:]]
        return {"loss": torch.stack(pairs).mean()}


@hookimpl
def mmalign_register(registry: RegistryView) -> None:
    """Toy components for tests (registered only when a test asks for them)."""
    registry.add("encoder", "toy-vector", ToyVectorEncoder)
    registry.add("task", "toy-pairs", ToyPairsTask)
    registry.add("task", "toy-scores", ToyScoresTask)
    registry.add("objective", "toy-align", ToyAlignObjective)


class _ToyPlugin:
    mmalign_register = staticmethod(mmalign_register)


