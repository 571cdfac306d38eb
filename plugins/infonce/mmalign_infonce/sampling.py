"""Batches of category-aligned tuples built from independently collected samples.

XMediaNet aligns its modalities only by category: every sample carries one modality
and a label. A batch of ``B`` tuples is built by

1. drawing ``B`` categories that every modality of the batch has, without repeats
   while ``B`` is at most the number ``C`` of categories (in rounds of ``C`` distinct
   ones otherwise), from a stream of permutations that carries over between batches
   so that over an epoch every category is drawn about equally often;
2. taking, for each drawn category and each modality, the next item of that
   category's shuffled pool. A pool that runs out is reshuffled and reused: the
   smaller modalities are over-sampled, as the paper says they must be, and every
   item is used before any item is used twice.

Row ``i`` of every modality in the batch then shows the same category: these are the
aligned tuples equation 2 needs. ``batch["label"]`` holds the categories and
``batch["index"]`` a tuple id, unique within the epoch.

Strategies differ only in which modalities a batch holds: ``joint`` puts all of
them in every batch; ``round-robin`` gives each batch one unordered pair. A joint
epoch walks the largest modality once: ``ceil(n / B)`` batches. A round-robin epoch
(:class:`RoundRobin`) has, by default, the *same* number of batches, shared equally
by the pairs, so both strategies take equal optimizer steps per epoch and each pair
weighs the same in the loss (equation 2's uniform mean); ``steps="pairs"`` instead
walks every pair's larger modality once (``ceil(n_pair / B)`` batches per pair, about
P times a joint epoch) and ``weights="proportional"`` shares the batches in proportion
to those counts. The pairs are interleaved (one batch each in turn, an order
reshuffled every epoch) or, ``schedule="block"``, trained one after the other.
Every batch is full-sized, because tuples are drawn rather than partitioned.
Under DDP each process takes its contiguous slice of the same global batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from mmalign.errors import MMAlignError
from mmalign.interfaces import Batch, StrictModel
from mmalign_infonce.losses import unordered_pairs

Strategy = Literal["joint", "round-robin"]
Group = tuple[str, ...]


class TupleSampler:
    """Category pools of one split and the cursors that walk them."""

    def __init__(self, fs, modalities: Sequence[str], generator: torch.Generator) -> None:
        if fs.labels is None:
            raise MMAlignError(f"split '{fs.split}' has no labels: tuples are aligned by category")
        self.fs = fs
        self.generator = generator
        self.pools: dict[str, dict[int, Tensor]] = {}
        for m in modalities:
            if m not in fs.modalities:
                raise MMAlignError(f"split '{fs.split}' has no modality '{m}'")
            labels = fs.labels[fs.modalities[m].rows]
            self.pools[m] = {int(c): (labels == c).nonzero().flatten() for c in labels.unique()}
        self._order: dict[tuple[str, int], Tensor] = {}
        self._cursor: dict[tuple[str, int], int] = {}
        self._queue: dict[Group, list[int]] = {}

    def categories(self, group: Group) -> Tensor:
        """The categories every modality of ``group`` has items of."""
        shared = set.intersection(*(set(self.pools[m]) for m in group))
        return torch.tensor(sorted(shared), dtype=torch.long)

    def steps(self, group: Group, batch_size: int) -> int:
        """Batches per epoch for ``group``: one pass over its largest modality."""
        cats = {int(c) for c in self.categories(group)}
        n = max(sum(len(p) for c, p in self.pools[m].items() if c in cats) for m in group)
        return math.ceil(n / batch_size)

    def draw_categories(self, group: Group, n: int) -> Tensor:
        """``n`` categories, distinct in rounds of ``C``, from a stream of permutations.

        The stream carries over between batches, so over an epoch every category is
        drawn about equally often; one already in the current round is left queued.
        """
        cats = [int(c) for c in self.categories(group)]
        if not cats:
            raise MMAlignError(f"no category has items of every modality in {group}")
        queue = self._queue.setdefault(group, [])
        out: list[int] = []
        while len(out) < n:
            picked: list[int] = []
            need, i = min(n - len(out), len(cats)), 0
            while len(picked) < need:
                if i == len(queue):
                    queue.extend(
                        cats[int(j)] for j in torch.randperm(len(cats), generator=self.generator)
                    )
                if queue[i] in picked:
                    i += 1
                else:
                    picked.append(queue.pop(i))
            out.extend(picked)
        return torch.tensor(out, dtype=torch.long)

    def next_item(self, modality: str, category: int) -> int:
        key = (modality, category)
        pool = self.pools[modality][category]
        cursor = self._cursor.get(key, len(pool))
        if cursor >= len(pool):
            self._order[key] = pool[torch.randperm(len(pool), generator=self.generator)]
            cursor = 0
        self._cursor[key] = cursor + 1
        return int(self._order[key][cursor])


class RoundRobin(StrictModel):
    """How a round-robin epoch shares its batches among the modality pairs."""

    steps: Literal["joint", "pairs"] = Field(
        "joint",
        description="joint: as many batches per epoch as a joint epoch (equal step budgets); "
        "pairs: every pair's larger modality walked once",
    )
    weights: Literal["uniform", "proportional"] = Field(
        "uniform",
        description="uniform: equal batches per pair (eq. 2's mean); proportional: "
        "in proportion to the pairs' sizes",
    )
    schedule: Literal["interleaved", "block"] = Field(
        "interleaved", description="one batch per pair in turn, or each pair's batches in a block"
    )


def apportion(total: int, shares: dict[Group, float], order: Sequence[Group]) -> dict[Group, int]:
    """``total`` batches split in proportion to ``shares`` (largest remainders; ties
    go to the earlier group of ``order``, itself reshuffled every epoch)."""
    weight = sum(shares[g] for g in order)
    exact = {g: total * shares[g] / weight for g in order}
    counts = {g: math.floor(exact[g]) for g in order}
    rest = sorted(order, key=lambda g: (-(exact[g] - counts[g]), order.index(g)))
    for g in rest[: total - sum(counts.values())]:
        counts[g] += 1
    return counts


def pair_batches(
    rr: RoundRobin, pair_steps: dict[Group, int], joint_steps: int, order: Sequence[Group]
) -> dict[Group, int]:
    """Batches per pair in one round-robin epoch."""
    if rr.steps == "pairs" and rr.weights == "proportional":
        return {g: pair_steps[g] for g in order}
    total = joint_steps if rr.steps == "joint" else sum(pair_steps.values())
    shares = {g: 1.0 if rr.weights == "uniform" else float(pair_steps[g]) for g in order}
    return apportion(total, shares, order)


def round_robin_schedule(
    steps: dict[Group, int], order: Sequence[Group], schedule: str = "interleaved"
) -> list[Group]:
    """``interleaved``: cycle through ``order`` one batch at a time, skipping groups
    already exhausted; ``block``: every batch of each group in turn."""
    if schedule == "block":
        return [g for g in order for _ in range(steps[g])]
    left = dict(steps)
    out: list[Group] = []
    while any(left[g] > 0 for g in order):
        for g in order:
            if left[g] > 0:
                out.append(g)
                left[g] -= 1
    return out


def groups_for(strategy: Strategy, modalities: Sequence[str]) -> list[Group]:
    """``joint``: one group of every modality; ``round-robin``: every unordered pair."""
    if strategy == "joint":
        return [tuple(modalities)]
    return [tuple(p) for p in unordered_pairs(list(modalities))]


def make_loader(
    strategy: Strategy, modalities: Sequence[str], round_robin: RoundRobin | None = None
) -> Callable[..., Iterator[Batch]]:
    """A ``StageSpec.loader`` yielding category-aligned tuple batches (see module doc)."""
    groups = groups_for(strategy, modalities)
    rr = round_robin if round_robin is not None else RoundRobin()

    def loader(
        fs,
        batch_size: int,
        generator: torch.Generator,
        epoch: int,
        train: bool,
        rank: int = 0,
        world: int = 1,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        local = batch_size // world
        if batch_size % world:
            raise MMAlignError(
                f"train.batch_size {batch_size} is not a multiple of the {world} processes: "
                "each process takes an equal slice of every global batch of tuples"
            )
        sampler = TupleSampler(fs, modalities, generator)
        order = list(groups)
        if train:
            order = [order[int(i)] for i in torch.randperm(len(order), generator=generator)]
        steps = {g: sampler.steps(g, batch_size) for g in groups}
        if strategy == "round-robin" and train:  # validation walks every pair once
            joint = sampler.steps(tuple(modalities), batch_size)
            steps = pair_batches(rr, steps, joint, order)
        for step, group in enumerate(round_robin_schedule(steps, order, rr.schedule)):
            cats = sampler.draw_categories(group, batch_size)
            mine = slice(rank * local, (rank + 1) * local)
            batch: Batch = {
                "label": cats[mine],
                "index": torch.arange(step * batch_size, (step + 1) * batch_size)[mine],
            }
            for m in group:
                rows = torch.tensor([sampler.next_item(m, int(c)) for c in cats])
                batch[m] = fs.modality_batch(m, rows[mine])
            yield batch

    return loader
