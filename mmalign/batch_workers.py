"""Gathering a split's batches in DataLoader worker processes.

A batch is gathered from the feature store (positional reads) and, for encoders
whose inputs a method re-encodes (``inputs=True``, e.g. TI-JEPA paper mode's
visible patches), its raw inputs are decoded and preprocessed there too; rows keep
only the raw inputs (a path, a string), never a decoded tensor. With
``train.num_workers > 0`` that work runs in forked worker processes while the main
process trains on the previous batch.

The batches are the same with any number of workers: the positions of every batch
are chosen in the main process (the loaders' generators never leave it), workers
are given a fixed seed of their own so the main process's global generator is not
drawn from, and batches come back in order.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from mmalign.interfaces import Batch

if TYPE_CHECKING:
    from mmalign.features import FeatureSet

#: batches each worker gathers ahead of the training step
PREFETCH = 2


class _Gathered(Dataset):  # type: ignore[type-arg]
    """``dataset[positions]`` is the whole batch at those positions."""

    def __init__(self, fs: FeatureSet, modalities: Sequence[str] | None) -> None:
        self.fs, self.modalities = fs, modalities

    def __len__(self) -> int:
        return len(self.fs)

    def __getitem__(self, positions: Tensor) -> Batch:
        return self.fs.batch(positions, self.modalities)


def _as_is(batch: Batch) -> Batch:
    return batch


def _context() -> Any:
    """Fork where the platform has it: a FeatureSet (encoders, open stores) is then
    inherited, not pickled; elsewhere the platform's default start method."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return None


def gather(
    fs: FeatureSet,
    chunks: Iterable[Tensor],
    workers: int,
    modalities: Sequence[str] | None = None,
) -> Iterator[Batch]:
    """``fs.batch(chunk)`` for each chunk of positions, in order, gathered in
    ``workers`` processes (0: in this one)."""
    if workers <= 0:
        for chunk in chunks:
            yield fs.batch(chunk, modalities)
        return
    loader = DataLoader(
        _Gathered(fs, modalities),
        sampler=chunks,  # type: ignore[arg-type]
        batch_size=None,
        collate_fn=_as_is,
        num_workers=workers,
        prefetch_factor=PREFETCH,
        multiprocessing_context=_context(),
        generator=torch.Generator().manual_seed(0),  # not the global generator
    )
    yield from loader
