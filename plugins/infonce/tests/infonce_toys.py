"""Toy tasks in XMediaNet's shape (one modality per sample) for tests: aligned by
category only, or by event (every event seen in all four modalities)."""

from __future__ import annotations

import numpy as np
import torch

from mmalign.features import FeatureSet, ModalityData
from mmalign.hookspecs import hookimpl
from mmalign.interfaces import INSTANCE, Sample, StrictModel, Task, TaskData
from mmalign.metrics import retrieval_tables
from mmalign.testing import toy_encoders

MODALITIES = ("a", "b", "c", "d")


class ToyCategoriesConfig(StrictModel):
    classes: int = 6
    #: items per category and modality (unequal, so small modalities are over-sampled)
    per_class: dict[str, int] = {"a": 12, "b": 10, "c": 4, "d": 3}
    dim_in: int = 8
    noise: float = 0.6
    seed: int = 0


class ToyCategoriesTask(Task):
    """Four vector modalities aligned only by category; every sample has one modality."""

    Config = ToyCategoriesConfig
    name = "toy-categories"
    modalities = MODALITIES
    label_type = "retrieval"
    metrics = ("mean_r@10", "mean_r@1", "mean_r@5")
    embedded = True

    def is_present(self) -> bool:
        return True

    def load(self) -> TaskData:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        centres = rng.normal(size=(len(MODALITIES), cfg.classes, cfg.dim_in)) * 1.5
        splits: dict[str, list[Sample]] = {"train": [], "validation": [], "test": []}
        for mi, m in enumerate(MODALITIES):
            for c in range(cfg.classes):
                for i in range(cfg.per_class[m]):
                    x = centres[mi, c] + rng.normal(size=cfg.dim_in) * cfg.noise
                    split = ("validation", "test", "train", "train")[i % 4]
                    splits[split].append(Sample(id=f"{m}{c}-{i}", inputs={m: x}, label=c))
        return TaskData(splits=splits, source="generated")

    def evaluate(self, outputs, labels):
        return retrieval_tables(outputs["embeddings"], labels)


class ToyEventsTask(ToyCategoriesTask):
    """Four vector modalities; event ``(c, i)`` is one latent seen in every modality
    (a category centre plus the event's own offset), named in ``meta["instance"]``."""

    name = "toy-events"
    instances = "event"

    def load(self) -> TaskData:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        centres = rng.normal(size=(cfg.classes, cfg.dim_in)) * 1.5
        mix = rng.normal(size=(len(MODALITIES), cfg.dim_in, cfg.dim_in))
        splits: dict[str, list[Sample]] = {"train": [], "validation": [], "test": []}
        n = max(cfg.per_class.values())
        for c in range(cfg.classes):
            for i in range(n):
                event = centres[c] + rng.normal(size=cfg.dim_in)
                split = ("validation", "test", "train", "train")[i % 4]
                for mi, m in enumerate(MODALITIES):
                    x = mix[mi] @ event + rng.normal(size=cfg.dim_in) * cfg.noise
                    meta = {INSTANCE: f"{c}-{i}"}
                    splits[split].append(Sample(id=f"{m}{c}-{i}", inputs={m: x}, label=c,
                                                meta=meta))
        return TaskData(splits=splits, source="generated")


class ToyPlugin:
    """Registers the toy task when a test asks for it."""

    @staticmethod
    @hookimpl
    def mmalign_register(registry) -> None:
        registry.add("task", "toy-categories", ToyCategoriesTask)
        registry.add("task", "toy-events", ToyEventsTask)


def toy_feature_sets(**config) -> dict[str, FeatureSet]:
    """The toy category task's splits as feature sets whose pooled features are the raw
    vectors, for tests that drive the training loop without encoders or a run."""
    data = ToyCategoriesTask(ToyCategoriesConfig(**config)).load()
    out = {}
    for split, samples in data.splits.items():
        modalities = {}
        for m in MODALITIES:
            rows = [p for p, s in enumerate(samples) if m in s.inputs]
            pooled = torch.tensor(np.stack([samples[p].inputs[m] for p in rows]),
                                  dtype=torch.float32)
            modalities[m] = ModalityData(rows=torch.tensor(rows), features={"pooled": pooled})
        labels = torch.tensor([s.label for s in samples])
        out[split] = FeatureSet(split, [s.id for s in samples], labels, modalities, {})
    return out


def toy_sets(**extra):
    """``--set`` overrides pointing infonce at the toy task's encoders, fast settings."""
    sets = {f"encoders.{m}": v for m, v in toy_encoders(MODALITIES).items()}
    sets.update({"train.epochs": 2, "train.batch_size": 8, "train.eval_batch_size": 8})
    sets.update(extra)
    return sets
