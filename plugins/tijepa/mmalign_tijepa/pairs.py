"""Which image-caption pairs a pretraining epoch visits.

The COCO reader yields every caption of an image as its own pair, named
``{image_id}-{annotation_id}``. The paper "randomly selected one caption per image"
and trains on each image once per epoch; the authors' loader draws
``random.choice(captions)`` at every access. ``captions="one-random"`` does that: each
training epoch visits every image once, with a caption drawn afresh, so an epoch is
``ceil(images / batch)`` steps. ``captions="all"`` visits every pair (about 5x the
steps on COCO). Validation always uses every pair, in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import torch
from torch import Tensor

from mmalign.errors import ConfigError
from mmalign.interfaces import Batch
from mmalign_tijepa.masks import MultiblockMaskCollator

Captions = Literal["one-random", "all"]


def image_groups(sample_ids: list[str]) -> tuple[Tensor, Tensor]:
    """``(order, runs)``: positions sorted so that one image's pairs are adjacent, and
    ``runs = [starts, counts]`` of each image's run inside that order."""
    images: dict[str, list[int]] = {}
    for position, sid in enumerate(sample_ids):
        image, sep, _ = sid.rpartition("-")
        if not sep or not image:
            raise ConfigError(
                f"captions='one-random' groups pairs by image, but sample id '{sid}' is not "
                "'{image_id}-{annotation_id}' as the COCO reader writes it; use captions='all'"
            )
        images.setdefault(image, []).append(position)
    order = torch.tensor([p for group in images.values() for p in group], dtype=torch.long)
    counts = torch.tensor([len(group) for group in images.values()], dtype=torch.long)
    starts = torch.cumsum(counts, 0) - counts
    return order, torch.stack([starts, counts])


class PretrainLoader:
    """A ``StageSpec.loader``: batches of pairs (one caption per image or all), each with
    its multiblock masks; ``batches_per_epoch`` tells the runner the epoch's length."""

    def __init__(self, collator: MultiblockMaskCollator, captions: Captions = "one-random"):
        self.collator = collator
        self.captions = captions
        self._groups: dict[int, tuple[list[str], Tensor, Tensor]] = {}

    def _grouped(self, fs: Any) -> tuple[Tensor, Tensor]:
        cached = self._groups.get(id(fs))
        if cached is None or cached[0] is not fs.sample_ids:
            order, runs = image_groups(list(fs.sample_ids))
            cached = (fs.sample_ids, order, runs)
            self._groups[id(fs)] = cached
        return cached[1], cached[2]

    def epoch_positions(self, fs: Any, generator: torch.Generator, train: bool) -> Tensor:
        """The positions an epoch visits, shuffled for training."""
        n = len(fs)
        if not train:
            return torch.arange(n)
        if self.captions == "all":
            return torch.randperm(n, generator=generator)
        order, runs = self._grouped(fs)
        starts, counts = runs[0], runs[1]
        offsets = (torch.rand(len(counts), generator=generator) * counts).long()
        picked = order[starts + offsets.clamp(max=counts - 1)]
        return picked[torch.randperm(len(picked), generator=generator)]

    def batches_per_epoch(self, fs: Any, batch_size: int, drop_last: bool) -> int:
        n = len(fs) if self.captions == "all" else len(self._grouped(fs)[1][1])
        return n // batch_size if drop_last else -(-n // batch_size)

    def __call__(
        self,
        fs: Any,
        batch_size: int,
        generator: torch.Generator,
        epoch: int,
        train: bool,
        rank: int = 0,
        world: int = 1,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        order = self.epoch_positions(fs, generator, train)
        yield from self.collator.batches(fs, order, batch_size, generator, train, rank, world,
                                         drop_last)
