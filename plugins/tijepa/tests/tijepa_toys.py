"""Small TI-JEPA pieces and batches shared by the tests."""

from __future__ import annotations

import copy

import torch
from mmalign_tijepa.fusion import T2IConfig
from mmalign_tijepa.masks import MultiblockMaskCollator
from mmalign_tijepa.model import TIJEPAModel
from mmalign_tijepa.predictor import PredictorConfig

import mmalign

TINY_FUSION = T2IConfig(depth=2, heads=2, dim=32, text_width=None)
TINY_PREDICTOR = PredictorConfig(depth=2, heads=2, dim=16)


def tiny_model(image_dim: int = 24, text_dim: int = 20, **kwargs) -> TIJEPAModel:
    torch.manual_seed(0)
    return TIJEPAModel(TINY_FUSION, TINY_PREDICTOR, image_dim=image_dim, text_dim=text_dim,
                       **kwargs)


def tiny_batch(b: int = 4, grid: tuple[int, int] = (7, 7), seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    n = grid[0] * grid[1]
    text_mask = torch.ones(b, 5, dtype=torch.bool)
    text_mask[0, 3:] = False
    batch = {
        "index": torch.arange(b),
        "image": {"tokens": torch.randn(b, n, 24, generator=g),
                  "mask": torch.ones(b, n, dtype=torch.bool)},
        "text": {"tokens": torch.randn(b, 5, 20, generator=g), "mask": text_mask},
    }
    batch["masks"] = MultiblockMaskCollator().for_batch(batch, g).as_batch()
    return batch


TOY_ENCODERS = {
    "a": {"name": "toy-vector", "config": {"seed": 0, "tokens": 16, "dim": 12}},
    "b": {"name": "toy-vector", "config": {"seed": 1, "tokens": 3, "dim": 10}},
}


#: the smallest cross-attention, predictor and masks a run accepts, as ``--set`` keys
TINY_SETS = {
    "cross_attention.dim": 16,
    "cross_attention.depth": 1,
    "cross_attention.heads": 2,
    "cross_attention.text_width": None,
    "predictor.depth": 1,
    "predictor.dim": 8,
    "predictor.heads": 2,
    "masks.min_keep": 2,
    # the toy tokens have no layout for positions to describe
    "cross_attention.image_positions": "encoder",
}


def toy_sets(**extra) -> dict:
    """A tiny TI-JEPA on toy-pairs: modality a plays the image (4x4 tokens), b the text."""
    sets = {
        "encoders": copy.deepcopy(TOY_ENCODERS),  # dotted overrides edit it in place
        "cross_attention.image": "a",
        "cross_attention.text": "b",
        **TINY_SETS,
        "pretrain_task": "toy-pairs",
        "fallback_task": None,
        "captions": "all",  # toy-pairs are not COCO-style image-caption pairs
        "train.epochs": 2,
        "train.batch_size": 32,
        "probe.train.epochs": 8,
        "probe.train.lr": 1e-2,
        "probe.train.batch_size": 32,
    }
    sets.update(extra)
    return sets


def absent_task_class():
    """A caption-like task whose data is never present (to exercise the fallback)."""
    from mmalign.interfaces import Task

    class ToyAbsent(Task):
        name = "toy-absent"
        modalities = ("a", "b")
        label_type = "none"

        def load(self):
            raise AssertionError("the fallback should have been used")

    return ToyAbsent


class AbsentPlugin:
    """Registers toy-absent (an object with the hook, as plugins.add_module expects)."""

    @staticmethod
    @mmalign.hookimpl
    def mmalign_register(registry) -> None:
        registry.add("task", "toy-absent", absent_task_class())
